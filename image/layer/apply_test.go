package layer

import (
	"archive/tar"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/image"
)

func mustRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (chown, mknod)")
	}
}

func TestApplySemantics(t *testing.T) {
	mustRoot(t)
	dir := func(n string) ent { return ent{name: n, typ: tar.TypeDir} }
	file := func(n, b string) ent { return ent{name: n, body: b} }
	tests := []struct {
		name   string
		layers [][]ent
		want   map[string]string // path → tree() value; "" means absent
	}{
		{"whiteout hides lower file", [][]ent{
			{dir("a/"), file("a/f", "1"), file("a/g", "2")},
			{ent{name: "a/.wh.f"}},
		}, map[string]string{"a/f": "", "a/g": "file:2"}},
		{"whiteout hides lower dir tree", [][]ent{
			{dir("a/"), dir("a/b/"), file("a/b/f", "1")},
			{ent{name: "a/.wh.b"}},
		}, map[string]string{"a/b": "", "a": "dir"}},
		{"whiteout does not hide same layer before it", [][]ent{
			{file("x", "lower")},
			{file("x", "upper"), ent{name: ".wh.x"}},
		}, map[string]string{"x": "file:upper"}},
		{"whiteout then recreate", [][]ent{
			{dir("d/"), file("d/old", "o")},
			{ent{name: ".wh.d"}, dir("d/"), file("d/new", "n")},
		}, map[string]string{"d/old": "", "d/new": "file:n"}},
		{"opaque at end applies first", [][]ent{
			{dir("a/"), dir("a/b/"), dir("a/b/c/"), file("a/b/c/bar", "x"), file("a/keep", "k")},
			{dir("a/"), dir("a/b/"), dir("a/b/c/"), file("a/b/c/foo", "y"), ent{name: "a/.wh..wh..opq"}},
		}, map[string]string{"a/b/c/bar": "", "a/keep": "", "a/b/c/foo": "file:y"}},
		{"opaque first", [][]ent{
			{dir("a/"), file("a/old", "x")},
			{dir("a/"), ent{name: "a/.wh..wh..opq"}, file("a/new", "y")},
		}, map[string]string{"a/old": "", "a/new": "file:y"}},
		{"whiteout of missing path is a no-op", [][]ent{
			{ent{name: "nowhere/.wh.x"}, ent{name: ".wh.y"}},
		}, map[string]string{"nowhere": ""}},
		{"aufs metadata skipped", [][]ent{
			{dir(".wh..wh.plnk/"), file(".wh..wh.plnk/123.456", "x"), file(".wh..wh.aufs", ""), file("a", "a")},
		}, map[string]string{".wh..wh.plnk": "", ".wh..wh.aufs": "", "a": "file:a"}},
		{"duplicate entries last wins", [][]ent{
			{file("f", "first"), file("f", "second"), ent{name: "l", typ: tar.TypeSymlink, link: "a"}, ent{name: "l", typ: tar.TypeSymlink, link: "b"}},
		}, map[string]string{"f": "file:second", "l": "link:b"}},
		{"file over dir", [][]ent{
			{dir("x/"), file("x/child", "c")},
			{file("x", "now a file")},
		}, map[string]string{"x": "file:now a file", "x/child": ""}},
		{"dir over dir keeps children", [][]ent{
			{dir("x/"), file("x/child", "c")},
			{ent{name: "x/", typ: tar.TypeDir, mode: 0700}},
		}, map[string]string{"x/child": "file:c"}},
		{"dir over file", [][]ent{
			{file("x", "f")},
			{dir("x/"), file("x/y", "y")},
		}, map[string]string{"x": "dir", "x/y": "file:y"}},
		{"symlink over dir", [][]ent{
			{dir("x/"), file("x/y", "y")},
			{ent{name: "x", typ: tar.TypeSymlink, link: "/etc"}},
		}, map[string]string{"x": "link:/etc", "x/y": ""}},
		{"file over symlink does not follow it", [][]ent{
			{file("target", "t"), ent{name: "l", typ: tar.TypeSymlink, link: "target"}},
			{file("l", "new")},
		}, map[string]string{"target": "file:t", "l": "file:new"}},
		{"hardlink", [][]ent{
			{file("a", "data"), ent{name: "b", typ: tar.TypeLink, link: "a"}, ent{name: "sub/c", typ: tar.TypeLink, link: "/a"}},
		}, map[string]string{"b": "file:data", "sub/c": "file:data"}},
		{"hardlink to lower layer", [][]ent{
			{file("a", "data")},
			{ent{name: "b", typ: tar.TypeLink, link: "./a"}},
		}, map[string]string{"b": "file:data"}},
		{"devices and fifo", [][]ent{
			{ent{name: "dev/null", typ: tar.TypeChar, major: 1, minor: 3, mode: 0666}, ent{name: "dev/sda", typ: tar.TypeBlock, major: 8, minor: 0, mode: 0660}, ent{name: "p", typ: tar.TypeFifo, mode: 0600}},
		}, map[string]string{"dev/null": "chr:1:3", "dev/sda": "blk:8:0", "p": "fifo", "dev": "dir"}},
		{"implicit parents", [][]ent{
			{file("a/b/c/d", "deep")},
		}, map[string]string{"a/b/c": "dir", "a/b/c/d": "file:deep"}},
		{"deeper than the parent stack", [][]ent{
			{file(strings.Repeat("d/", 300)+"deep", "deep"), file(strings.Repeat("d/", 300)+"deep2", "2"), file("d/shallow", "s")},
		}, map[string]string{strings.Repeat("d/", 300) + "deep": "file:deep", strings.Repeat("d/", 300) + "deep2": "file:2", "d/shallow": "file:s"}},
		{"parent through symlink stays inside", [][]ent{
			{dir("usr/"), dir("usr/lib/"), ent{name: "lib", typ: tar.TypeSymlink, link: "/usr/lib"}, file("lib/x", "x")},
		}, map[string]string{"usr/lib/x": "file:x", "lib": "link:/usr/lib"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			if err := applyTars(t, root, tc.layers, Options{}); err != nil {
				t.Fatalf("apply: %v", err)
			}
			got := tree(t, root)
			for p, w := range tc.want {
				if got[p] != w {
					t.Errorf("%s: got %q, want %q", p, got[p], w)
				}
			}
			for p := range got {
				if filepath.Base(p) != "." && len(filepath.Base(p)) >= 4 && filepath.Base(p)[:4] == ".wh." {
					t.Errorf("whiteout written: %s", p)
				}
			}
		})
	}
}

func TestApplyAttributes(t *testing.T) {
	mustRoot(t)
	root := t.TempDir()
	m1 := time.Unix(1600000000, 123456789)
	m2 := time.Unix(1500000000, 0)
	layer := []ent{
		{name: "ro/", typ: tar.TypeDir, mode: 0555, uid: 7, gid: 8, mtime: m1},
		{name: "ro/file", body: "x", mode: 04755, uid: 1000, gid: 1001, mtime: m2},
		{name: "ro/sg", body: "x", mode: 02711, uid: 5, gid: 6, mtime: m2},
		{name: "sticky/", typ: tar.TypeDir, mode: 01777, mtime: m1},
		{name: "ro/link", typ: tar.TypeSymlink, link: "file", uid: 3, gid: 4, mtime: m2},
		{name: "back/", typ: tar.TypeDir, mode: 0750, mtime: m1},
		{name: "other/x", body: "x"},
		{name: "back/later", body: "x"}, // back to a directory already left
		{name: "late/child", body: "x"}, // children before their directory entry
		{name: "late/", typ: tar.TypeDir, mode: 0700, uid: 9, gid: 9, mtime: m1},
		{name: "x", body: "x", pax: map[string]string{"SCHILY.xattr.user.wharf": "yes", "SCHILY.xattr.trusted.overlay.opaque": "y", "SCHILY.xattr.security.capability": string([]byte{1, 0, 0, 2, 0, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})}},
	}
	if err := applyTars(t, root, [][]ent{layer}, Options{}); err != nil {
		t.Fatal(err)
	}
	check := func(p string, mode uint32, uid, gid uint32, mtime time.Time) {
		t.Helper()
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(root, p), &st); err != nil {
			t.Fatal(err)
		}
		if mode != 0 && st.Mode&07777 != mode {
			t.Errorf("%s: mode %o, want %o", p, st.Mode&07777, mode)
		}
		if st.Uid != uid || st.Gid != gid {
			t.Errorf("%s: owner %d:%d, want %d:%d", p, st.Uid, st.Gid, uid, gid)
		}
		if got := time.Unix(st.Mtim.Sec, st.Mtim.Nsec); !got.Equal(mtime) {
			t.Errorf("%s: mtime %v, want %v", p, got, mtime)
		}
	}
	check("ro", 0555, 7, 8, m1) // children created after: attributes applied last
	check("ro/file", 04755, 1000, 1001, m2)
	check("ro/sg", 02711, 5, 6, m2)
	check("sticky", 01777, 0, 0, m1)
	check("back", 0750, 0, 0, m1)
	check("late", 0700, 9, 9, m1)
	check("ro/link", 0, 3, 4, m2) // symlink owner and mtime, not the target's
	buf := make([]byte, 64)
	if n, err := unix.Lgetxattr(filepath.Join(root, "x"), "user.wharf", buf); err != nil || string(buf[:n]) != "yes" {
		t.Errorf("user.wharf xattr: %q %v", buf[:n], err)
	}
	if _, err := unix.Lgetxattr(filepath.Join(root, "x"), "trusted.overlay.opaque", buf); err == nil {
		t.Errorf("trusted.overlay.opaque was applied")
	}
	if _, err := unix.Lgetxattr(filepath.Join(root, "x"), "security.capability", buf); err != nil {
		t.Errorf("security.capability: %v", err)
	}
}

func TestApplyCompression(t *testing.T) {
	tarball := mkTar(t, []ent{{name: "hello", body: "world", mode: 0644}})
	tests := []struct {
		name    string
		blob    []byte
		mt      string
		wantErr error
	}{
		{"tar", tarball, image.MediaTypeLayer, nil},
		{"gzip", gz(t, tarball), image.MediaTypeLayerGzip, nil},
		{"zstd", zst(t, tarball), image.MediaTypeLayerZstd, nil},
		{"nondistributable gzip", gz(t, tarball), image.MediaTypeLayerNonDistributableGzip, nil},
		{"docker gzip", gz(t, tarball), image.MediaTypeDockerLayerGzip, nil},
		{"docker gzip label on plain tar", tarball, image.MediaTypeDockerLayerGzip, nil},
		{"gzip label on plain tar", tarball, image.MediaTypeLayerGzip, errdef.ErrInvalidArgument},
		{"tar label on gzip", gz(t, tarball), image.MediaTypeLayer, errdef.ErrInvalidArgument},
		{"zstd label on gzip", gz(t, tarball), image.MediaTypeLayerZstd, errdef.ErrInvalidArgument},
		{"not a layer", tarball, "application/json", errdef.ErrUnsupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			st, err := applyBytes(t, root, tc.blob, tc.mt, Options{})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("got %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(filepath.Join(root, "hello")); string(b) != "world" {
				t.Errorf("content %q", b)
			}
			if want := digestOf(tarball); st.DiffID != want {
				t.Errorf("diffID %s, want %s", st.DiffID, want)
			}
		})
	}
}

func TestApplyDiffID(t *testing.T) {
	tarball := mkTar(t, []ent{{name: "a", body: "a"}})
	root := t.TempDir()
	if _, err := applyBytes(t, root, gz(t, tarball), image.MediaTypeLayerGzip, Options{DiffID: digestOf(tarball)}); err != nil {
		t.Fatalf("matching diffID: %v", err)
	}
	_, err := applyBytes(t, t.TempDir(), gz(t, tarball), image.MediaTypeLayerGzip, Options{DiffID: digestOf([]byte("other"))})
	if !errors.Is(err, errdef.ErrDigestMismatch) {
		t.Fatalf("wrong diffID: got %v", err)
	}
}

func TestApplyIDMap(t *testing.T) {
	mustRoot(t)
	root := t.TempDir()
	opts := Options{}
	opts.UIDMap = append(opts.UIDMap, idm(0, 100000, 65536))
	opts.GIDMap = append(opts.GIDMap, idm(0, 200000, 65536))
	if err := applyTars(t, root, [][]ent{{{name: "f", body: "x", uid: 10, gid: 20}}}, opts); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	unix.Lstat(filepath.Join(root, "f"), &st)
	if st.Uid != 100010 || st.Gid != 200020 {
		t.Errorf("owner %d:%d", st.Uid, st.Gid)
	}
	err := applyTars(t, t.TempDir(), [][]ent{{{name: "f", body: "x", uid: 70000}}}, opts)
	if !errors.Is(err, errdef.ErrInvalidArgument) {
		t.Errorf("unmapped uid: %v", err)
	}
}
