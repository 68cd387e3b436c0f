package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/image"
	"github.com/wharfoci/wharf/internal/rootfs"
)

// TestRepackRoundTrip: changes found from a snapshot, written as a layer and applied to a
// second copy of the base give the changed tree.
func TestRepackRoundTrip(t *testing.T) {
	mustRoot(t)
	base := []ent{
		{name: "etc/", typ: tar.TypeDir},
		{name: "etc/keep", body: "keep"},
		{name: "etc/modify", body: "old"},
		{name: "etc/chmod", body: "x"},
		{name: "etc/remove", body: "gone"},
		{name: "rmdir/", typ: tar.TypeDir},
		{name: "rmdir/a/", typ: tar.TypeDir},
		{name: "rmdir/a/f", body: "f"},
		{name: "redo/", typ: tar.TypeDir},
		{name: "redo/old", body: "old"},
		{name: "todir", body: "was a file"},
		{name: "link", typ: tar.TypeSymlink, link: "etc/keep"},
		{name: "hl1", body: "shared"},
		{name: "hl2", typ: tar.TypeLink, link: "hl1"},
	}
	tb := mkTar(t, base)
	r1, r2 := t.TempDir(), t.TempDir()
	for _, r := range []string{r1, r2} {
		if _, err := applyBytes(t, r, tb, image.MediaTypeLayer, Options{}); err != nil {
			t.Fatal(err)
		}
	}
	root, err := rootfs.Open(r1)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	var snap bytes.Buffer
	if err := WriteSnapshot(root, &snap); err != nil {
		t.Fatal(err)
	}
	before, err := ReadSnapshot(bytes.NewReader(snap.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	j := func(p string) string { return filepath.Join(r1, p) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(j("etc/modify"), []byte("new"), 0644))
	must(os.Chmod(j("etc/chmod"), 0600))
	must(os.Remove(j("etc/remove")))
	must(os.RemoveAll(j("rmdir")))
	must(os.RemoveAll(j("redo")))
	must(os.Mkdir(j("redo"), 0755))
	must(os.WriteFile(j("redo/new"), []byte("new"), 0644))
	must(os.Remove(j("todir")))
	must(os.MkdirAll(j("todir/sub"), 0755))
	must(os.Remove(j("link")))
	must(os.Symlink("/elsewhere", j("link")))
	must(os.WriteFile(j("added"), []byte("added"), 0644))
	must(os.Link(j("etc/keep"), j("keep-link")))
	must(unix.Mkfifo(j("fifo"), 0600))

	changes, lower, err := Changes(root, before)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range changes {
		got[c.Rec.Path] = c.Kind.String()
	}
	want := map[string]string{
		".": "modified", "etc": "modified", "etc/modify": "modified", "etc/chmod": "modified", "etc/remove": "deleted",
		"rmdir": "deleted", "redo": "replaced", "redo/new": "added", "todir": "modified", "todir/sub": "added",
		"link": "modified", "added": "added", "keep-link": "added", "fifo": "added", "etc/keep": "modified",
	}
	if !reflect.DeepEqual(got, want) {
		var ks []string
		for k, v := range got {
			ks = append(ks, k+"="+v)
		}
		sort.Strings(ks)
		t.Errorf("changes: %v", ks)
	}
	var lb bytes.Buffer
	if err := WriteChanges(context.Background(), root, changes, lower, &lb, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	var lb2 bytes.Buffer
	WriteChanges(context.Background(), root, changes, lower, &lb2, WriteOptions{})
	if !bytes.Equal(lb.Bytes(), lb2.Bytes()) {
		t.Errorf("two writes of the same changes differ")
	}
	if _, err := applyBytes(t, r2, lb.Bytes(), image.MediaTypeLayer, Options{}); err != nil {
		t.Fatal(err)
	}
	a, b := snapshotRel(t, r1), snapshotRel(t, r2)
	if d := diffSnap(a, b); len(d) > 0 {
		t.Errorf("applied repack differs from the changed tree:\n%v", d)
	}
}

// snapshotRel describes a tree without inode numbers, ctimes or link counts.
func snapshotRel(t *testing.T, root string) map[string]string { return describeTree(t, root) }

func describeTree(t *testing.T, root string) map[string]string {
	r, _ := rootfs.Open(root)
	defer r.Close()
	tr := tree(t, root)
	m := map[string]string{}
	Walk(r, func(rec Record) error {
		if rec.Path == "." {
			return nil
		}
		mt := rec.Mtime
		if rec.IsDir() {
			mt = 0 // directory mtimes move as entries are created
		}
		m[rec.Path] = tr[rec.Path] + " " + time.Unix(0, mt).UTC().String() + " " + modeString(rec)
		return nil
	})
	return m
}

func modeString(r Record) string {
	return fmt.Sprintf("%o %d:%d", r.Mode&07777, r.UID, r.GID)
}
