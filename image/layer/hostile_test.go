package layer

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/image"
)

// gnuSparseHeader builds an old-GNU sparse entry ('S') whose whole real size is a hole: a tiny
// archive that expands to realSize bytes of zeros.
func gnuSparseHeader(name string, realSize int64) []byte {
	h := make([]byte, 512)
	copy(h[0:], name)
	copy(h[100:], "0000644\x00")
	copy(h[108:], "0000000\x00")
	copy(h[116:], "0000000\x00")
	copy(h[124:], "00000000000\x00") // stored size 0
	copy(h[136:], "14500000000\x00")
	h[156] = 'S'
	copy(h[257:], "ustar  \x00")
	// one sparse map entry: offset realSize, 0 bytes (holes before it)
	copy(h[386:], numField(realSize))
	copy(h[398:], "00000000000\x00")
	copy(h[483:], numField(realSize)) // real size
	for i := 148; i < 156; i++ {
		h[i] = ' '
	}
	var sum int64
	for _, c := range h {
		sum += int64(c)
	}
	copy(h[148:], fmt.Sprintf("%06o\x00 ", sum))
	return h
}

// TestHostileLayers applies hostile layers to BUNDLE/rootfs inside a parent directory holding
// canaries, plus a canary directory elsewhere on the host named by absolute symlinks. Each case
// checks its documented outcome and that nothing outside the root changed.
func TestHostileLayers(t *testing.T) {
	mustRoot(t)
	type tcase struct {
		name    string
		layers  [][]ent
		blob    func(t *testing.T) ([]byte, string) // instead of layers: one raw blob
		opts    Options
		wantErr error
		want    map[string]string // tree() values inside the root; "" = absent
	}
	long := strings.Repeat("n", 256)
	zeros := func(n int) string { return string(make([]byte, n)) }
	// HOST is replaced by the absolute host canary directory, PARENT by the bundle parent.
	cases := []tcase{
		// traversal and absolute names
		{name: "dotdot file", layers: [][]ent{{{name: "../../../../canary", body: "pwned"}}}, want: map[string]string{"canary": "file:pwned"}},
		{name: "dotdot dir", layers: [][]ent{{{name: "../x/", typ: tar.TypeDir}, {name: "../x/y", body: "y"}}}, want: map[string]string{"x/y": "file:y"}},
		{name: "absolute file", layers: [][]ent{{{name: "HOST/canary", body: "pwned"}}}, want: map[string]string{"HOSTREL/canary": "file:pwned"}},
		{name: "absolute parent", layers: [][]ent{{{name: "PARENT/canary", body: "pwned"}}}, want: map[string]string{"PARENTREL/canary": "file:pwned"}},
		{name: "dotdot in middle", layers: [][]ent{{{name: "a/../../../canary", body: "x"}}}, want: map[string]string{"canary": "file:x"}},
		// symlink escapes followed by every kind of entry
		{name: "abs symlink then file", layers: [][]ent{{{name: "evil", typ: tar.TypeSymlink, link: "HOST"}, {name: "evil/canary", body: "pwned"}}}, want: map[string]string{"HOSTREL/canary": "file:pwned", "evil": "link:HOST"}},
		{name: "rel symlink then file", layers: [][]ent{{{name: "a/evil", typ: tar.TypeSymlink, link: "../../../../../../../.."}, {name: "a/evil/canary", body: "pwned"}}}, want: map[string]string{"canary": "file:pwned"}},
		{name: "symlink to parent then file", layers: [][]ent{{{name: "evil", typ: tar.TypeSymlink, link: "PARENT"}, {name: "evil/canary", body: "pwned"}}}, want: map[string]string{"PARENTREL/canary": "file:pwned"}},
		{name: "symlink then dir", layers: [][]ent{{{name: "evil", typ: tar.TypeSymlink, link: "HOST"}, {name: "evil/newdir/", typ: tar.TypeDir, mode: 0777}}}, want: map[string]string{"HOSTREL/newdir": "dir"}},
		{name: "symlink then symlink", layers: [][]ent{{{name: "evil", typ: tar.TypeSymlink, link: "HOST"}, {name: "evil/l", typ: tar.TypeSymlink, link: "/etc/shadow"}}}, want: map[string]string{"HOSTREL/l": "link:/etc/shadow"}},
		{name: "symlink then hardlink", layers: [][]ent{{{name: "f", body: "f"}, {name: "evil", typ: tar.TypeSymlink, link: "HOST"}, {name: "evil/h", typ: tar.TypeLink, link: "f"}}}, want: map[string]string{"HOSTREL/h": "file:f"}},
		{name: "symlink then device", layers: [][]ent{{{name: "evil", typ: tar.TypeSymlink, link: "HOST"}, {name: "evil/null", typ: tar.TypeChar, major: 1, minor: 3}}}, want: map[string]string{"HOSTREL/null": "chr:1:3"}},
		{name: "symlink then fifo", layers: [][]ent{{{name: "evil", typ: tar.TypeSymlink, link: "HOST"}, {name: "evil/fifo", typ: tar.TypeFifo}}}, want: map[string]string{"HOSTREL/fifo": "fifo"}},
		{name: "symlink then whiteout", layers: [][]ent{{{name: "evil", typ: tar.TypeSymlink, link: "HOST"}, {name: "evil/.wh.canary"}}}, want: map[string]string{"evil": "link:HOST"}},
		{name: "symlink then opaque", layers: [][]ent{{{name: "evil", typ: tar.TypeSymlink, link: "PARENT"}, {name: "evil/.wh..wh..opq"}}}, want: map[string]string{"evil": "link:PARENT"}},
		{name: "symlink to root then opaque", layers: [][]ent{{{name: "keep", body: "k"}, {name: "evil", typ: tar.TypeSymlink, link: "/"}}, {{name: "evil/.wh..wh..opq"}}}, want: map[string]string{"keep": "", "evil": ""}},
		{name: "file replaces symlink, no write through", layers: [][]ent{{{name: "evil", typ: tar.TypeSymlink, link: "HOST/canary"}}, {{name: "evil", body: "pwned"}}}, want: map[string]string{"evil": "file:pwned"}},
		{name: "dir over symlink", layers: [][]ent{{{name: "evil", typ: tar.TypeSymlink, link: "HOST"}}, {{name: "evil/", typ: tar.TypeDir, mode: 0700}}}, want: map[string]string{"evil": "dir"}},
		{name: "symlink chain", layers: [][]ent{{{name: "a", typ: tar.TypeSymlink, link: "b"}, {name: "b", typ: tar.TypeSymlink, link: "../../c"}, {name: "c", typ: tar.TypeSymlink, link: "HOST"}, {name: "a/canary", body: "x"}}}, want: map[string]string{"HOSTREL/canary": "file:x"}},
		{name: "symlink loop", layers: [][]ent{{{name: "a", typ: tar.TypeSymlink, link: "b"}, {name: "b", typ: tar.TypeSymlink, link: "a"}, {name: "a/x", body: "x"}}}, wantErr: errAny},
		{name: "magic link", layers: [][]ent{{{name: "evil", typ: tar.TypeSymlink, link: "/proc/self/root"}, {name: "evil/canary", body: "x"}}}, want: map[string]string{"proc/self/root/canary": "file:x"}},
		// hardlinks
		{name: "hardlink absolute outside", layers: [][]ent{{{name: "h", typ: tar.TypeLink, link: "HOST/canary"}}}, wantErr: errAny},
		{name: "hardlink dotdot outside", layers: [][]ent{{{name: "h", typ: tar.TypeLink, link: "../../../../../PARENT/canary"}}}, wantErr: errAny},
		{name: "hardlink through symlink", layers: [][]ent{{{name: "evil", typ: tar.TypeSymlink, link: "HOST"}, {name: "h", typ: tar.TypeLink, link: "evil/canary"}}}, wantErr: errdef.ErrUnsafePath},
		{name: "hardlink through inside symlink", layers: [][]ent{{{name: "d/f", body: "f"}, {name: "s", typ: tar.TypeSymlink, link: "d"}, {name: "h", typ: tar.TypeLink, link: "s/f"}}}, wantErr: errdef.ErrUnsafePath},
		{name: "hardlink to symlink is the symlink", layers: [][]ent{{{name: "s", typ: tar.TypeSymlink, link: "HOST/canary"}, {name: "h", typ: tar.TypeLink, link: "s"}}}, want: map[string]string{"h": "link:HOST/canary"}},
		{name: "hardlink to root", layers: [][]ent{{{name: "h", typ: tar.TypeLink, link: "/"}}}, wantErr: errdef.ErrUnsafePath},
		{name: "hardlink to dir", layers: [][]ent{{{name: "d/", typ: tar.TypeDir}, {name: "h", typ: tar.TypeLink, link: "d"}}}, wantErr: errdef.ErrInvalidArgument},
		{name: "hardlink to itself", layers: [][]ent{{{name: "h", body: "x"}, {name: "h", typ: tar.TypeLink, link: "h"}}}, wantErr: errdef.ErrInvalidArgument},
		{name: "hardlink to missing", layers: [][]ent{{{name: "h", typ: tar.TypeLink, link: "nothere"}}}, wantErr: errAny},
		// the root itself
		{name: "symlink replaces root", layers: [][]ent{{{name: "./", typ: tar.TypeSymlink, link: "HOST"}}}, wantErr: errdef.ErrUnsafePath},
		{name: "symlink named slash", layers: [][]ent{{{name: "/", typ: tar.TypeSymlink, link: "HOST"}}}, wantErr: errdef.ErrUnsafePath},
		{name: "file named dotdot", layers: [][]ent{{{name: "..", body: "x"}}}, wantErr: errdef.ErrUnsafePath},
		{name: "hardlink named root", layers: [][]ent{{{name: "f", body: "x"}, {name: "a/..", typ: tar.TypeLink, link: "f"}}}, wantErr: errdef.ErrUnsafePath},
		{name: "root dir entry ok", layers: [][]ent{{{name: "./", typ: tar.TypeDir, mode: 0755}, {name: "./f", body: "x"}}}, want: map[string]string{"f": "file:x"}},
		// whiteout abuse
		{name: "whiteout empty name", layers: [][]ent{{{name: "a/.wh."}}}, wantErr: errdef.ErrInvalidArgument},
		{name: "whiteout dot", layers: [][]ent{{{name: ".wh.."}}}, wantErr: errdef.ErrInvalidArgument},
		{name: "whiteout dotdot", layers: [][]ent{{{name: "a/.wh..."}}}, wantErr: errdef.ErrInvalidArgument},
		{name: "whiteout dotdot at root", layers: [][]ent{{{name: ".wh..."}}}, wantErr: errdef.ErrInvalidArgument},
		{name: "whiteout traversal", layers: [][]ent{{{name: "../../.wh.canary"}, {name: "../.wh.PARENTBASE"}}}, want: map[string]string{}},
		{name: "whiteout absolute", layers: [][]ent{{{name: "HOST/.wh.canary"}}}, want: map[string]string{}},
		{name: "whiteout as directory", layers: [][]ent{{{name: ".wh.x/y", body: "y"}}}, wantErr: errdef.ErrInvalidArgument},
		{name: "whiteout symlink entry", layers: [][]ent{{{name: ".wh.x", typ: tar.TypeSymlink, link: "HOST"}}}, want: map[string]string{".wh.x": ""}},
		{name: "opaque dir entry", layers: [][]ent{{{name: "a/.wh..wh..opq/", typ: tar.TypeDir}}}, want: map[string]string{"a/.wh..wh..opq": ""}},
		{name: "whiteout removes symlink not target", layers: [][]ent{{{name: "d/f", body: "f"}, {name: "l", typ: tar.TypeSymlink, link: "d"}}, {{name: ".wh.l"}}}, want: map[string]string{"l": "", "d/f": "file:f"}},
		// devices, names
		{name: "device out of range", layers: [][]ent{{{name: "d", typ: tar.TypeChar, major: 1 << 20, minor: 1}}}, wantErr: errdef.ErrInvalidArgument},
		{name: "block device", layers: [][]ent{{{name: "sda", typ: tar.TypeBlock, major: 8, minor: 0}}}, want: map[string]string{"sda": "blk:8:0"}},
		{name: "odd names", layers: [][]ent{{{name: "new\nline", body: "1"}, {name: "sp ace\t", body: "2"}, {name: "ünï", body: "3"}, {name: "...", body: "4"}, {name: "a//b/./c", body: "5"}, {name: "-rf", body: "6"}}},
			want: map[string]string{"new\nline": "file:1", "sp ace\t": "file:2", "ünï": "file:3", "...": "file:4", "a/b/c": "file:5", "-rf": "file:6"}},
		{name: "component over NAME_MAX", layers: [][]ent{{{name: long, body: "x"}}}, wantErr: errdef.ErrInvalidArgument},
		{name: "dir component over NAME_MAX", layers: [][]ent{{{name: long + "/x", body: "x"}}}, wantErr: errdef.ErrInvalidArgument},
		{name: "name over limit", layers: [][]ent{{{name: strings.Repeat("d/", 2100) + "x", body: "x"}}}, wantErr: errdef.ErrInvalidArgument},
		{name: "unsupported type", layers: [][]ent{{{name: "v", typ: 'V'}}}, wantErr: errdef.ErrUnsupported},
		// truncation and corruption
		{name: "truncated tar", blob: func(t *testing.T) ([]byte, string) {
			b := mkTar(t, []ent{{name: "big", body: zeros(10000)}})
			return b[:2048], image.MediaTypeLayer
		}, wantErr: errdef.ErrInvalidArgument},
		{name: "truncated gzip", blob: func(t *testing.T) ([]byte, string) {
			b := gz(t, mkTar(t, []ent{{name: "big", body: strings.Repeat("abcdefgh", 20000)}}))
			return b[:len(b)/2], image.MediaTypeLayerGzip
		}, wantErr: errAny},
		{name: "garbage", blob: func(t *testing.T) ([]byte, string) {
			return bytes.Repeat([]byte("not a tar "), 100), image.MediaTypeLayer
		}, wantErr: errdef.ErrInvalidArgument},
		{name: "corrupt gzip", blob: func(t *testing.T) ([]byte, string) {
			b := gz(t, mkTar(t, []ent{{name: "f", body: strings.Repeat("abcdefgh", 2000)}}))
			for i := 20; i < 40; i++ {
				b[i] ^= 0xff
			}
			return b, image.MediaTypeLayerGzip
		}, wantErr: errAny},
		// bombs
		{name: "gzip bomb", blob: func(t *testing.T) ([]byte, string) {
			return gz(t, mkTar(t, []ent{{name: "zeros", body: zeros(8 << 20)}})), image.MediaTypeLayerGzip
		}, opts: Options{Limits: Limits{MaxRatio: 100, RatioFloor: 1 << 20}}, wantErr: errdef.ErrTooLarge},
		{name: "zstd bomb", blob: func(t *testing.T) ([]byte, string) {
			return zst(t, mkTar(t, []ent{{name: "zeros", body: zeros(8 << 20)}})), image.MediaTypeLayerZstd
		}, opts: Options{Limits: Limits{MaxRatio: 100, RatioFloor: 1 << 20}}, wantErr: errdef.ErrTooLarge},
		{name: "size limit", layers: [][]ent{{{name: "big", body: zeros(3 << 20)}}}, opts: Options{Limits: Limits{MaxBytes: 1 << 20}}, wantErr: errdef.ErrTooLarge},
		// sparse files: holes are neither written nor counted, data is; a map that does not hold
		// is refused (sparse_test.go builds the entries)
		{name: "sparse holes are not a bomb", blob: func(t *testing.T) ([]byte, string) {
			return archive(gnuSparseHeader("sparse", 16<<20)), image.MediaTypeLayer
		}, opts: Options{Limits: Limits{MaxBytes: 1 << 20}}, want: map[string]string{"sparse": "file:" + zeros(16<<20)}},
		{name: "sparse data bomb", blob: func(t *testing.T) ([]byte, string) {
			return gz(t, archive(pax1Sparse("sparse", 1<<40, mapText(sparseFrag{0, 8 << 20}), make([]byte, 8<<20)))), image.MediaTypeLayerGzip
		}, opts: Options{Limits: Limits{MaxBytes: 4 << 20}}, wantErr: errdef.ErrTooLarge},
		{name: "sparse beyond any file size", blob: func(t *testing.T) ([]byte, string) {
			return archive(gnuSparseHeader("sparse", 1<<62)), image.MediaTypeLayer
		}, wantErr: errAny},
		{name: "sparse name escaping", blob: func(t *testing.T) ([]byte, string) {
			return archive(pax1Sparse("../../../../canary", 8192, mapText(sparseFrag{4096, 5}), []byte("pwned"))), image.MediaTypeLayer
		}, want: map[string]string{"canary": "file:" + zeros(4096) + "pwned" + zeros(4096-5)}},
		{name: "sparse map overlapping", blob: sparseBlob(pax1Sparse("f", 4096, mapText(sparseFrag{0, 1024}, sparseFrag{512, 1024}), make([]byte, 2048))), wantErr: errdef.ErrInvalidArgument},
		{name: "sparse map out of order", blob: sparseBlob(pax1Sparse("f", 8192, mapText(sparseFrag{4096, 512}, sparseFrag{0, 512}), make([]byte, 1024))), wantErr: errdef.ErrInvalidArgument},
		{name: "sparse map beyond real size", blob: sparseBlob(pax1Sparse("f", 512, mapText(sparseFrag{0, 1024}), make([]byte, 1024))), wantErr: errdef.ErrInvalidArgument},
		{name: "sparse map huge count", blob: sparseBlob(pax1Sparse("f", 512, "99999999999999999\n0\n1\n", []byte("x"))), wantErr: errdef.ErrInvalidArgument},
		{name: "sparse map offset overflowing", blob: sparseBlob(pax1Sparse("f", 1<<63-1, mapText(sparseFrag{1<<63 - 10, 100}), make([]byte, 100))), wantErr: errdef.ErrInvalidArgument},
		{name: "sparse map negative", blob: sparseBlob(pax1Sparse("f", 4096, "1\n-512\n512\n", make([]byte, 512))), wantErr: errdef.ErrInvalidArgument},
		{name: "sparse map over its data", blob: sparseBlob(pax1Sparse("f", 4096, mapText(sparseFrag{0, 2048}), make([]byte, 1024))), wantErr: errdef.ErrInvalidArgument},
		{name: "sparse map under its data", blob: sparseBlob(pax1Sparse("f", 4096, mapText(sparseFrag{0, 512}), make([]byte, 2048))), wantErr: errdef.ErrInvalidArgument},
		{name: "sparse old GNU overlapping", blob: sparseBlob(oldGNUSparse("f", 4096, []sparseFrag{{0, 1024}, {512, 512}}, make([]byte, 1536))), wantErr: errdef.ErrInvalidArgument},
		{name: "sparse old GNU huge offset", blob: sparseBlob(oldGNUSparse("f", 4096, []sparseFrag{{1 << 62, 512}}, make([]byte, 512))), wantErr: errdef.ErrInvalidArgument},
		{name: "sparse 0.1 count mismatch", blob: sparseBlob(pax0Sparse("f", 4096, "2", "0,512", make([]byte, 512))), wantErr: errdef.ErrInvalidArgument},
		{name: "sparse 0.1 huge count", blob: sparseBlob(pax0Sparse("f", 4096, "99999999999", "0,512", make([]byte, 512))), wantErr: errdef.ErrInvalidArgument},
		{name: "inode bomb", layers: [][]ent{func() []ent {
			var e []ent
			for i := 0; i < 300; i++ {
				e = append(e, ent{name: fmt.Sprintf("f%d", i)})
			}
			return e
		}()}, opts: Options{Limits: Limits{MaxEntries: 200}}, wantErr: errdef.ErrTooLarge},
		{name: "xattr overlay forged", layers: [][]ent{{{name: "d/", typ: tar.TypeDir, pax: map[string]string{"SCHILY.xattr.trusted.overlay.opaque": "y", "SCHILY.xattr.trusted.overlay.redirect": "/etc"}}}}, want: map[string]string{"d": "dir"}},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			host := t.TempDir()
			for _, d := range []string{parent, host} {
				os.WriteFile(filepath.Join(d, "canary"), []byte("canary"), 0644)
				os.MkdirAll(filepath.Join(d, "sub"), 0755)
				os.WriteFile(filepath.Join(d, "sub", "canary"), []byte("canary"), 0600)
				os.Symlink("canary", filepath.Join(d, "canary-link"))
			}
			bundle := filepath.Join(parent, "bundle")
			root := filepath.Join(bundle, "rootfs")
			if err := os.MkdirAll(root, 0755); err != nil {
				t.Fatal(err)
			}
			sub := func(s string) string {
				s = strings.ReplaceAll(s, "HOSTREL", strings.TrimPrefix(host, "/"))
				s = strings.ReplaceAll(s, "PARENTREL", strings.TrimPrefix(parent, "/"))
				s = strings.ReplaceAll(s, "PARENTBASE", filepath.Base(parent))
				s = strings.ReplaceAll(s, "HOST", host)
				return strings.ReplaceAll(s, "PARENT", parent)
			}
			beforeParent := snapshot(t, parent, root)
			beforeHost := snapshot(t, host, "")

			var err error
			if tc.blob != nil {
				b, mt := tc.blob(t)
				_, err = applyBytes(t, root, b, mt, tc.opts)
			} else {
				var layers [][]ent
				for _, l := range tc.layers {
					var nl []ent
					for _, e := range l {
						e.name, e.link = sub(e.name), sub(e.link)
						nl = append(nl, e)
					}
					layers = append(layers, nl)
				}
				err = applyTars(t, root, layers, tc.opts)
			}
			switch {
			case tc.wantErr == errAny && err == nil:
				t.Errorf("applied; want an error")
			case tc.wantErr != nil && tc.wantErr != errAny && !errors.Is(err, tc.wantErr):
				t.Errorf("got error %v, want %v", err, tc.wantErr)
			case tc.wantErr == nil && err != nil:
				t.Errorf("unexpected error: %v", err)
			}
			if err != nil {
				t.Logf("error: %v", err)
			}
			if d := diffSnap(beforeParent, snapshot(t, parent, root)); len(d) > 0 {
				t.Errorf("outside the root (bundle parent) changed:\n%s", strings.Join(d, "\n"))
			}
			if d := diffSnap(beforeHost, snapshot(t, host, "")); len(d) > 0 {
				t.Errorf("outside the root (host dir) changed:\n%s", strings.Join(d, "\n"))
			}
			if tc.wantErr == nil {
				got := tree(t, root)
				for p, w := range tc.want {
					p, w = sub(p), sub(w)
					if got[p] != w {
						t.Errorf("%s: got %q, want %q", p, got[p], w)
					}
				}
				for p := range got {
					if strings.HasPrefix(filepath.Base(p), ".wh.") {
						t.Errorf("whiteout name written: %s", p)
					}
				}
			}
		})
	}
}

var errAny = errors.New("any error")

// sparseBlob is a hostile-case blob of one raw entry.
func sparseBlob(entry []byte) func(t *testing.T) ([]byte, string) {
	return func(t *testing.T) ([]byte, string) { return archive(entry), image.MediaTypeLayer }
}
