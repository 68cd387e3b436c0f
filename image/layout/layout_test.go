package layout

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/errdef"
)

// testImage pushes a one-layer image (config, layer, manifest) and returns its manifest.
func testImage(t testing.TB, l *Layout, seed string) ocispec.Descriptor {
	t.Helper()
	ctx := context.Background()
	layer, err := content.PushBytes(ctx, l, ocispec.MediaTypeImageLayer, []byte("layer "+seed))
	if err != nil {
		t.Fatal(err)
	}
	cfgb, _ := json.Marshal(ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{layer.Digest}}})
	cfg, err := content.PushBytes(ctx, l, ocispec.MediaTypeImageConfig, cfgb)
	if err != nil {
		t.Fatal(err)
	}
	return pushJSON(t, l, ocispec.MediaTypeImageManifest, ocispec.Manifest{
		Versioned: specsV2, MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: []ocispec.Descriptor{layer},
	})
}

func pushJSON(t testing.TB, l *Layout, mt string, v any) ocispec.Descriptor {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	d, err := content.PushBytes(context.Background(), l, mt, b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func newLayout(t testing.TB) *Layout {
	t.Helper()
	l, err := Init(filepath.Join(t.TempDir(), "layout"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestInitOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "l")
	l, err := Init(dir)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	for _, name := range []string{LayoutFile, IndexFile, BlobsDir} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s missing after Init: %v", name, err)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, LayoutFile))
	if string(b) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout = %s", b)
	}
	// Init again opens it; Open works.
	if l, err = Init(dir); err != nil {
		t.Fatalf("second Init: %v", err)
	}
	l.Close()
	if l, err = Open(dir); err != nil {
		t.Fatalf("Open: %v", err)
	}
	l.Close()

	notEmpty := t.TempDir()
	os.WriteFile(filepath.Join(notEmpty, "x"), nil, 0o644)
	if _, err := Init(notEmpty); !errors.Is(err, errdef.ErrAlreadyExists) {
		t.Errorf("Init of a non-empty directory: %v, want ErrAlreadyExists", err)
	}
	if _, err := Open(t.TempDir()); !errors.Is(err, errdef.ErrNotFound) {
		t.Errorf("Open of an empty directory: %v, want ErrNotFound", err)
	}
}

func TestTagResolveListUntag(t *testing.T) {
	ctx := context.Background()
	l := newLayout(t)
	m1 := testImage(t, l, "1")
	m2 := testImage(t, l, "2")

	if _, err := l.Resolve(ctx, "latest"); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("resolve before tag: %v", err)
	}
	if err := l.Tag(ctx, m1, "latest"); err != nil {
		t.Fatal(err)
	}
	if err := l.Tag(ctx, m1, "v1"); err != nil {
		t.Fatal(err)
	}
	if err := l.Tag(ctx, m2, "latest"); err != nil { // moves the tag
		t.Fatal(err)
	}
	got, err := l.Resolve(ctx, "latest")
	if err != nil || got.Digest != m2.Digest {
		t.Fatalf("resolve latest = %v, %v; want %s", got.Digest, err, m2.Digest)
	}
	if got, err := l.Resolve(ctx, m1.Digest.String()); err != nil || got.Digest != m1.Digest || got.MediaType != m1.MediaType {
		t.Fatalf("resolve by digest = %+v, %v", got, err)
	}
	list, err := l.List(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("list = %+v, %v", list, err)
	}
	// Untagged entry by digest, then tagging it turns it into the tagged one.
	m3 := testImage(t, l, "3")
	if got, err := l.Resolve(ctx, m3.Digest.String()); err != nil || got.MediaType != ocispec.MediaTypeImageManifest {
		t.Fatalf("resolve untracked manifest by digest = %+v, %v", got, err)
	}
	if err := l.Tag(ctx, m3, m3.Digest.String()); err != nil {
		t.Fatal(err)
	}
	if err := l.Tag(ctx, m3, m3.Digest.String()); err != nil { // idempotent
		t.Fatal(err)
	}
	list, _ = l.List(ctx)
	if len(list) != 3 || list[2].Name != "" {
		t.Fatalf("list after untagged add = %+v", list)
	}
	if err := l.Tag(ctx, m3, "v3"); err != nil {
		t.Fatal(err)
	}
	list, _ = l.List(ctx)
	if len(list) != 3 || list[2].Name != "v3" {
		t.Fatalf("list after tagging the untagged entry = %+v", list)
	}
	if err := l.Untag(ctx, "v1"); err != nil {
		t.Fatal(err)
	}
	if err := l.Untag(ctx, "v1"); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("second untag: %v", err)
	}
	if _, err := l.Resolve(ctx, "v1"); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("resolve after untag: %v", err)
	}

	missing := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("nope"), Size: 4}
	if err := l.Tag(ctx, missing, "x"); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("tag of a missing blob: %v", err)
	}
	for _, bad := range []string{"", "a/", "-a", "a b", "a..b/", "../x", "a\x00"} {
		if err := l.Tag(ctx, m1, bad); !errors.Is(err, errdef.ErrInvalidArgument) {
			t.Errorf("tag %q: %v, want ErrInvalidArgument", bad, err)
		}
	}
	for _, good := range []string{"a", "v1.0", "example.com/app:1.0", "a--b", "a@b+c", "A_b-c"} {
		if err := ValidateRefName(good); err != nil {
			t.Errorf("ValidateRefName(%q): %v", good, err)
		}
	}
}

func TestDelete(t *testing.T) {
	ctx := context.Background()
	l := newLayout(t)
	m := testImage(t, l, "1")
	if err := l.Tag(ctx, m, "a"); err != nil {
		t.Fatal(err)
	}
	if err := l.Delete(ctx, m.Digest); err != nil {
		t.Fatal(err)
	}
	if ok, _ := l.Exists(ctx, m); ok {
		t.Fatal("blob still there")
	}
	if list, _ := l.List(ctx); len(list) != 0 {
		t.Fatalf("index still lists it: %+v", list)
	}
	if err := l.Delete(ctx, m.Digest); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}
