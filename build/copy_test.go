package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/errdef"
)

// snapshot describes every entry below root: "file:CONTENT", "dir", "link:TARGET", with
// " MODE" (octal permission bits) and, as root, " UID:GID".
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var v string
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			v = "link:" + l
		case fi.IsDir():
			v = fmt.Sprintf("dir %o", fi.Mode().Perm()|fi.Mode()&(os.ModeSetuid|os.ModeSetgid))
		default:
			b, _ := os.ReadFile(p)
			st := fi.Sys().(*syscall.Stat_t)
			v = fmt.Sprintf("file:%s %o", b, st.Mode&07777)
		}
		if os.Geteuid() == 0 {
			st := fi.Sys().(*syscall.Stat_t)
			v += fmt.Sprintf(" %d:%d", st.Uid, st.Gid)
		}
		out[rel] = v
		return nil
	})
	return out
}

func own(s string) string {
	if os.Geteuid() == 0 {
		return " " + s
	}
	return ""
}

type copyCase struct {
	name  string
	files map[string]string // context
	dest  map[string]string // destination root before the copy
	srcs  []string
	opts  CopyOptions
	ropts ResolveOptions
	want  map[string]string // entries expected after the copy (others may exist)
	none  []string          // paths that must not exist
	err   string
}

func runCopy(t *testing.T, tc copyCase) (string, error) {
	t.Helper()
	ctxDir, dst := t.TempDir(), t.TempDir()
	mktree(t, ctxDir, tc.files)
	mktree(t, dst, tc.dest)
	tree, err := OpenContext(ctxDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	set, err := tree.Resolve(context.Background(), tc.srcs, tc.ropts)
	if err != nil {
		return dst, err
	}
	defer set.Close()
	return dst, Copy(context.Background(), dst, set, tc.opts)
}

func checkCopy(t *testing.T, tc copyCase) {
	t.Helper()
	dst, err := runCopy(t, tc)
	if tc.err != "" {
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Fatalf("err = %v, want %q", err, tc.err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	got := snapshot(t, dst)
	for k, v := range tc.want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q (all: %q)", k, got[k], v, got)
		}
	}
	for _, k := range tc.none {
		if _, ok := got[k]; ok {
			t.Errorf("%s exists: %q", k, got[k])
		}
	}
}

// TestCopy follows the COPY rules of https://docs.docker.com/reference/dockerfile/#copy,
// quoted in each case's name.
func TestCopy(t *testing.T) {
	r := own("0:0")
	for _, tc := range []copyCase{
		{name: "if <src> is a file and <dest> ends with a slash, it is copied into <dest>", files: map[string]string{"f": "F"}, srcs: []string{"f"}, opts: CopyOptions{Dest: "/app/"}, want: map[string]string{"app": "dir 755" + r, "app/f": "file:F 644" + r}},
		{name: "if <dest> does not end with a slash, the file is written as <dest>", files: map[string]string{"f": "F"}, srcs: []string{"f"}, opts: CopyOptions{Dest: "/app/renamed"}, want: map[string]string{"app/renamed": "file:F 644" + r}, none: []string{"app/f"}},
		{name: "if <dest> is an existing directory, the file goes into it", files: map[string]string{"f": "F"}, dest: map[string]string{"app/": ""}, srcs: []string{"f"}, opts: CopyOptions{Dest: "/app"}, want: map[string]string{"app/f": "file:F 644" + r}},
		{name: "if <src> is a directory, its contents are copied, not the directory itself", files: map[string]string{"d/a": "A", "d/s/b": "B"}, srcs: []string{"d"}, opts: CopyOptions{Dest: "/out"}, want: map[string]string{"out/a": "file:A 644" + r, "out/s/b": "file:B 644" + r}, none: []string{"out/d"}},
		{name: "multiple <src>: <dest> must be a directory and end with a slash", files: map[string]string{"a": "", "b": ""}, srcs: []string{"a", "b"}, opts: CopyOptions{Dest: "/out"}, err: "with several sources the destination must be a directory"},
		{name: "a wildcard matching several files needs a directory <dest>", files: map[string]string{"a1": "", "a2": ""}, srcs: []string{"a*"}, opts: CopyOptions{Dest: "/out"}, err: "with several sources"},
		{name: "multiple <src> into an existing directory without a slash", files: map[string]string{"a": "A", "b": "B"}, dest: map[string]string{"out/": ""}, srcs: []string{"a", "b"}, opts: CopyOptions{Dest: "/out"}, want: map[string]string{"out/a": "file:A 644" + r, "out/b": "file:B 644" + r}},
		{name: "relative <dest> is relative to WORKDIR", files: map[string]string{"f": "F"}, srcs: []string{"f"}, opts: CopyOptions{Dest: "rel/", WorkDir: "/work"}, want: map[string]string{"work/rel/f": "file:F 644" + r}},
		{name: "<dest> . is WORKDIR", files: map[string]string{"f": "F"}, srcs: []string{"f"}, opts: CopyOptions{Dest: ".", WorkDir: "/work"}, want: map[string]string{"work/f": "file:F 644" + r}},
		{name: "missing directories are created 0755 with UID and GID 0", files: map[string]string{"f": "F"}, srcs: []string{"f"}, opts: CopyOptions{Dest: "/a/b/c/"}, want: map[string]string{"a": "dir 755" + r, "a/b": "dir 755" + r, "a/b/c/f": "file:F 644" + r}},
		{name: "--chmod sets the mode of files and directories", files: map[string]string{"d/f": "F", "d/s/": ""}, srcs: []string{"d"}, opts: CopyOptions{Dest: "/o/", Chmod: "0751"}, want: map[string]string{"o/f": "file:F 751" + r, "o/s": "dir 751" + r}},
		{name: "--chmod symbolic is refused (buildah 1.28)", files: map[string]string{"f": ""}, srcs: []string{"f"}, opts: CopyOptions{Dest: "/o/", Chmod: "u+x"}, err: "only octal modes"},
		{name: "symlinks in a directory are copied as symlinks", files: map[string]string{"d/t": "T", "d/l": "->/etc/shadow", "d/r": "->t"}, srcs: []string{"d"}, opts: CopyOptions{Dest: "/o/"}, want: map[string]string{"o/l": "link:/etc/shadow" + r, "o/r": "link:t" + r}},
		{name: "a <src> symlink is followed, the file keeps the link's name", files: map[string]string{"t": "T", "l": "->t"}, srcs: []string{"l"}, opts: CopyOptions{Dest: "/o/"}, want: map[string]string{"o/l": "file:T 644" + r}},
		{name: "an existing file is replaced, not written through", files: map[string]string{"f": "NEW"}, dest: map[string]string{"o/f": "->/etc/passwd"}, srcs: []string{"f"}, opts: CopyOptions{Dest: "/o/"}, want: map[string]string{"o/f": "file:NEW 644" + r}},
		{name: "a directory over a file replaces it", files: map[string]string{"d/x/y": "Y"}, dest: map[string]string{"o/x": "old"}, srcs: []string{"d"}, opts: CopyOptions{Dest: "/o/"}, want: map[string]string{"o/x/y": "file:Y 644" + r}},
		{name: "a file over a directory replaces it", files: map[string]string{"d/x": "X"}, dest: map[string]string{"o/x/deep/z": "z"}, srcs: []string{"d"}, opts: CopyOptions{Dest: "/o/"}, want: map[string]string{"o/x": "file:X 644" + r}, none: []string{"o/x/deep"}},
		{name: "a file cannot replace an existing directory destination's type", files: map[string]string{"d/x": ""}, dest: map[string]string{"o": "a file"}, srcs: []string{"d"}, opts: CopyOptions{Dest: "/o"}, err: "exists and is not a directory"},
		{name: "--parents keeps the source path", files: map[string]string{"a/b/c.txt": "C"}, srcs: []string{"a/b/c.txt"}, ropts: ResolveOptions{Parents: true}, opts: CopyOptions{Dest: "/o/"}, want: map[string]string{"o/a/b/c.txt": "file:C 644" + r}},
		{name: "--parents with a /./ pivot", files: map[string]string{"x/a/b.txt": "B"}, srcs: []string{"x/./a/b.txt"}, ropts: ResolveOptions{Parents: true}, opts: CopyOptions{Dest: "/o/"}, want: map[string]string{"o/a/b.txt": "file:B 644" + r}, none: []string{"o/x"}},
		{name: "--parents of a directory", files: map[string]string{"p/q/r": "R"}, srcs: []string{"p/q"}, ropts: ResolveOptions{Parents: true}, opts: CopyOptions{Dest: "/o/"}, want: map[string]string{"o/p/q/r": "file:R 644" + r}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkCopy(t, tc) })
	}
}

// TestCopyConfined: a symlink in the destination that points out of the root resolves
// inside it; nothing is written outside.
func TestCopyConfined(t *testing.T) {
	outside := t.TempDir()
	for _, tc := range []copyCase{
		{name: "destination directory is a symlink out", files: map[string]string{"f": "F"}, dest: map[string]string{"app": "->" + outside}, srcs: []string{"f"}, opts: CopyOptions{Dest: "/app/"},
			want: map[string]string{"app": "link:" + outside + own("0:0"), strings.TrimPrefix(outside, "/") + "/f": "file:F 644" + own("0:0")}},
		{name: "a parent is a relative symlink climbing out", files: map[string]string{"f": "F"}, dest: map[string]string{"a/up": "->../../../../../../../../tmp"}, srcs: []string{"f"}, opts: CopyOptions{Dest: "/a/up/x/"},
			want: map[string]string{"tmp/x/f": "file:F 644" + own("0:0")}},
		{name: "a dangling symlink as the destination directory", files: map[string]string{"f": "F"}, dest: map[string]string{"app": "->" + outside + "/new"}, srcs: []string{"f"}, opts: CopyOptions{Dest: "/app/"},
			want: map[string]string{strings.TrimPrefix(outside, "/") + "/new/f": "file:F 644" + own("0:0")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkCopy(t, tc)
			if ents, _ := os.ReadDir(outside); len(ents) != 0 {
				t.Fatalf("written outside the root: %v", ents)
			}
		})
	}
}

func TestCopyMetadata(t *testing.T) {
	ctxDir, dst := t.TempDir(), t.TempDir()
	mktree(t, ctxDir, map[string]string{"d/a": "A", "d/sub/b": "B"})
	must(t, os.Link(filepath.Join(ctxDir, "d/a"), filepath.Join(ctxDir, "d/sub/hl")))
	old := time.Date(2001, 2, 3, 4, 5, 6, 7000, time.UTC)
	must(t, os.Chtimes(filepath.Join(ctxDir, "d/a"), old, old))
	must(t, os.Chtimes(filepath.Join(ctxDir, "d/sub"), old, old))
	must(t, unix.Chmod(filepath.Join(ctxDir, "d/sub/b"), 04755))
	xattrs := unix.Setxattr(filepath.Join(ctxDir, "d/a"), "user.keep", []byte("v"), 0) == nil
	trusted := os.Geteuid() == 0 && unix.Setxattr(filepath.Join(ctxDir, "d/a"), "trusted.drop", []byte("v"), 0) == nil
	tree, _ := OpenContext(ctxDir, nil)
	defer tree.Close()
	set, err := tree.Resolve(context.Background(), []string{"d"}, ResolveOptions{})
	must(t, err)
	must(t, Copy(context.Background(), dst, set, CopyOptions{Dest: "/o/"}))
	var a, hl unix.Stat_t
	must(t, unix.Lstat(filepath.Join(dst, "o/a"), &a))
	must(t, unix.Lstat(filepath.Join(dst, "o/sub/hl"), &hl))
	if a.Ino != hl.Ino {
		t.Error("hardlinks within one source are kept")
	}
	if got := time.Unix(a.Mtim.Unix()).UTC(); !got.Equal(old) {
		t.Errorf("file mtime %v, want %v", got, old)
	}
	var sub unix.Stat_t
	must(t, unix.Lstat(filepath.Join(dst, "o/sub"), &sub))
	if got := time.Unix(sub.Mtim.Unix()).UTC(); !got.Equal(old) {
		t.Errorf("directory mtime %v, want %v (set after its children)", got, old)
	}
	if st, _ := os.Stat(filepath.Join(dst, "o/sub/b")); st.Mode()&os.ModeSetuid == 0 {
		t.Error("setuid is kept unless StripSetID")
	}
	if xattrs {
		buf := make([]byte, 16)
		if n, err := unix.Getxattr(filepath.Join(dst, "o/a"), "user.keep", buf); err != nil || string(buf[:n]) != "v" {
			t.Errorf("user.* xattr kept: %v", err)
		}
	}
	if trusted {
		if _, err := unix.Getxattr(filepath.Join(dst, "o/a"), "trusted.drop", make([]byte, 16)); err == nil {
			t.Error("trusted.* xattr dropped (buildah keeps security.capability, security.ima, user.*)")
		}
	}
	// buildah strips setuid/setgid from context copies
	dst2 := t.TempDir()
	must(t, Copy(context.Background(), dst2, set, CopyOptions{Dest: "/o/", StripSetID: true}))
	if st, _ := os.Stat(filepath.Join(dst2, "o/sub/b")); st.Mode().Perm() != 0755 || st.Mode()&os.ModeSetuid != 0 {
		t.Errorf("StripSetID: mode %v", st.Mode())
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestCopyChown: --chown as buildah 1.28 resolves it (root only: ownership).
func TestCopyChown(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files away")
	}
	etc := map[string]string{"etc/passwd": "root:x:0:0::/root:/bin/sh\nbob:x:1000:1001::/home/bob:/bin/sh\n", "etc/group": "root:x:0:\nbobgrp:x:1001:\nstaff:x:50:\n"}
	for _, tc := range []copyCase{
		{name: "a user name takes its primary group", files: map[string]string{"f": "F"}, dest: etc, srcs: []string{"f"}, opts: CopyOptions{Dest: "/o/deep/", Chown: "bob"}, want: map[string]string{"o/deep/f": "file:F 644 1000:1001", "o": "dir 755 1000:1001", "o/deep": "dir 755 1000:1001"}},
		{name: "user:group names", files: map[string]string{"d/f": "F"}, dest: etc, srcs: []string{"d"}, opts: CopyOptions{Dest: "/o/", Chown: "bob:staff"}, want: map[string]string{"o/f": "file:F 644 1000:50"}},
		{name: "a UID alone is also the GID", files: map[string]string{"f": "F"}, srcs: []string{"f"}, opts: CopyOptions{Dest: "/o/", Chown: "77"}, want: map[string]string{"o/f": "file:F 644 77:77"}},
		{name: "numbers need no /etc/passwd", files: map[string]string{"f": "F"}, srcs: []string{"f"}, opts: CopyOptions{Dest: "/o/", Chown: "5:6"}, want: map[string]string{"o/f": "file:F 644 5:6"}},
		{name: "an unknown name is an error", files: map[string]string{"f": "F"}, dest: etc, srcs: []string{"f"}, opts: CopyOptions{Dest: "/o/", Chown: "nobody"}, err: "resolve --chown=nobody"},
		{name: "an existing destination directory keeps its owner", files: map[string]string{"f": "F"}, dest: map[string]string{"o/": ""}, srcs: []string{"f"}, opts: CopyOptions{Dest: "/o/", Chown: "9:9"}, want: map[string]string{"o": "dir 755 0:0", "o/f": "file:F 644 9:9"}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkCopy(t, tc) })
	}
}

// TestCopyFromStage: COPY --from keeps the owners of the stage's files.
func TestCopyFromStage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files away")
	}
	stage, dst := t.TempDir(), t.TempDir()
	mktree(t, stage, map[string]string{"app/bin": "B"})
	must(t, os.Chown(filepath.Join(stage, "app/bin"), 12, 34))
	tree, _ := OpenRootfs(stage, "stage build")
	defer tree.Close()
	set, err := tree.Resolve(context.Background(), []string{"/app"}, ResolveOptions{})
	must(t, err)
	must(t, Copy(context.Background(), dst, set, CopyOptions{Dest: "/app"}))
	if got := snapshot(t, dst)["app/bin"]; got != "file:B 644 12:34" {
		t.Fatalf("app/bin = %q", got)
	}
}

// tarEntry is one entry of a test archive.
type tarEntry struct {
	name, body, link string
	typ              byte
	uid              int
}

func mkTar(t *testing.T, ents []tarEntry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: 0640, Uid: e.uid, Gid: e.uid, Size: int64(len(e.body)), ModTime: time.Unix(1e9, 0)}
		if e.typ == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag == tar.TypeDir {
			h.Mode = 0750
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		must(t, tw.WriteHeader(h))
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	must(t, tw.Close())
	return buf.Bytes()
}

func compress(t *testing.T, kind string, b []byte) []byte {
	var buf bytes.Buffer
	switch kind {
	case "plain":
		return b
	case "gzip":
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
	case "xz":
		w, err := xz.NewWriter(&buf)
		must(t, err)
		w.Write(b)
		w.Close()
	case "zstd":
		w, err := zstd.NewWriter(&buf)
		must(t, err)
		w.Write(b)
		w.Close()
	case "bzip2":
		if _, err := exec.LookPath("bzip2"); err != nil {
			t.Skip("no bzip2 to compress with")
		}
		cmd := exec.Command("bzip2", "-c")
		cmd.Stdin = bytes.NewReader(b)
		out, err := cmd.Output()
		must(t, err)
		return out
	}
	return buf.Bytes()
}

// TestAddArchive: "If <src> is a local tar archive in a recognized compression format
// (identity, gzip, bzip2 or xz), it is unpacked as a directory"; zstd too, as BuildKit.
func TestAddArchive(t *testing.T) {
	arch := mkTar(t, []tarEntry{{name: "top/", typ: tar.TypeDir}, {name: "top/f", body: "F", uid: 7}, {name: "top/l", typ: tar.TypeSymlink, link: "f"}, {name: "top/h", typ: tar.TypeLink, link: "top/f"}})
	u := own("7:7")
	for _, kind := range []string{"plain", "gzip", "bzip2", "xz", "zstd"} {
		t.Run(kind, func(t *testing.T) {
			checkCopy(t, copyCase{files: map[string]string{"a.tar": string(compress(t, kind, arch))}, srcs: []string{"a.tar"}, opts: CopyOptions{Dest: "/x", Extract: true},
				want: map[string]string{"x/top/f": "file:F 640" + u, "x/top/l": "link:f" + own("0:0"), "x/top/h": "file:F 640" + u}, none: []string{"x/a.tar"}})
		})
	}
	t.Run("COPY does not extract", func(t *testing.T) {
		checkCopy(t, copyCase{files: map[string]string{"a.tar": string(arch)}, srcs: []string{"a.tar"}, opts: CopyOptions{Dest: "/x/"}, none: []string{"x/top"}, want: map[string]string{}})
	})
	t.Run("not an archive is copied", func(t *testing.T) {
		checkCopy(t, copyCase{files: map[string]string{"a.tar.gz": "\x1f\x8bnot really"}, srcs: []string{"a.tar.gz"}, opts: CopyOptions{Dest: "/x/", Extract: true}, want: map[string]string{"x/a.tar.gz": "file:\x1f\x8bnot really 644" + own("0:0")}})
	})
	t.Run("--chown does not apply to extracted files (buildah 1.28)", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("ownership needs root")
		}
		checkCopy(t, copyCase{files: map[string]string{"a.tar": string(arch)}, srcs: []string{"a.tar"}, opts: CopyOptions{Dest: "/x/", Extract: true, Chown: "3:3"}, want: map[string]string{"x": "dir 755 3:3", "x/top/f": "file:F 640 7:7"}})
	})
}

// TestAddHostileArchive: archives that reach out of the destination are refused, or stay
// confined to it.
func TestAddHostileArchive(t *testing.T) {
	for _, tc := range []struct {
		name string
		ents []tarEntry
		err  error
		want map[string]string
	}{
		{name: "dotdot traversal is refused", ents: []tarEntry{{name: "ok", body: "ok"}, {name: "../../escape", body: "bad"}}, err: errdef.ErrUnsafePath},
		{name: "traversal in the middle is refused", ents: []tarEntry{{name: "a/../../../escape", body: "bad"}}, err: errdef.ErrUnsafePath},
		{name: "hardlink out is refused", ents: []tarEntry{{name: "h", typ: tar.TypeLink, link: "../../../etc/passwd"}}, err: errdef.ErrUnsafePath},
		{name: "absolute names land inside", ents: []tarEntry{{name: "/abs", body: "A"}}, want: map[string]string{"x/abs": "file:A 640"}},
		{name: "writing through a symlink out stays inside", ents: []tarEntry{{name: "l", typ: tar.TypeSymlink, link: "/"}, {name: "l/canary", body: "C"}}, want: map[string]string{"x/canary": "file:C 640"}},
		{name: "writing through a climbing symlink stays inside", ents: []tarEntry{{name: "l", typ: tar.TypeSymlink, link: "../../../../.."}, {name: "l/canary", body: "C"}}, want: map[string]string{"x/canary": "file:C 640"}},
		{name: "whiteouts are not extracted", ents: []tarEntry{{name: "keep", body: "k"}, {name: ".wh.keep"}, {name: "d/.wh..wh..opq"}}, want: map[string]string{"x/keep": "file:k 640"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctxDir, dst := t.TempDir(), t.TempDir()
			os.WriteFile(filepath.Join(ctxDir, "a.tar"), mkTar(t, tc.ents), 0644)
			tree, _ := OpenContext(ctxDir, nil)
			defer tree.Close()
			set, err := tree.Resolve(context.Background(), []string{"a.tar"}, ResolveOptions{Instruction: "ADD"})
			must(t, err)
			must(t, os.Mkdir(filepath.Join(dst, "root"), 0755))
			err = Copy(context.Background(), filepath.Join(dst, "root"), set, CopyOptions{Dest: "/x/", Extract: true})
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			got := snapshot(t, filepath.Join(dst, "root"))
			for k, v := range tc.want {
				if strings.TrimSuffix(got[k], own("0:0")) != v {
					t.Errorf("%s = %q, want %q (all %q)", k, got[k], v, got)
				}
			}
			for k := range got {
				if strings.Contains(k, "escape") || strings.HasPrefix(k, ".wh") || strings.Contains(k, "/.wh.") {
					t.Errorf("%s should not exist", k)
				}
			}
			if ents, _ := os.ReadDir(dst); len(ents) != 1 {
				t.Errorf("written beside the root: %v", ents)
			}
		})
	}
}

// TestAddURL: "ADD <url>": the file is named after the URL, mode 600, its mtime from
// Last-Modified; --checksum is verified; remote archives are not extracted.
func TestAddURL(t *testing.T) {
	body := mkTar(t, []tarEntry{{name: "inner", body: "i"}})
	lm := time.Date(2020, 5, 6, 7, 8, 9, 0, time.UTC)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/files/pkg.tar":
			w.Header().Set("Last-Modified", lm.Format(http.TimeFormat))
			w.Write(body)
		case "/":
			io.WriteString(w, "index")
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	sum := fmt.Sprintf("sha256:%x", sha256.Sum256(body))
	for _, tc := range []struct {
		name, url, checksum, dest, file string
		mtime                           time.Time
		err                             error
	}{
		{name: "named from the URL, Last-Modified kept, not extracted", url: srv.URL + "/files/pkg.tar", dest: "/d/", file: "d/pkg.tar", mtime: lm},
		{name: "--checksum matches", url: srv.URL + "/files/pkg.tar", checksum: sum, dest: "/d/", file: "d/pkg.tar", mtime: lm},
		{name: "--checksum mismatch", url: srv.URL + "/files/pkg.tar", checksum: "sha256:" + strings.Repeat("0", 64), err: errdef.ErrDigestMismatch},
		{name: "a destination without a slash names the file", url: srv.URL + "/files/pkg.tar", dest: "/renamed", file: "renamed", mtime: lm},
		{name: "no Last-Modified: the epoch (buildah)", url: srv.URL + "/", dest: "/d/", file: "d/__unnamed__", mtime: time.Unix(0, 0)},
		{name: "HTTP 404", url: srv.URL + "/missing", err: errdef.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctxDir, dst := t.TempDir(), t.TempDir()
			tree, _ := OpenContext(ctxDir, nil)
			defer tree.Close()
			set, err := tree.Resolve(context.Background(), []string{tc.url}, ResolveOptions{Instruction: "ADD", Fetcher: &Fetcher{TempDir: t.TempDir()}, Checksum: tc.checksum})
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			must(t, err)
			defer set.Close()
			must(t, Copy(context.Background(), dst, set, CopyOptions{Dest: tc.dest, Extract: true}))
			st, err := os.Lstat(filepath.Join(dst, tc.file))
			must(t, err)
			if st.Mode().Perm() != 0600 || !st.ModTime().Equal(tc.mtime) {
				t.Errorf("mode %v mtime %v, want 0600 %v", st.Mode(), st.ModTime(), tc.mtime)
			}
		})
	}
}

// TestDigest: an unchanged context gives the same key; a change to content, mode or the set
// of files a new one; times do not count; the hash cache gives the same answers.
func TestDigest(t *testing.T) {
	dir := t.TempDir()
	mktree(t, dir, map[string]string{"d/a": "A", "d/b": "B", "d/l": "->a", "ignored.log": "x"})
	cacheDir := t.TempDir()
	key := func(cached bool) string {
		t.Helper()
		ig, _ := NewIgnore([]string{"*.log"})
		tree, _ := OpenContext(dir, ig)
		defer tree.Close()
		set, err := tree.Resolve(context.Background(), []string{"d", "."}, ResolveOptions{})
		must(t, err)
		var hc *HashCache
		if cached {
			hc, err = OpenHashCache(cacheDir)
			must(t, err)
		}
		d, err := set.Digest(context.Background(), hc)
		must(t, err)
		must(t, hc.Save())
		return d.String()
	}
	base := key(false)
	steps := []struct {
		name   string
		change func()
		same   bool
	}{
		{"unchanged", func() {}, true},
		{"mtime only", func() { os.Chtimes(filepath.Join(dir, "d/a"), time.Unix(5, 0), time.Unix(5, 0)) }, true},
		{"an ignored file changes", func() { os.WriteFile(filepath.Join(dir, "ignored.log"), []byte("changed"), 0644) }, true},
		{"content", func() { os.WriteFile(filepath.Join(dir, "d/a"), []byte("A2"), 0644) }, false},
		{"mode", func() { os.Chmod(filepath.Join(dir, "d/b"), 0600) }, false},
		{"symlink target", func() { os.Remove(filepath.Join(dir, "d/l")); os.Symlink("b", filepath.Join(dir, "d/l")) }, false},
		{"a new file", func() { os.WriteFile(filepath.Join(dir, "d/new"), nil, 0644) }, false},
	}
	prev := base
	for _, s := range steps {
		s.change()
		plain, cached, again := key(false), key(true), key(true)
		if plain != cached || cached != again {
			t.Fatalf("%s: the cache changes the key: %s %s %s", s.name, plain, cached, again)
		}
		if (plain == prev) != s.same {
			t.Fatalf("%s: same key = %v, want %v", s.name, plain == prev, s.same)
		}
		prev = plain
	}
	if _, err := os.Stat(filepath.Join(cacheDir, "file-digests.gob")); err != nil {
		t.Fatalf("cache not saved: %v", err)
	}
}

func TestParseChmod(t *testing.T) {
	for in, want := range map[string]uint32{"755": 0755, "0644": 0644, "7777": 07777} {
		if got, err := ParseChmod(in); err != nil || got != want {
			t.Errorf("ParseChmod(%s) = %o, %v", in, got, err)
		}
	}
	for _, in := range []string{"10000", "8", "u+x", ""} {
		if _, err := ParseChmod(in); err == nil {
			t.Errorf("ParseChmod(%q) should fail", in)
		}
	}
}
