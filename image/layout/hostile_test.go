package layout

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/errdef"
)

// outsideSnapshot records every file next to the layout (the canary included) so a test can
// assert nothing outside was read into, written or created.
func outsideSnapshot(t *testing.T, dir, layoutDir string) map[string]string {
	t.Helper()
	snap := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == layoutDir {
			return filepath.SkipDir
		}
		info, _ := d.Info()
		v := info.Mode().String() + " " + info.ModTime().String()
		if info.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			s := sha256.Sum256(b)
			v += " " + hex.EncodeToString(s[:])
		}
		snap[p] = v
		return nil
	})
	return snap
}

func blobFile(root string, d ocispec.Descriptor) string {
	return filepath.Join(root, "blobs", d.Digest.Algorithm().String(), d.Digest.Encoded())
}

func rewriteIndex(t *testing.T, root string, f func(s string) string) {
	t.Helper()
	p := filepath.Join(root, IndexFile)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(f(string(b))), 0o644); err != nil {
		t.Fatal(err)
	}
}

func replaceBlob(t *testing.T, root string, d ocispec.Descriptor, b []byte) {
	t.Helper()
	p := blobFile(root, d)
	os.Remove(p)
	if err := os.WriteFile(p, b, 0o444); err != nil {
		t.Fatal(err)
	}
}

func TestHostileLayouts(t *testing.T) {
	ctx := context.Background()
	type env struct {
		root, outside string
		m             ocispec.Descriptor // manifest tagged "latest"
		cfg           ocispec.Descriptor
	}
	cases := []struct {
		name   string
		setup  func(t *testing.T, e env)
		want   error  // errors.Is target
		text   string // substring of the error
		atOpen bool   // Open itself must fail
	}{
		{name: "digest with path traversal", atOpen: true, want: errdef.ErrInvalidDigest, text: `"sha256:../../canary"`,
			setup: func(t *testing.T, e env) {
				rewriteIndex(t, e.root, func(s string) string { return strings.Replace(s, e.m.Digest.String(), "sha256:../../canary", 1) })
			}},
		{name: "uppercase digest", atOpen: true, want: errdef.ErrInvalidDigest, text: "lowercase hex",
			setup: func(t *testing.T, e env) {
				rewriteIndex(t, e.root, func(s string) string {
					return strings.Replace(s, e.m.Digest.String(), "sha256:"+strings.ToUpper(e.m.Digest.Encoded()), 1)
				})
			}},
		{name: "negative size", atOpen: true, want: errdef.ErrInvalidSize, text: "size -1 is negative",
			setup: func(t *testing.T, e env) {
				rewriteIndex(t, e.root, func(s string) string { return strings.Replace(s, `"size":`, `"size":-1,"x":`, 1) })
			}},
		{name: "blob is a symlink", want: errdef.ErrUnsafePath, text: "symlink",
			setup: func(t *testing.T, e env) {
				p := blobFile(e.root, e.m)
				os.Remove(p)
				if err := os.Symlink("../../../canary", p); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "size disagrees with the blob", want: errdef.ErrSizeMismatch, text: "descriptor says",
			setup: func(t *testing.T, e env) {
				b, _ := os.ReadFile(blobFile(e.root, e.m))
				replaceBlob(t, e.root, e.m, append(b, ' '))
			}},
		{name: "wrong digest", want: errdef.ErrDigestMismatch, text: "hashes to",
			setup: func(t *testing.T, e env) {
				b, _ := os.ReadFile(blobFile(e.root, e.m))
				b[len(b)-2] = ' ' // same size, other bytes
				replaceBlob(t, e.root, e.m, b)
			}},
		{name: "index.json with layers", atOpen: true, want: errdef.ErrInvalidArgument, text: "ambiguous",
			setup: func(t *testing.T, e env) {
				rewriteIndex(t, e.root, func(s string) string { return strings.Replace(s, `"manifests":`, `"layers":[],"manifests":`, 1) })
			}},
		{name: "manifest with manifests", want: errdef.ErrInvalidArgument, text: "ambiguous",
			setup: func(t *testing.T, e env) {
				// A manifest that also carries "manifests": re-push it and retag.
				l, _ := Open(e.root)
				defer l.Close()
				body := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":` +
					`{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + e.cfg.Digest.String() + `","size":` +
					itoa(e.cfg.Size) + `},"layers":[],"manifests":[]}`
				d, err := content.PushBytes(ctx, l, ocispec.MediaTypeImageManifest, []byte(body))
				if err != nil {
					t.Fatal(err)
				}
				if err := l.Tag(ctx, d, "latest"); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "manifest child digest with path traversal", want: errdef.ErrInvalidArgument, text: "digest",
			setup: func(t *testing.T, e env) {
				l, _ := Open(e.root)
				defer l.Close()
				body := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":` +
					`{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:../../../canary","size":6},"layers":[]}`
				d, err := content.PushBytes(ctx, l, ocispec.MediaTypeImageManifest, []byte(body))
				if err != nil {
					t.Fatal(err)
				}
				if err := l.Tag(ctx, d, "latest"); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "index.json of 100 MiB", atOpen: true, want: errdef.ErrTooLarge, text: "104857600 bytes is over the 4194304 byte limit",
			setup: func(t *testing.T, e env) {
				if err := os.Truncate(filepath.Join(e.root, IndexFile), 100<<20); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "symlinked index.json", atOpen: true, want: errdef.ErrUnsafePath, text: "index.json",
			setup: func(t *testing.T, e env) {
				p := filepath.Join(e.root, IndexFile)
				os.Rename(p, filepath.Join(e.root, "real.json"))
				os.Symlink("real.json", p)
			}},
		{name: "symlinked blobs directory", atOpen: true, want: errdef.ErrUnsafePath, text: "blobs",
			setup: func(t *testing.T, e env) {
				p := filepath.Join(e.root, BlobsDir)
				os.Rename(p, filepath.Join(e.outside, "blobs-elsewhere"))
				os.Symlink(filepath.Join(e.outside, "blobs-elsewhere"), p)
			}},
		{name: "symlinked blobs/sha256", atOpen: true, want: errdef.ErrUnsafePath, text: "sha256",
			setup: func(t *testing.T, e env) {
				p := filepath.Join(e.root, BlobsDir, "sha256")
				os.Rename(p, filepath.Join(e.root, "sha"))
				os.Symlink("../sha", p)
			}},
		{name: "index.json is a fifo", atOpen: true, want: errdef.ErrUnsafePath, text: "not a regular file",
			setup: func(t *testing.T, e env) {
				p := filepath.Join(e.root, IndexFile)
				os.Remove(p)
				if err := mkfifo(p); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "missing oci-layout", atOpen: true, want: errdef.ErrNotFound, text: "no oci-layout file",
			setup: func(t *testing.T, e env) { os.Remove(filepath.Join(e.root, LayoutFile)) }},
		{name: "unknown layout version", atOpen: true, want: errdef.ErrUnsupported, text: `"2.0.0"`,
			setup: func(t *testing.T, e env) {
				os.WriteFile(filepath.Join(e.root, LayoutFile), []byte(`{"imageLayoutVersion":"2.0.0"}`), 0o644)
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			outside := t.TempDir()
			root := filepath.Join(outside, "layout")
			if err := os.WriteFile(filepath.Join(outside, "canary"), []byte("canary"), 0o644); err != nil {
				t.Fatal(err)
			}
			l, err := Init(root)
			if err != nil {
				t.Fatal(err)
			}
			m := testImage(t, l, "x")
			if err := l.Tag(ctx, m, "latest"); err != nil {
				t.Fatal(err)
			}
			body, _ := content.ReadAll(ctx, l, m, 0)
			kids, _ := children(m, body)
			l.Close()
			tc.setup(t, env{root: root, outside: outside, m: m, cfg: kids[0]})
			before := outsideSnapshot(t, outside, root)

			err = hostileOps(ctx, root)
			t.Logf("error: %v", err)
			if err == nil {
				t.Fatal("hostile layout accepted")
			}
			if tc.atOpen && !strings.HasPrefix(err.Error(), "open layout") {
				t.Errorf("error %q does not come from Open", err)
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("error %q does not wrap %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Errorf("error %q does not say %q", err, tc.text)
			}
			after := outsideSnapshot(t, outside, root)
			if len(before) != len(after) {
				t.Errorf("files outside the layout changed: %d before, %d after", len(before), len(after))
			}
			for p, v := range before {
				if after[p] != v {
					t.Errorf("%s changed outside the layout", p)
				}
			}
		})
	}
}

// hostileOps opens a layout and does what a reader does: resolve, read every document of the
// graph verified, then GC. It returns the first error.
func hostileOps(ctx context.Context, root string) error {
	l, err := Open(root)
	if err != nil {
		return err
	}
	defer l.Close()
	d, err := l.Resolve(ctx, "latest")
	if err != nil {
		return err
	}
	var walk func(d ocispec.Descriptor) error
	walk = func(d ocispec.Descriptor) error {
		if err := content.ValidateDescriptor(d); err != nil {
			return err
		}
		rc, err := l.Fetch(ctx, d)
		if err != nil {
			return err
		}
		defer rc.Close()
		b, err := readAllVerified(rc, d)
		if err != nil {
			return err
		}
		kids, err := children(d, b)
		if err != nil {
			return err
		}
		for _, k := range kids {
			if err := walk(k); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(d); err != nil {
		return err
	}
	_, err = l.GC(ctx, GCOptions{})
	return err
}
