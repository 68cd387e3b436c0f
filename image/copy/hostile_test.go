package copy_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/image/copy"
	"github.com/wharfoci/wharf/image/layout"
)

// A source layout whose layer is a symlink to a file outside: the copy fails, the outside
// file is neither read into the destination nor changed, and nothing is tagged.
func TestCopyHostileSource(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	outside := t.TempDir()
	canary := filepath.Join(outside, "canary")
	os.WriteFile(canary, []byte("secret"), 0o644)
	layer := f.blobs[f.arm64.Digest][2]
	p := filepath.Join(f.l.Root(), "blobs", "sha256", layer.Encoded())
	os.Remove(p)
	if err := os.Symlink(canary, p); err != nil {
		t.Fatal(err)
	}
	for _, dstIsArchive := range []bool{false, true} {
		var dst interface {
			copyTarget
			List(context.Context) ([]layout.Entry, error)
		}
		if dstIsArchive {
			a, err := layout.OpenArchive(ctx, filepath.Join(t.TempDir(), "a.tar"), layout.ArchiveOptions{Create: true})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			dst = a
		} else {
			dst = newLayout(t, "dst")
		}
		_, err := copy.Copy(ctx, f.l, "single", dst, "x", copy.Options{})
		if !errors.Is(err, errdef.ErrUnsafePath) {
			t.Fatalf("copy from a layout with a symlinked blob: %v", err)
		}
		assertHas(t, dst, false, layer, f.arm64.Digest)
		if list, _ := dst.List(ctx); len(list) != 0 {
			t.Fatalf("tagged after failure: %+v", list)
		}
	}
	if b, _ := os.ReadFile(canary); string(b) != "secret" {
		t.Fatal("canary changed")
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 1 {
		t.Fatalf("files created outside: %v", ents)
	}
}
