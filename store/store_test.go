package store

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/content"
	imagecopy "github.com/wharfoci/wharf/image/copy"
	"github.com/wharfoci/wharf/image/layout"
	"github.com/wharfoci/wharf/snapshot"
)

type entry struct {
	name, body string
	dir        bool
}

func tarOf(t *testing.T, es ...entry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range es {
		h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		if e.dir {
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	return b.Bytes()
}

// testImage stores in a new layout an image of the layers given and returns the layout and
// the manifest.
func testImage(t *testing.T, layers ...[]byte) (*layout.Layout, ocispec.Descriptor) {
	t.Helper()
	ctx := context.Background()
	l, err := layout.Init(filepath.Join(t.TempDir(), "src"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var descs []ocispec.Descriptor
	var diffs []digest.Digest
	for _, b := range layers {
		d, err := content.PushBytes(ctx, l, ocispec.MediaTypeImageLayer, b)
		if err != nil {
			t.Fatal(err)
		}
		descs = append(descs, d)
		diffs = append(diffs, d.Digest)
	}
	cb, _ := json.Marshal(ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: diffs}})
	cd, _ := content.PushBytes(ctx, l, ocispec.MediaTypeImageConfig, cb)
	mb, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cd, Layers: descs})
	md, _ := content.PushBytes(ctx, l, ocispec.MediaTypeImageManifest, mb)
	if err := l.Tag(ctx, md, "latest"); err != nil {
		t.Fatal(err)
	}
	return l, md
}

func TestNormalizeName(t *testing.T) {
	for _, tc := range []struct {
		in    string
		local bool
		want  string
	}{
		{"busybox", false, "docker.io/library/busybox:latest"},
		{"app", true, "localhost/app:latest"},
		{"team/app:v1", true, "localhost/team/app:v1"},
		{"registry.example/app:v1", true, "registry.example/app:v1"},
		{"localhost:5000/app", true, "localhost:5000/app:latest"},
		{"localhost/app:v2", true, "localhost/app:v2"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := NormalizeName(tc.in, tc.local)
			if err != nil || got != tc.want {
				t.Fatalf("NormalizeName(%q, %v) = %q, %v; want %q", tc.in, tc.local, got, err, tc.want)
			}
		})
	}
	if _, err := NormalizeName("UPPER/app", true); err == nil {
		t.Error("an invalid name was accepted")
	}
}

// TestImportUnpack: an image imported is unpacked once into one committed snapshot per
// layer (whiteouts and opaque directories applied through the overlay), shared by a second
// image with the same first layer.
func TestImportUnpack(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (mounts)")
	}
	ctx := context.Background()
	l1 := tarOf(t, entry{name: "etc/", dir: true}, entry{name: "etc/a", body: "a"}, entry{name: "etc/b", body: "b"},
		entry{name: "opt/", dir: true}, entry{name: "opt/old", body: "old"})
	l2 := tarOf(t, entry{name: "etc/.wh.a"}, entry{name: "opt/", dir: true}, entry{name: "opt/.wh..wh..opq"}, entry{name: "opt/new", body: "new"})
	src, md := testImage(t, l1, l2)
	for _, d := range []snapshot.Driver{snapshot.Overlay, snapshot.Native} {
		t.Run(string(d), func(t *testing.T) {
			s, err := Open(ctx, filepath.Join(t.TempDir(), "store"), Options{Driver: d})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			root, err := s.Import(ctx, src, "latest", "localhost/test:latest", imagecopy.Options{})
			if err != nil || root.Digest != md.Digest {
				t.Fatalf("import = %v, %v", root.Digest, err)
			}
			if got, err := s.Resolve(ctx, "localhost/test:latest"); err != nil || got.Digest != md.Digest {
				t.Fatalf("resolve = %v, %v", got.Digest, err)
			}
			top, err := s.Unpack(ctx, md)
			if err != nil {
				t.Fatal(err)
			}
			chain := ChainIDs([]digest.Digest{digest.FromBytes(l1), digest.FromBytes(l2)})
			if top != chain[1].String() {
				t.Fatalf("top = %s, want %s", top, chain[1])
			}
			n := 0
			s.Snapshots.Walk(ctx, func(snapshot.Info) error { n++; return nil })
			if again, err := s.Unpack(ctx, md); err != nil || again != top {
				t.Fatalf("second unpack: %s %v", again, err)
			}
			m := 0
			s.Snapshots.Walk(ctx, func(snapshot.Info) error { m++; return nil })
			if n != 2 || m != 2 {
				t.Fatalf("snapshots: %d, then %d; want 2", n, m)
			}
			mounts, err := s.Snapshots.View(ctx, "check", top)
			if err != nil {
				t.Fatal(err)
			}
			err = s.WithMounts(mounts, func(dir string) error {
				for p, want := range map[string]string{"etc/a": "", "etc/b": "b", "opt/old": "", "opt/new": "new"} {
					b, err := os.ReadFile(filepath.Join(dir, p))
					if want == "" {
						if err == nil {
							t.Errorf("%s is visible", p)
						}
						continue
					}
					if string(b) != want {
						t.Errorf("%s = %q (%v), want %q", p, b, err, want)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Snapshots.Remove(ctx, "check"); err != nil {
				t.Fatal(err)
			}
		})
	}
}
