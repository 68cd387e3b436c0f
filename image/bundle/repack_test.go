package bundle

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/image"
	"github.com/wharfoci/wharf/image/layout"
)

func TestRepackNewMutate(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	ctx := context.Background()
	dir := t.TempDir()
	l, err := layout.Init(filepath.Join(dir, "layout"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	sde := time.Unix(1700000000, 0).UTC()
	base, err := NewImage(ctx, l, "base", nil, &sde)
	if err != nil {
		t.Fatal(err)
	}
	b := filepath.Join(dir, "bundle")
	if _, err := Unpack(ctx, l, base, b, Options{}); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(b, "rootfs/etc"), 0755)
	os.WriteFile(filepath.Join(b, "rootfs/etc/hello"), []byte("hi"), 0644)
	res, err := Repack(ctx, l, b, "v1", RepackOptions{SourceDateEpoch: &sde})
	if err != nil {
		t.Fatal(err)
	}
	if res.Changes != 3 { // ".", etc, etc/hello
		t.Errorf("changes %d", res.Changes)
	}
	// the repack is reproducible: same tree, same epoch → same layer
	b2 := filepath.Join(dir, "bundle2")
	if _, err := Unpack(ctx, l, base, b2, Options{}); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(b2, "rootfs/etc"), 0755)
	os.WriteFile(filepath.Join(b2, "rootfs/etc/hello"), []byte("hi"), 0644)
	res2, err := Repack(ctx, l, b2, "v1b", RepackOptions{SourceDateEpoch: &sde})
	if err != nil {
		t.Fatal(err)
	}
	if res.Layer.Digest != res2.Layer.Digest || res.Manifest.Digest != res2.Manifest.Digest {
		t.Errorf("repack not reproducible: %s vs %s", res.Layer.Digest, res2.Layer.Digest)
	}
	// the bundle now stands for v1: a repack without changes has nothing but the root
	res3, err := Repack(ctx, l, b, "v2", RepackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res3.Changes != 0 {
		t.Errorf("second repack found %d changes", res3.Changes)
	}
	// config edits keep the old manifest by digest and move the tag
	md, err := Mutate(ctx, l, res.Manifest, "v1", "wharf config", &sde, func(img *ocispec.Image) error {
		img.Config.Cmd = []string{"/bin/true"}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := l.Resolve(ctx, "v1")
	if err != nil || got.Digest != md.Digest {
		t.Fatalf("v1 → %s, %v; want %s", got.Digest, err, md.Digest)
	}
	if ok, _ := l.Exists(ctx, res.Manifest); !ok {
		t.Errorf("old manifest gone")
	}
	mb, _ := content.ReadAll(ctx, l, md, 0)
	m, _ := image.ParseManifest(md, mb)
	cb, _ := content.ReadAll(ctx, l, m.Config, 0)
	var img ocispec.Image
	json.Unmarshal(cb, &img)
	if len(img.History) != 2 || !img.History[1].EmptyLayer || img.Config.Cmd[0] != "/bin/true" || len(img.RootFS.DiffIDs) != 1 {
		t.Errorf("config after mutate: %+v", img)
	}
}
