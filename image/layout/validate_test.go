package layout

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/errdef"
)

// overwriteBlob replaces the stored bytes of d (blobs are read-only) to simulate corruption.
func overwriteBlob(t *testing.T, l *Layout, d digest.Digest, b []byte) {
	t.Helper()
	p := filepath.Join(l.Root(), BlobsDir, d.Algorithm().String(), d.Encoded())
	os.Chmod(p, 0o644)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestValidate(t *testing.T) {
	ctx := context.Background()
	type fixture struct {
		l                  *Layout
		root, layer, index ocispec.Descriptor
	}
	// setup: an index tagged "multi" holding a manifest tagged "img" as well.
	setup := func(t *testing.T) fixture {
		l := newLayout(t)
		m := testImage(t, l, "one")
		b, _ := content.ReadAll(ctx, l, m, 0)
		var man ocispec.Manifest
		mustUnmarshal(t, b, &man)
		idx := pushJSON(t, l, ocispec.MediaTypeImageIndex, ocispec.Index{Versioned: specsV2, MediaType: ocispec.MediaTypeImageIndex,
			Manifests: []ocispec.Descriptor{m}})
		if err := l.Tag(ctx, m, "img"); err != nil {
			t.Fatal(err)
		}
		if err := l.Tag(ctx, idx, "multi"); err != nil {
			t.Fatal(err)
		}
		return fixture{l: l, root: m, layer: man.Layers[0], index: idx}
	}
	tests := []struct {
		name   string
		break_ func(t *testing.T, f fixture)
		opts   ValidateOptions
		want   error
		path   string // substring of the error's path
	}{
		{name: "valid", break_: func(*testing.T, fixture) {}},
		{name: "valid with diff_ids", break_: func(*testing.T, fixture) {}, opts: ValidateOptions{DiffIDs: true}},
		{
			name:   "layer digest mismatch",
			break_: func(t *testing.T, f fixture) { overwriteBlob(t, f.l, f.layer.Digest, []byte("layer ONE")) },
			want:   errdef.ErrDigestMismatch, path: "(manifest) → " + "sha256:",
		},
		{
			name:   "layer size mismatch",
			break_: func(t *testing.T, f fixture) { overwriteBlob(t, f.l, f.layer.Digest, []byte("layer one!")) },
			want:   errdef.ErrSizeMismatch, path: "(layer): ",
		},
		{
			name: "layer missing",
			break_: func(t *testing.T, f fixture) {
				os.Remove(filepath.Join(f.l.Root(), BlobsDir, "sha256", f.layer.Digest.Encoded()))
			},
			want: errdef.ErrNotFound, path: "(layer)",
		},
		{
			name: "layer is a symlink",
			break_: func(t *testing.T, f fixture) {
				p := filepath.Join(f.l.Root(), BlobsDir, "sha256", f.layer.Digest.Encoded())
				outside := filepath.Join(t.TempDir(), "x")
				os.WriteFile(outside, []byte("layer one"), 0o644)
				os.Remove(p)
				os.Symlink(outside, p)
			},
			want: errdef.ErrUnsafePath, path: "(layer)",
		},
		{
			name: "manifest corrupted",
			break_: func(t *testing.T, f fixture) {
				b, _ := content.ReadAll(ctx, f.l, f.root, 0)
				b[len(b)-2] = ' '
				overwriteBlob(t, f.l, f.root.Digest, b)
			},
			want: errdef.ErrDigestMismatch, path: "(manifest): ",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := setup(t)
			tc.break_(t, f)
			res, err := f.l.Validate(ctx, nil, tc.opts)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if res.Roots != 2 || res.Indexes != 1 || res.Manifests != 1 || res.Configs != 1 || res.Layers != 1 || res.Blobs != 4 || res.Bytes == 0 {
					t.Fatalf("result %+v", res)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, tc.want) {
				t.Fatalf("Validate = %v, want a *ValidationError wrapping %v", err, tc.want)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "index.json[") || !strings.Contains(msg, tc.path) {
				t.Fatalf("error %q: want a path containing %q", msg, tc.path)
			}
		})
	}
}

func TestValidateDiffIDMismatch(t *testing.T) {
	ctx := context.Background()
	l := newLayout(t)
	layer, _ := content.PushBytes(ctx, l, ocispec.MediaTypeImageLayer, []byte("layer"))
	cfg := pushJSON(t, l, ocispec.MediaTypeImageConfig, ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromString("other")}}})
	m := pushJSON(t, l, ocispec.MediaTypeImageManifest, ocispec.Manifest{Versioned: specsV2, MediaType: ocispec.MediaTypeImageManifest,
		Config: cfg, Layers: []ocispec.Descriptor{layer}})
	if _, err := l.Validate(ctx, []ocispec.Descriptor{m}, ValidateOptions{}); err != nil {
		t.Fatalf("without DiffIDs: %v", err)
	}
	_, err := l.Validate(ctx, []ocispec.Descriptor{m}, ValidateOptions{DiffIDs: true})
	if !errors.Is(err, errdef.ErrDigestMismatch) || !strings.Contains(err.Error(), "diff_ids") {
		t.Fatalf("with DiffIDs: %v", err)
	}
}

func TestValidateHostileDescriptor(t *testing.T) {
	ctx := context.Background()
	l := newLayout(t)
	tests := []struct {
		name string
		d    ocispec.Descriptor
		want error
	}{
		{"traversal digest", ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: "sha256:../../x", Size: 2}, errdef.ErrInvalidDigest},
		{"negative size", ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("{}"), Size: -1}, errdef.ErrInvalidSize},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := l.Validate(ctx, []ocispec.Descriptor{tc.d}, ValidateOptions{}); !errors.Is(err, tc.want) {
				t.Fatalf("Validate = %v, want %v", err, tc.want)
			}
		})
	}
}

func mustUnmarshal(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}
