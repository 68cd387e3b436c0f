package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/image"
	"github.com/wharfoci/wharf/internal/rootfs"
)

// ent is one tar entry of a test layer.
type ent struct {
	name   string
	typ    byte // 0 → regular
	body   string
	link   string
	mode   int64
	uid    int
	gid    int
	mtime  time.Time
	major  int64
	minor  int64
	size   int64 // when > 0 and body empty: header size without (enough) content
	pax    map[string]string
	rawHdr []byte // written as is instead of a header
}

var epoch = time.Unix(1700000000, 0)

func mkTar(t testing.TB, ents []ent) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range ents {
		if e.rawHdr != nil {
			tw.Flush()
			b.Write(e.rawHdr)
			continue
		}
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, Uid: e.uid, Gid: e.gid,
			ModTime: e.mtime, Devmajor: e.major, Devminor: e.minor, PAXRecords: e.pax, Format: tar.FormatPAX}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0755
			}
		}
		if h.ModTime.IsZero() {
			h.ModTime = epoch
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("tar header %s: %v", e.name, err)
		}
		if e.body != "" {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gz(t testing.TB, b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	zw.Close()
	return out.Bytes()
}

func zst(t testing.TB, b []byte) []byte {
	var out bytes.Buffer
	zw, err := zstd.NewWriter(&out)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(b)
	zw.Close()
	return out.Bytes()
}

func applyBytes(t testing.TB, root string, blob []byte, mt string, opts Options) (Stats, error) {
	t.Helper()
	r, err := rootfs.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	return Apply(context.Background(), r, bytes.NewReader(blob), mt, opts)
}

// applyTars applies each tar, uncompressed, in order; it stops at the first error.
func applyTars(t testing.TB, root string, layers [][]ent, opts Options) error {
	t.Helper()
	for _, l := range layers {
		if _, err := applyBytes(t, root, mkTar(t, l), image.MediaTypeLayer, opts); err != nil {
			return err
		}
	}
	return nil
}

// snapshot describes every path under dir (except skip) by type, mode, owner, size, mtime,
// inode, link target and content hash.
func snapshot(t testing.TB, dir string, skip string) map[string]string {
	t.Helper()
	m := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			m[p] = "error " + err.Error()
			return nil
		}
		if skip != "" && p == skip {
			return filepath.SkipDir
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			m[p] = "error " + err.Error()
			return nil
		}
		s := fmt.Sprintf("mode=%o uid=%d gid=%d size=%d mtime=%d.%d ino=%d nlink=%d", st.Mode, st.Uid, st.Gid, st.Size, st.Mtim.Sec, st.Mtim.Nsec, st.Ino, st.Nlink)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			l, _ := os.Readlink(p)
			s += " link=" + l
		case unix.S_IFREG:
			b, _ := os.ReadFile(p)
			s += fmt.Sprintf(" sha=%x", sha256.Sum256(b))
		}
		if p != dir || true {
			sz, _ := unix.Llistxattr(p, nil)
			if sz > 0 {
				buf := make([]byte, sz)
				unix.Llistxattr(p, buf)
				s += " xattrs=" + string(buf)
			}
		}
		m[p] = s
		return nil
	})
	return m
}

func diffSnap(a, b map[string]string) []string {
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok {
			out = append(out, "removed "+k)
		} else if v != w {
			out = append(out, fmt.Sprintf("changed %s: %s → %s", k, v, w))
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, "added "+k)
		}
	}
	sort.Strings(out)
	return out
}

// tree lists root as "path type mode uid:gid [size|→target]" lines for compact assertions.
func tree(t testing.TB, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatalf("walk: %v", err)
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		unix.Lstat(p, &st)
		var s string
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			s = "dir"
		case unix.S_IFREG:
			b, _ := os.ReadFile(p)
			s = "file:" + string(b)
		case unix.S_IFLNK:
			l, _ := os.Readlink(p)
			s = "link:" + l
		case unix.S_IFCHR:
			s = fmt.Sprintf("chr:%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		case unix.S_IFBLK:
			s = fmt.Sprintf("blk:%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		case unix.S_IFIFO:
			s = "fifo"
		default:
			s = "other"
		}
		m[rel] = s
		return nil
	})
	return m
}

func digestOf(b []byte) digest.Digest { return digest.FromBytes(b) }

func idm(c, h, n uint32) specs.LinuxIDMapping {
	return specs.LinuxIDMapping{ContainerID: c, HostID: h, Size: n}
}
