package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharfoci/wharf/image"
	"github.com/wharfoci/wharf/internal/rootfs"
)

// FuzzApply applies arbitrary archives: Apply may fail, but must not panic and must not change
// anything outside the root.
func FuzzApply(f *testing.F) {
	f.Add(mkTar(f, []ent{{name: "a/b", body: "x"}, {name: "l", typ: tar.TypeSymlink, link: "/"}, {name: "l/c", body: "y"}}))
	f.Add(mkTar(f, []ent{{name: "../x", body: "x"}, {name: "h", typ: tar.TypeLink, link: "../x"}, {name: ".wh.x"}, {name: "d/.wh..wh..opq"}}))
	f.Add(mkTar(f, []ent{{name: "d/", typ: tar.TypeDir, mode: 0}, {name: "d/f", body: "f"}, {name: "d", body: "now a file"}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		parent := t.TempDir()
		os.WriteFile(filepath.Join(parent, "canary"), []byte("canary"), 0644)
		root := filepath.Join(parent, "root")
		os.Mkdir(root, 0755)
		before := snapshot(t, parent, root)
		r, err := rootfs.Open(root)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		Apply(context.Background(), r, bytes.NewReader(b), image.MediaTypeLayer, Options{Limits: Limits{MaxBytes: 1 << 20, MaxEntries: 1000}})
		if d := diffSnap(before, snapshot(t, parent, root)); len(d) > 0 {
			t.Fatalf("outside the root changed:\n%s", strings.Join(d, "\n"))
		}
	})
}
