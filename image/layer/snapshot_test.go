package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/image"
	"github.com/wharfoci/wharf/internal/rootfs"
)

// recordLike is a name whose bytes hold the encoding of a whole snapshot record (of "x"): a
// format that trusted its bytes to end a record would take it for one.
var recordLike = "a" + string(appendRecord(nil, Record{Path: "x", Mode: 0100644, UID: 1, GID: 1, Size: 1, Mtime: 1, Ctime: 1, Ino: 1, Nlink: 1}))

// oddNames are names a hostile (or merely odd) layer may hold: every control byte but NUL,
// names that look like snapshot records or its header line.
var oddNames = []string{
	"new\nline", "\n", "cr\rreturn", "tab\there", "ctl\x01\x02\x1b[31m\x7f", "\x1f\x0b\x0c",
	snapshotMagic, recordLike, "ünï\xff\xfe",
}

// oddLayer is a layer holding oddNames as files and as directories with children.
func oddLayer() []ent {
	var l []ent
	for i, n := range oddNames {
		l = append(l, ent{name: n, body: strings.Repeat("x", i+1)})
		l = append(l, ent{name: "d" + n + "/", typ: tar.TypeDir})
		l = append(l, ent{name: "d" + n + "/" + n, body: "child"})
		l = append(l, ent{name: "d" + n + "/l", typ: tar.TypeSymlink, link: n})
	}
	return l
}

// snapshotOf writes root's snapshot and reads it back.
func snapshotOf(t *testing.T, root *rootfs.Root) ([]byte, []Record) {
	t.Helper()
	var b bytes.Buffer
	if err := WriteSnapshot(root, &b); err != nil {
		t.Fatal(err)
	}
	recs, err := ReadSnapshot(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	return b.Bytes(), recs
}

// tarNames lists the entry names of an uncompressed tar, with the content of regular files.
func tarNames(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		c, _ := io.ReadAll(tr)
		out = append(out, h.Name+"="+string(c))
	}
}

// TestSnapshotOddNames: a layer whose names hold newlines and other control bytes, or look like
// snapshot records, is recorded and read back exactly; without a change repack finds none, and
// after one change exactly that change.
func TestSnapshotOddNames(t *testing.T) {
	mustRoot(t)
	base := mkTar(t, oddLayer())
	r1, r2 := t.TempDir(), t.TempDir()
	for _, r := range []string{r1, r2} {
		if _, err := applyBytes(t, r, base, image.MediaTypeLayer, Options{}); err != nil {
			t.Fatal(err)
		}
	}
	root, err := rootfs.Open(r1)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	_, before := snapshotOf(t, root)
	var walked []Record
	Walk(root, func(r Record) error { walked = append(walked, r); return nil })
	if !reflect.DeepEqual(before, walked) {
		t.Fatalf("snapshot read back differs from the tree:\n%v\n%v", before, walked)
	}
	if want := 1 + 4*len(oddNames); len(before) != want {
		t.Errorf("%d records, want %d", len(before), want)
	}

	repack := func(t *testing.T) ([]Change, []byte) {
		t.Helper()
		changes, lower, err := Changes(root, before)
		if err != nil {
			t.Fatal(err)
		}
		var lb bytes.Buffer
		if err := WriteChanges(context.Background(), root, changes, lower, &lb, WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		return changes, lb.Bytes()
	}
	t.Run("unchanged", func(t *testing.T) {
		changes, layer := repack(t)
		if len(changes) != 0 {
			t.Errorf("changes without a change: %v", changes)
		}
		if names := tarNames(t, layer); len(names) != 0 {
			t.Errorf("layer entries without a change: %q", names)
		}
	})
	t.Run("one change", func(t *testing.T) {
		time.Sleep(10 * time.Millisecond) // ctime moves on the next tick
		changed := "d" + recordLike + "/" + recordLike
		if err := os.WriteFile(filepath.Join(r1, changed), []byte("changed content"), 0644); err != nil {
			t.Fatal(err)
		}
		changes, layer := repack(t)
		if len(changes) != 1 || changes[0].Kind != Modified || changes[0].Rec.Path != changed {
			t.Fatalf("changes %v, want only %q modified", changes, changed)
		}
		if got, want := tarNames(t, layer), []string{changed + "=changed content"}; !reflect.DeepEqual(got, want) {
			t.Errorf("layer entries %q, want %q", got, want)
		}
		if _, err := applyBytes(t, r2, layer, image.MediaTypeLayer, Options{}); err != nil {
			t.Fatal(err)
		}
		if d := diffSnap(describeTree(t, r1), describeTree(t, r2)); len(d) > 0 {
			t.Errorf("applied repack differs from the changed tree:\n%q", d)
		}
	})
	t.Run("one deletion", func(t *testing.T) {
		time.Sleep(10 * time.Millisecond)
		if err := os.Remove(filepath.Join(r1, "new\nline")); err != nil {
			t.Fatal(err)
		}
		changes, layer := repack(t)
		var got []string
		for _, c := range changes {
			got = append(got, c.Kind.String()+" "+c.Rec.Path)
		}
		want := []string{"modified .", "modified d" + recordLike + "/" + recordLike, "deleted new\nline"}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("changes %q, want %q", got, want)
		}
		if got, want := tarNames(t, layer), []string{".wh.new\nline=", "d" + recordLike + "/" + recordLike + "=changed content"}; !reflect.DeepEqual(got, want) {
			t.Errorf("layer entries %q, want %q", got, want)
		}
	})
}

// rawRecord encodes a record from raw field values (to forge out-of-range ones).
func rawRecord(path string, fields ...uint64) []byte {
	b := binary.AppendUvarint(nil, uint64(len(path)))
	b = append(b, path...)
	for i, f := range fields {
		if i >= 3 && i <= 5 {
			b = binary.AppendVarint(b, int64(f))
		} else {
			b = binary.AppendUvarint(b, f)
		}
	}
	return b
}

// TestReadSnapshotRejects: ReadSnapshot refuses, naming the record, what WriteSnapshot cannot
// have written.
func TestReadSnapshotRejects(t *testing.T) {
	rec := func(p string, mode uint32) []byte {
		return appendRecord(nil, Record{Path: p, Mode: mode, UID: 0, GID: 0, Size: 1, Mtime: 2, Ctime: 3, Ino: 4, Nlink: 1})
	}
	const dir, file = 040755, 0100644
	good := [][]byte{rec(".", dir), rec("a", dir), rec("a/f", file)}
	snap := func(recs ...[]byte) []byte {
		return append([]byte(snapshotMagic), bytes.Join(recs, nil)...)
	}
	if got, err := ReadSnapshot(bytes.NewReader(snap(good...))); err != nil || len(got) != 3 {
		t.Fatalf("control: %v %v", got, err)
	}
	full := snap(good...)
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "not a wharf snapshot"},
		{"other magic", []byte("wharf-snapshot-2\n"), "not a wharf snapshot"},
		{"no records", []byte(snapshotMagic), "no record of the root"},
		{"truncated record", full[:len(full)-1], "record 3"},
		{"truncated path", snap(rec(".", dir), []byte{10, 'a'}), "record 2: path"},
		{"trailing byte", append(snap(good...), 0x05), "record 4"},
		{"path over the limit", snap(rec(".", dir), binary.AppendUvarint(nil, maxSnapshotPath+1)), "limit"},
		{"root not first", snap(rec("a", dir)), "first record is not the root"},
		{"root a file", snap(rec(".", file)), "first record is not the root"},
		{"root twice", snap(rec(".", dir), rec(".", dir)), "not a clean"},
		{"duplicate", snap(rec(".", dir), rec("a", dir), rec("a", dir)), "listed twice"},
		{"child before parent", snap(rec(".", dir), rec("a/f", file), rec("a", dir)), "not a directory listed before"},
		{"parent a file", snap(rec(".", dir), rec("a", file), rec("a/f", file)), "not a directory listed before"},
		{"absolute", snap(rec(".", dir), rec("/a", file)), "not a clean"},
		{"dotdot", snap(rec(".", dir), rec("../a", file)), "not a clean"},
		{"inner dotdot", snap(rec(".", dir), rec("a", dir), rec("a/../b", file)), "not a clean"},
		{"double slash", snap(rec(".", dir), rec("a", dir), rec("a//f", file)), "not a clean"},
		{"trailing slash", snap(rec(".", dir), rec("a/", dir)), "not a clean"},
		{"empty path", snap(rec(".", dir), rec("", file)), "not a clean"},
		{"NUL", snap(rec(".", dir), rec("a\x00b", file)), "not a clean"},
		{"no file type", snap(rec(".", dir), rec("a", 0644)), "no file type"},
		{"negative size", snap(rec(".", dir), rawRecord("a", file, 0, 0, 1<<64-1, 0, 0, 1, 1)), "negative size"},
		{"uid over 32 bits", snap(rec(".", dir), rawRecord("a", file, 1<<32, 0, 0, 0, 0, 1, 1)), "uid: 4294967296 out of range"},
		{"mode over 32 bits", snap(rec(".", dir), rawRecord("a", 1<<40|file, 0, 0, 0, 0, 0, 1, 1)), "mode"},
		{"nlink over 32 bits", snap(rec(".", dir), rawRecord("a", file, 0, 0, 0, 0, 0, 1, 1<<33)), "link count"},
		{"varint overflow", snap(rec(".", dir), append(binary.AppendUvarint(nil, 1), 'a', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)), "mode"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadSnapshot(bytes.NewReader(tc.b))
			if !errors.Is(err, errdef.ErrInvalidArgument) {
				t.Fatalf("got %v, want an invalid-argument error", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}
