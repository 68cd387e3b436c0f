package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/image"
	"github.com/wharfoci/wharf/internal/rootfs"
)

// rawHeader is a tar header block for name of type typ and stored size (GNU's magic when gnu,
// ustar's otherwise); edit changes it before its checksum is set.
func rawHeader(name string, typ byte, size int64, gnu bool, edit func(h []byte)) []byte {
	h := make([]byte, blockSize)
	copy(h[0:], name)
	copy(h[100:], "0000644\x00")
	copy(h[108:], "0000000\x00")
	copy(h[116:], "0000000\x00")
	copy(h[124:], fmt.Sprintf("%011o\x00", size))
	copy(h[136:], "14500000000\x00")
	h[156] = typ
	if gnu {
		copy(h[257:], "ustar  \x00")
	} else {
		copy(h[257:], "ustar\x0000")
	}
	if edit != nil {
		edit(h)
	}
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

// padded is b followed by zeros up to a block boundary.
func padded(b []byte) []byte {
	return append(b, make([]byte, alignBlock(int64(len(b)))-int64(len(b)))...)
}

// numField is a 12-byte header number: octal, or base-256 when it does not fit (GNU's way).
func numField(v int64) []byte {
	if v < 1<<33 {
		return []byte(fmt.Sprintf("%011o\x00", v))
	}
	b := make([]byte, 12)
	for i := 11; i > 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
	b[0] = 0x80
	return b
}

// paxHeader is a PAX extended header ('x') holding records in order (keys may repeat).
func paxHeader(records ...string) []byte {
	var data []byte
	for i := 0; i+1 < len(records); i += 2 {
		kv := " " + records[i] + "=" + records[i+1] + "\n"
		n := len(kv) + 1
		for len(strconv.Itoa(n))+len(kv) != n {
			n++
		}
		data = append(data, strconv.Itoa(n)+kv...)
	}
	return append(rawHeader("PaxHeaders/x", tar.TypeXHeader, int64(len(data)), false, nil), padded(data)...)
}

// oldGNUSparse is an old GNU sparse entry ('S'): 4 fragments in the header, 21 in each
// extension block, then data.
func oldGNUSparse(name string, realSize int64, frags []sparseFrag, data []byte) []byte {
	entry := func(s []byte, i int, f sparseFrag) {
		copy(s[i*24:], numField(f.Offset))
		copy(s[i*24+12:], numField(f.Length))
	}
	first := frags[:min(4, len(frags))]
	rest := frags[len(first):]
	out := rawHeader(name, tar.TypeGNUSparse, int64(len(data)), true, func(h []byte) {
		for i, f := range first {
			entry(h[386:], i, f)
		}
		if len(rest) > 0 {
			h[482] = 1
		}
		copy(h[483:], numField(realSize))
	})
	for len(rest) > 0 {
		blk := make([]byte, blockSize)
		n := min(21, len(rest))
		for i, f := range rest[:n] {
			entry(blk, i, f)
		}
		rest = rest[n:]
		if len(rest) > 0 {
			blk[504] = 1
		}
		out = append(out, blk...)
	}
	return append(out, padded(append([]byte(nil), data...))...)
}

// plainFile is a regular file entry (ustar).
func plainFile(name string, data []byte) []byte {
	return append(rawHeader(name, tar.TypeReg, int64(len(data)), false, nil), padded(append([]byte(nil), data...))...)
}

// paxEntry is a regular file entry under a PAX header of records (key, value, … in order).
func paxEntry(name string, data []byte, records ...string) []byte {
	return append(paxHeader(records...), plainFile(name, data)...)
}

// pax1Sparse is a PAX 1.0 sparse entry as GNU tar writes it, its map text given as is.
func pax1Sparse(name string, realSize int64, mapText string, data []byte) []byte {
	return paxEntry("GNUSparseFile.0/"+name, append(padded([]byte(mapText)), data...),
		paxSparseMajor, "1", paxSparseMinor, "0", paxSparseName, name, paxSparseRealSize, strconv.FormatInt(realSize, 10))
}

// pax0Sparse is a PAX 0.1 sparse entry, its map and fragment count given as are.
func pax0Sparse(name string, realSize int64, count, sparseMap string, data []byte) []byte {
	return paxEntry(name, data, paxSparseMajor, "0", paxSparseMinor, "1", paxSparseName, name,
		paxSparseSize, strconv.FormatInt(realSize, 10), paxSparseNumBlocks, count, paxSparseMap, sparseMap)
}

// pax0MapText is the GNU.sparse.map of frags.
func pax0MapText(frags ...sparseFrag) string {
	var m []string
	for _, f := range frags {
		m = append(m, strconv.FormatInt(f.Offset, 10), strconv.FormatInt(f.Length, 10))
	}
	return strings.Join(m, ",")
}

// mapText is the PAX 1.0 map of frags.
func mapText(frags ...sparseFrag) string {
	s := fmt.Sprintf("%d\n", len(frags))
	for _, f := range frags {
		s += fmt.Sprintf("%d\n%d\n", f.Offset, f.Length)
	}
	return s
}

// archive joins raw entries and the end-of-archive blocks.
func archive(parts ...[]byte) []byte {
	return append(bytes.Join(parts, nil), make([]byte, 2*blockSize)...)
}

// sparseCase is a sparse file as every format encodes it.
type sparseCase struct {
	size  int64
	frags []sparseFrag
}

func (c sparseCase) data() []byte {
	var d []byte
	for i, f := range c.frags {
		d = append(d, bytes.Repeat([]byte{byte('a' + i)}, int(f.Length))...)
	}
	return d
}

// content is the file's apparent content.
func (c sparseCase) content() []byte {
	b := make([]byte, c.size)
	d := c.data()
	for _, f := range c.frags {
		copy(b[f.Offset:], d[:f.Length])
		d = d[f.Length:]
	}
	return b
}

// encodings are the archives holding c as the file "f" in each sparse format.
func (c sparseCase) encodings(t testing.TB) map[string][]byte {
	var pax00 []string
	for _, f := range c.frags {
		pax00 = append(pax00, paxSparseOffset, strconv.FormatInt(f.Offset, 10), paxSparseNumBytes, strconv.FormatInt(f.Length, 10))
	}
	d := c.data()
	encs := map[string][]byte{
		"old GNU": archive(oldGNUSparse("f", c.size, c.frags, d)),
		"PAX 0.0": archive(paxEntry("f", d, append([]string{paxSparseSize, strconv.FormatInt(c.size, 10), paxSparseNumBlocks, strconv.Itoa(len(c.frags))}, pax00...)...)),
		"PAX 0.1": archive(pax0Sparse("f", c.size, strconv.Itoa(len(c.frags)), pax0MapText(c.frags...), d)),
		"PAX 1.0": archive(pax1Sparse("f", c.size, mapText(c.frags...), d)),
	}
	if len(c.frags) == 0 {
		delete(encs, "PAX 0.0") // without an offset record, nothing says it is sparse
	}
	return encs
}

// blocks is the space a file takes (st_blocks, 512-byte units).
func blocks(t *testing.T, p string) int64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks
}

// readAt reads n bytes of the file p at off.
func readAt(t *testing.T, p string, off, n int64) []byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return b
}

// TestApplySparse: each sparse format is applied with its holes as holes (st_blocks covers the
// data only), its apparent size and content, and only the data counts against the limits.
func TestApplySparse(t *testing.T) {
	const G = 1 << 30
	cases := map[string]sparseCase{
		"data then hole":        {2 * G, []sparseFrag{{0, 4096}, {2 * G, 0}}},
		"hole then data at end": {2 * G, []sparseFrag{{2*G - 4096, 4096}}},
		"lastlog":               {1 << 40, []sparseFrag{{0, 292}, {(1<<40)/292*292 - 292*1000, 292}, {1<<40 - 292, 292}}},
		"unaligned":             {100000, []sparseFrag{{1, 10}, {50000, 3}, {99990, 10}}},
		"all hole":              {1 << 32, []sparseFrag{{1 << 32, 0}}},
		"empty map":             {1 << 20, nil},
		"many fragments": func() sparseCase {
			c := sparseCase{size: 100 << 20}
			for i := int64(0); i < 60; i++ { // more than fits in old GNU's header and one extension block
				c.frags = append(c.frags, sparseFrag{i << 20, 512})
			}
			return c
		}(),
	}
	for cname, c := range cases {
		for format, blob := range c.encodings(t) {
			t.Run(cname+"/"+format, func(t *testing.T) {
				root := t.TempDir()
				st, err := applyBytes(t, root, gz(t, blob), image.MediaTypeLayerGzip,
					Options{Limits: Limits{MaxBytes: 1 << 20, RatioFloor: 1, MaxRatio: 1000}})
				if err != nil {
					t.Fatalf("apply: %v", err)
				}
				if st.Entries != 1 || st.DiffID != digestOf(blob) {
					t.Errorf("stats %+v", st)
				}
				p := filepath.Join(root, "f")
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Size() != c.size {
					t.Errorf("size %d, want %d", fi.Size(), c.size)
				}
				want := int64(len(c.data()))
				if b := blocks(t, p); b*512 > alignBlock(want)+int64(len(c.frags))*8192 {
					t.Errorf("st_blocks %d (%d bytes) for %d bytes of data: holes were written", b, b*512, want)
				}
				checkSparseContent(t, p, c)
			})
		}
	}
}

// checkSparseContent compares the file p with c: its data fragments byte for byte, and zeros
// around each (the whole file when it is small).
func checkSparseContent(t *testing.T, p string, c sparseCase) {
	t.Helper()
	if c.size <= 1<<20 {
		b, _ := os.ReadFile(p)
		if !bytes.Equal(b, c.content()) {
			t.Errorf("content differs")
		}
		return
	}
	d := c.data()
	for _, f := range c.frags {
		if got := readAt(t, p, f.Offset, f.Length); !bytes.Equal(got, d[:f.Length]) {
			t.Errorf("fragment at %d differs", f.Offset)
		}
		d = d[f.Length:]
		for _, at := range []int64{f.Offset - 4096, f.Offset + f.Length} {
			if at < 0 || at+4096 > c.size || overlaps(c.frags, at, 4096) {
				continue
			}
			if got := readAt(t, p, at, 4096); !bytes.Equal(got, make([]byte, 4096)) {
				t.Errorf("hole at %d holds data", at)
			}
		}
	}
}

func overlaps(frags []sparseFrag, off, n int64) bool {
	for _, f := range frags {
		if f.Length > 0 && off < f.Offset+f.Length && f.Offset < off+n {
			return true
		}
	}
	return false
}

// TestApplySparseCountsData: the data of a sparse entry counts against the limits (a sparse
// entry is no way around them), its holes do not, and zeros stored in a plain entry count.
func TestApplySparseCountsData(t *testing.T) {
	zeros := make([]byte, 8<<20)
	tests := []struct {
		name    string
		blob    []byte
		lim     Limits
		wantErr error
	}{
		{"holes under MaxBytes", archive(pax1Sparse("f", 1<<40, mapText(sparseFrag{0, 4096}), make([]byte, 4096))), Limits{MaxBytes: 64 << 10}, nil},
		{"holes under the ratio", gz(t, archive(pax1Sparse("f", 1<<40, mapText(sparseFrag{0, 4096}), make([]byte, 4096)))), Limits{MaxRatio: 100, RatioFloor: 1}, nil},
		{"sparse data over MaxBytes", archive(pax1Sparse("f", 1<<40, mapText(sparseFrag{0, 8 << 20}), zeros)), Limits{MaxBytes: 4 << 20}, errdef.ErrTooLarge},
		{"sparse data over the ratio", gz(t, archive(pax1Sparse("f", 1<<40, mapText(sparseFrag{0, 8 << 20}), zeros))), Limits{MaxRatio: 100, RatioFloor: 1 << 20}, errdef.ErrTooLarge},
		{"old GNU data over MaxBytes", archive(oldGNUSparse("f", 1<<40, []sparseFrag{{0, 8 << 20}}, zeros)), Limits{MaxBytes: 4 << 20}, errdef.ErrTooLarge},
		{"plain zeros over the ratio", gz(t, mkTar(t, []ent{{name: "f", body: string(zeros)}})), Limits{MaxRatio: 100, RatioFloor: 1 << 20}, errdef.ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mt := image.MediaTypeLayer
			if tc.blob[0] == 0x1f {
				mt = image.MediaTypeLayerGzip
			}
			_, err := applyBytes(t, t.TempDir(), tc.blob, mt, Options{Limits: tc.lim})
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("got %v, want %v", err, tc.wantErr)
			}
		})
	}
}

// TestApplySparseSkipped: the data of a sparse entry that is not applied (AUFS metadata) is
// passed over, and the entries after it are applied.
func TestApplySparseSkipped(t *testing.T) {
	root := t.TempDir()
	blob := archive(
		pax1Sparse(".wh..wh.plnk/1.2", 1<<30, mapText(sparseFrag{0, 1000}), bytes.Repeat([]byte("x"), 1000)),
		plainFile("after", []byte("after")),
		pax1Sparse("s", 1<<20, mapText(sparseFrag{4096, 5}), []byte("hello")),
		plainFile("last", []byte("last")),
	)
	if _, err := applyBytes(t, root, blob, image.MediaTypeLayer, Options{}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"after": "file:after", "last": "file:last", ".wh..wh.plnk": ""}
	got := tree(t, root)
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s: got %q, want %q", p, got[p], w)
		}
	}
	if b := readAt(t, filepath.Join(root, "s"), 4096, 5); string(b) != "hello" {
		t.Errorf("s: %q", b)
	}
}

// makeSparse creates the file p of size size with data at the given offsets.
func makeSparse(t *testing.T, p string, size int64, data map[int64]string) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for off, d := range data {
		if _, err := f.WriteAt([]byte(d), off); err != nil {
			t.Fatal(err)
		}
	}
}

// writeOne repacks the one path p of root (as added) and returns the layer.
func writeOne(t *testing.T, root string, p string) []byte {
	t.Helper()
	r, err := rootfs.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var changes []Change
	Walk(r, func(rec Record) error {
		if rec.Path == p {
			changes = append(changes, Change{Kind: Added, Rec: rec})
		}
		return nil
	})
	var b bytes.Buffer
	if err := WriteChanges(context.Background(), r, changes, nil, &b, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestWriteSparse: repack writes a file with holes as a PAX 1.0 sparse entry (GNU tar's layout,
// byte for byte), a file without holes (or with less than minSparseHoles) as a plain entry;
// archive/tar reads it back to the file, and so does Apply, holes kept.
func TestWriteSparse(t *testing.T) {
	const M = 1 << 20
	tests := []struct {
		name    string
		size    int64
		data    map[int64]string
		wantMap string // "" for a plain entry
	}{
		{"hole between data", 3 * M, map[int64]string{0: "head", 2 * M: "middle", 3*M - 4: "tail"},
			"3\n0\n4096\n2097152\n4096\n3141632\n4096\n"},
		{"ends in a hole", 1 << 34, map[int64]string{8192: "x"}, "2\n8192\n4096\n17179869184\n0\n"},
		{"starts with a hole", 5 * M, map[int64]string{5*M - 1: "z"}, "1\n5238784\n4096\n"},
		{"all hole", 64 << 20, nil, "1\n67108864\n0\n"},
		{"unaligned end", 1*M + 100, map[int64]string{1 * M: strings.Repeat("q", 100)}, "1\n1048576\n100\n"},
		{"no hole", 10000, map[int64]string{0: strings.Repeat("d", 10000)}, ""},
		{"small", 5, map[int64]string{0: "small"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := t.TempDir()
			makeSparse(t, filepath.Join(src, "f"), tc.size, tc.data)
			layer := writeOne(t, src, "f")
			if again := writeOne(t, src, "f"); !bytes.Equal(layer, again) {
				t.Errorf("two writes differ")
			}
			tr := tar.NewReader(bytes.NewReader(layer))
			h, err := tr.Next()
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantMap == "" {
				if h.Name != "f" || h.Size != tc.size || h.PAXRecords[paxSparseMajor] != "" {
					t.Errorf("plain entry: name %q size %d records %v", h.Name, h.Size, h.PAXRecords)
				}
			} else {
				checkSparseEntry(t, layer, "f", tc.size, tc.wantMap)
				if h.Name != "f" || h.Size != tc.size {
					t.Errorf("archive/tar reads name %q size %d, want f %d", h.Name, h.Size, tc.size)
				}
			}
			if tc.size <= 64<<20 { // archive/tar reads holes as zeros: only the small ones
				want := make([]byte, tc.size)
				for off, d := range tc.data {
					copy(want[off:], d)
				}
				got, err := io.ReadAll(tr)
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("archive/tar reads other content (%v)", err)
				}
			}
			dst := t.TempDir()
			if _, err := applyBytes(t, dst, layer, image.MediaTypeLayer, Options{}); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dst, "f")
			fi, _ := os.Stat(p)
			if fi.Size() != tc.size {
				t.Errorf("applied size %d", fi.Size())
			}
			for off, d := range tc.data {
				if got := readAt(t, p, off, int64(len(d))); string(got) != d {
					t.Errorf("applied content at %d: %q", off, got)
				}
			}
			if tc.wantMap != "" && blocks(t, p) > blocks(t, filepath.Join(src, "f")) {
				t.Errorf("applied file takes %d blocks, the source %d", blocks(t, p), blocks(t, filepath.Join(src, "f")))
			}
		})
	}
}

// checkSparseEntry checks the raw PAX 1.0 entry of name in layer: its header name, records
// and map.
func checkSparseEntry(t *testing.T, layer []byte, name string, size int64, wantMap string) {
	t.Helper()
	// The PAX header: its records in key order.
	recs := parsePAXRecords(layer[blockSize:])
	want := map[string]string{paxSparseMajor: "1", paxSparseMinor: "0", paxSparseName: name, paxSparseRealSize: strconv.FormatInt(size, 10)}
	for k, v := range want {
		if recs[k] != v {
			t.Errorf("record %s=%q, want %q (records %v)", k, recs[k], v, recs)
		}
	}
	n, _ := parseNumeric(layer[124:136])
	main := layer[blockSize+alignBlock(n):]
	if got, want := string(bytes.TrimRight(main[:100], "\x00")), "GNUSparseFile.0/"+name; got != want {
		t.Errorf("header name %q, want %q", got, want)
	}
	m := main[blockSize:]
	if got := string(m[:len(wantMap)]); got != wantMap {
		t.Errorf("map %q, want %q", got, wantMap)
	}
	if !bytes.Equal(m[len(wantMap):alignBlock(int64(len(wantMap)))], make([]byte, alignBlock(int64(len(wantMap)))-int64(len(wantMap)))) {
		t.Errorf("map not padded with zeros")
	}
}

// TestSparseMapCodec: the PAX 1.0 map encodes and decodes back, refusing what does not hold.
func TestSparseMapCodec(t *testing.T) {
	frags := []sparseFrag{{0, 512}, {1 << 40, 7}, {1<<40 + 512, 0}}
	enc := encodePAX1Map(frags)
	if len(enc)%blockSize != 0 {
		t.Fatalf("map of %d bytes", len(enc))
	}
	got, used, err := pax1Map(enc)
	if err != nil || used != int64(len(enc)) || !reflect.DeepEqual(got, frags) {
		t.Fatalf("decoded %v %d %v", got, used, err)
	}
	for _, bad := range []string{"", "x\n", "-1\n", "2\n0\n1\n", "1\n0\n", "99999999999999\n", "1\n0\n1\n" + strings.Repeat("\x00", 600)} {
		if _, _, err := pax1Map(padded([]byte(bad))); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
}
