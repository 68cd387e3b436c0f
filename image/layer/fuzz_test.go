package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
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
	// sparse entries: a PAX 1.0 map, an old GNU map with an extension block, a PAX 0.1 map
	f.Add(archive(pax1Sparse("s", 1<<20, mapText(sparseFrag{0, 5}, sparseFrag{8192, 3}), []byte("hellobye"))))
	f.Add(archive(oldGNUSparse("s", 1<<20, []sparseFrag{{0, 1}, {512, 1}, {1024, 1}, {1536, 1}, {2048, 1}}, []byte("abcde")), plainFile("after", []byte("x"))))
	f.Add(archive(pax0Sparse("s", 4096, "1", "100,2", []byte("hi"))))
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

// FuzzReadSnapshot reads arbitrary snapshots: ReadSnapshot may fail but must not panic, and
// what it accepts encodes to a snapshot it reads back to the same records.
func FuzzReadSnapshot(f *testing.F) {
	valid := []byte(snapshotMagic)
	for _, r := range []Record{{Path: ".", Mode: 040755}, {Path: "a\nb", Mode: 040700, UID: 1, Size: 3, Mtime: -1, Ino: 7, Nlink: 2}, {Path: "a\nb/" + recordLike, Mode: 0100644, Size: 1 << 40}} {
		valid = appendRecord(valid, r)
	}
	f.Add(valid)
	f.Add([]byte(snapshotMagic))
	f.Add(valid[:len(valid)-3])
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := ReadSnapshot(bytes.NewReader(b))
		if err != nil {
			return
		}
		enc := []byte(snapshotMagic)
		for _, r := range recs {
			enc = appendRecord(enc, r)
		}
		again, err := ReadSnapshot(bytes.NewReader(enc))
		if err != nil || !reflect.DeepEqual(recs, again) {
			t.Fatalf("re-encoded snapshot reads back as %v, %v; want %v", again, err, recs)
		}
	})
}
