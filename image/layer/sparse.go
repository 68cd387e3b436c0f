package layer

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/errdef"
)

// Sparse files. A layer may record a file's holes in one of GNU tar's sparse formats, as Go's
// archive/tar reads them: old GNU ('S' entries, the map in the header and extension blocks),
// PAX 0.0 and 0.1 (the map in PAX records) and PAX 1.0 (the map at the start of the entry's
// data). archive/tar reads the holes back as zeros and does not say where they are, so the
// applier finds the map in the bytes the tar reader read for the entry's headers (tarInput
// records them), checks it, takes the entry's data from the stream itself and writes each data
// fragment at its offset: the holes stay holes, and only data is written and counted against
// the limits. The tar reader then skips the data it did not read (tarInput owes it those
// bytes), so the stream stays one stream, hashed once.

// sparseFrag is one data fragment of a sparse file: Length bytes at Offset.
type sparseFrag struct{ Offset, Length int64 }

// sparseMap is a sparse file's layout: its apparent size and its data fragments, in order and
// not overlapping, within size; the rest of the file is holes.
type sparseMap struct {
	size  int64
	frags []sparseFrag
	data  int64 // the sum of the fragment lengths: the bytes the entry holds
}

// The sparse formats.
const (
	notSparse = iota
	sparseOldGNU
	sparsePAX0 // 0.0 and 0.1
	sparsePAX1 // 1.0
)

const (
	blockSize = 512
	// maxSparseHeaders bounds the header bytes before a sparse entry's data that are examined
	// (archive/tar takes at most 1 MiB for a PAX header, a long name and a map each).
	maxSparseHeaders = 4 << 20
	// maxSparseFrags bounds a sparse map (archive/tar's own bound).
	maxSparseFrags = 1 << 20
)

// PAX records of GNU's sparse formats.
const (
	paxSparseMajor     = "GNU.sparse.major"
	paxSparseMinor     = "GNU.sparse.minor"
	paxSparseName      = "GNU.sparse.name"
	paxSparseRealSize  = "GNU.sparse.realsize"
	paxSparseSize      = "GNU.sparse.size"
	paxSparseMap       = "GNU.sparse.map"
	paxSparseNumBlocks = "GNU.sparse.numblocks"
	paxSparseOffset    = "GNU.sparse.offset"
	paxSparseNumBytes  = "GNU.sparse.numbytes"
)

// sparseKind is the sparse format of an entry, decided as archive/tar decides it.
func sparseKind(typeflag byte, pax map[string]string) int {
	if typeflag == tar.TypeGNUSparse {
		return sparseOldGNU
	}
	major, minor := pax[paxSparseMajor], pax[paxSparseMinor]
	switch {
	case major == "0" && (minor == "0" || minor == "1"):
		return sparsePAX0
	case major == "1" && minor == "0":
		return sparsePAX1
	case major != "" || minor != "":
		return notSparse // an unknown version: archive/tar reads a regular file
	case pax[paxSparseMap] != "":
		return sparsePAX0
	}
	return notSparse
}

// tarInput is the stream the tar reader reads: the pipe; a recording of what the last Next
// read (the headers of an entry and, in the 1.0 format, its map); and the bytes of a sparse
// entry's data the applier took from the pipe itself, owed to the tar reader when it skips
// that data (served as zeros, never hashed or counted twice).
type tarInput struct {
	p         *pipe
	owed      int64
	rec       []byte
	recOff    int64 // stream offset of rec[0]
	recording bool
	overflow  bool // the recording passed maxSparseHeaders
}

func (in *tarInput) Read(b []byte) (int, error) {
	if in.owed > 0 {
		n := int(min(int64(len(b)), in.owed))
		clear(b[:n])
		in.owed -= int64(n)
		return n, nil
	}
	n, err := in.p.Read(b)
	if in.recording && n > 0 {
		if len(in.rec)+n > maxSparseHeaders {
			in.recording, in.overflow = false, true
		} else {
			in.rec = append(in.rec, b[:n]...)
		}
	}
	return n, err
}

// next reads the next header with tr, recording the bytes it reads. The data owed to tr must
// be exactly what it skips.
func (in *tarInput) next(tr *tar.Reader) (*tar.Header, error) {
	in.rec, in.overflow, in.recording = in.rec[:0], false, true
	in.recOff = in.p.offset()
	hdr, err := tr.Next()
	in.recording = false
	if in.owed != 0 {
		return nil, fmt.Errorf("%w: the tar reader skipped %d bytes less than a sparse entry's data", errdef.ErrInvalidArgument, in.owed)
	}
	return hdr, err
}

// take reads n bytes of the current entry's data from the stream itself, in pieces of at most
// len(buf), passing each to fn; the tar reader is owed them.
func (in *tarInput) take(n int64, buf []byte, fn func([]byte) error) error {
	for n > 0 {
		b := buf[:min(n, int64(len(buf)))]
		if _, err := io.ReadFull(in.p, b); err != nil {
			if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("read content: %w: archive is truncated", errdef.ErrInvalidArgument)
			}
			return fmt.Errorf("read content: %w", err)
		}
		in.owed += int64(len(b))
		n -= int64(len(b))
		if err := fn(b); err != nil {
			return err
		}
	}
	return nil
}

// sparseOf returns the layout of the entry hdr (nil when it is not sparse) from the bytes the
// tar reader read for its headers. archive/tar has checked the map already; it is checked
// again here, and against the size of the entry's data.
func (in *tarInput) sparseOf(hdr *tar.Header) (*sparseMap, error) {
	kind := sparseKind(hdr.Typeflag, hdr.PAXRecords)
	if kind == notSparse {
		return nil, nil
	}
	if in.overflow {
		return nil, fmt.Errorf("%w: headers of a sparse entry over %d bytes", errdef.ErrTooLarge, maxSparseHeaders)
	}
	raw, err := splitHeaders(in.rec, in.recOff)
	if err != nil {
		return nil, fmt.Errorf("%w: sparse entry: %v", errdef.ErrInvalidArgument, err)
	}
	m, err := layout(kind, hdr.PAXRecords, hdr.Size, raw)
	if err != nil {
		return nil, fmt.Errorf("%w: sparse map: %v", errdef.ErrInvalidArgument, err)
	}
	return m, nil
}

// diagnose explains why the tar reader refused the entry it was reading, when that entry is a
// sparse file whose map does not hold ("" otherwise).
func (in *tarInput) diagnose() string {
	if in.overflow {
		return ""
	}
	raw, err := splitHeaders(in.rec, in.recOff)
	if err != nil || len(raw.main) < blockSize {
		return ""
	}
	kind := sparseKind(raw.main[156], raw.pax)
	var size int64
	var perr error
	switch kind {
	case notSparse:
		return ""
	case sparseOldGNU:
		size, perr = parseNumeric(raw.main[483:495])
	default:
		s, ok := raw.pax[paxSparseSize]
		if !ok {
			s = raw.pax[paxSparseRealSize]
		}
		size, perr = strconv.ParseInt(s, 10, 64)
	}
	if perr != nil {
		return "sparse entry: invalid real size"
	}
	if _, err := layout(kind, raw.pax, size, raw); err != nil {
		return "sparse map: " + err.Error()
	}
	return ""
}

// rawEntry is an entry's header blocks as recorded.
type rawEntry struct {
	pax  map[string]string // the records of the PAX header before it, as parsed here
	main []byte            // its own header block
	rest []byte            // what the tar reader read after it: extension blocks, the 1.0 map
}

// splitHeaders finds, in the bytes rec the tar reader read from stream offset off (the
// previous entry's padding, then headers), the entry's PAX header, its header block and what
// follows it.
func splitHeaders(rec []byte, off int64) (rawEntry, error) {
	var raw rawEntry
	i := int((blockSize - off%blockSize) % blockSize) // the padding ends on a block boundary
	for {
		if i+blockSize > len(rec) {
			return raw, errors.New("no header block")
		}
		blk := rec[i : i+blockSize]
		i += blockSize
		switch blk[156] {
		case tar.TypeXHeader, tar.TypeGNULongName, tar.TypeGNULongLink:
			n, err := parseNumeric(blk[124:136])
			if err != nil || n < 0 || n > int64(len(rec)-i) {
				return raw, errors.New("extended header out of bounds")
			}
			if blk[156] == tar.TypeXHeader {
				raw.pax = parsePAXRecords(rec[i : i+int(n)])
			}
			i += int(alignBlock(n))
			if i > len(rec) {
				return raw, errors.New("extended header out of bounds")
			}
		default:
			raw.main, raw.rest = blk, rec[i:]
			return raw, nil
		}
	}
}

// layout reads and checks the sparse map of an entry of format kind and apparent size size.
func layout(kind int, pax map[string]string, size int64, raw rawEntry) (*sparseMap, error) {
	stored, err := storedSize(pax, raw.main)
	if err != nil {
		return nil, err
	}
	m := &sparseMap{size: size}
	switch kind {
	case sparseOldGNU:
		m.frags, err = oldGNUMap(raw.main, raw.rest)
	case sparsePAX0:
		if len(raw.rest) != 0 {
			return nil, errors.New("blocks after the header")
		}
		m.frags, err = pax0Map(pax)
	case sparsePAX1:
		var used int64
		m.frags, used, err = pax1Map(raw.rest)
		stored -= used
	}
	if err != nil {
		return nil, err
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	if m.data != stored {
		return nil, fmt.Errorf("its fragments hold %d bytes, the entry stores %d", m.data, stored)
	}
	return m, nil
}

// storedSize is the size of the data an entry stores: its PAX size record or its header's.
func storedSize(pax map[string]string, main []byte) (int64, error) {
	if s, ok := pax["size"]; ok {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("invalid size record %q", s)
		}
		return n, nil
	}
	n, err := parseNumeric(main[124:136])
	if err != nil {
		return 0, errors.New("invalid size field")
	}
	return n, nil
}

// check holds the map to the rules archive/tar and BSD tar apply: no negative offset or
// length, no overflow, every fragment within the size, in order, none overlapping.
func (m *sparseMap) check() error {
	if m.size < 0 {
		return fmt.Errorf("negative size %d", m.size)
	}
	var end int64
	for i, f := range m.frags {
		switch {
		case f.Offset < 0 || f.Length < 0:
			return fmt.Errorf("fragment %d: negative offset or length (%d bytes at %d)", i+1, f.Length, f.Offset)
		case f.Offset > math.MaxInt64-f.Length:
			return fmt.Errorf("fragment %d: %d bytes at %d overflow", i+1, f.Length, f.Offset)
		case f.Offset+f.Length > m.size:
			return fmt.Errorf("fragment %d: %d bytes at %d end beyond the size %d", i+1, f.Length, f.Offset, m.size)
		case f.Offset < end:
			return fmt.Errorf("fragment %d at %d overlaps or precedes the one before (which ends at %d)", i+1, f.Offset, end)
		}
		end = f.Offset + f.Length
		m.data += f.Length
	}
	return nil
}

// oldGNUMap reads the map of an old GNU sparse header (4 entries in the header, 21 in each
// extension block, an entry whose offset starts with NUL ends a block's list).
func oldGNUMap(main, ext []byte) ([]sparseFrag, error) {
	var frags []sparseFrag
	s, n := main[386:483], 4
	for {
		for i := 0; i < n; i++ {
			e := s[i*24 : i*24+24]
			if e[0] == 0 {
				break
			}
			off, err1 := parseNumeric(e[:12])
			length, err2 := parseNumeric(e[12:])
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("fragment %d: invalid number", len(frags)+1)
			}
			if len(frags) >= maxSparseFrags {
				return nil, fmt.Errorf("more than %d fragments", maxSparseFrags)
			}
			frags = append(frags, sparseFrag{off, length})
		}
		if s[n*24] == 0 { // not extended
			break
		}
		if len(ext) < blockSize {
			return nil, errors.New("extension block missing")
		}
		s, n, ext = ext[:blockSize], 21, ext[blockSize:]
	}
	if len(ext) != 0 {
		return nil, errors.New("blocks after the last extension block")
	}
	return frags, nil
}

// pax0Map reads the map of the PAX 0.0 and 0.1 formats (GNU.sparse.numblocks and
// GNU.sparse.map: offset,length,… ; archive/tar turns 0.0's repeated offset and numbytes
// records into the map).
func pax0Map(pax map[string]string) ([]sparseFrag, error) {
	n, err := strconv.ParseInt(pax[paxSparseNumBlocks], 10, 0)
	if err != nil || n < 0 || n > maxSparseFrags {
		return nil, fmt.Errorf("invalid fragment count %q", pax[paxSparseNumBlocks])
	}
	fields := strings.Split(pax[paxSparseMap], ",")
	if len(fields) == 1 && fields[0] == "" {
		fields = nil
	}
	if int64(len(fields)) != 2*n {
		return nil, fmt.Errorf("%d numbers for %d fragments, not %d", len(fields), n, 2*n)
	}
	frags := make([]sparseFrag, 0, n)
	for i := 0; i < len(fields); i += 2 {
		off, err1 := strconv.ParseInt(fields[i], 10, 64)
		length, err2 := strconv.ParseInt(fields[i+1], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("fragment %d: invalid number", i/2+1)
		}
		frags = append(frags, sparseFrag{off, length})
	}
	return frags, nil
}

// pax1Map reads the map of the PAX 1.0 format at the start of the entry's data: the number
// of fragments, then each one's offset and length, in decimal, one a line, padded to a block.
// used is the map's length in blocks, which must be all of b.
func pax1Map(b []byte) (frags []sparseFrag, used int64, err error) {
	pos := 0
	next := func() (int64, bool) {
		j := bytes.IndexByte(b[pos:], '\n')
		if j < 0 {
			return 0, false
		}
		v, err := strconv.ParseInt(string(b[pos:pos+j]), 10, 64)
		pos += j + 1
		return v, err == nil
	}
	n, ok := next()
	if !ok || n < 0 || n > maxSparseFrags {
		return nil, 0, errors.New("invalid fragment count")
	}
	frags = make([]sparseFrag, 0, min(n, 1024))
	for i := int64(0); i < n; i++ {
		off, ok1 := next()
		length, ok2 := next()
		if !ok1 || !ok2 {
			return nil, 0, fmt.Errorf("fragment %d: missing or invalid number", i+1)
		}
		frags = append(frags, sparseFrag{off, length})
	}
	used = alignBlock(int64(pos))
	if used != int64(len(b)) {
		return nil, 0, errors.New("map out of step with the stream")
	}
	return frags, used, nil
}

// encodePAX1Map is the PAX 1.0 map of frags, padded to a block.
func encodePAX1Map(frags []sparseFrag) []byte {
	b := strconv.AppendInt(nil, int64(len(frags)), 10)
	b = append(b, '\n')
	for _, f := range frags {
		b = strconv.AppendInt(b, f.Offset, 10)
		b = append(b, '\n')
		b = strconv.AppendInt(b, f.Length, 10)
		b = append(b, '\n')
	}
	return append(b, make([]byte, alignBlock(int64(len(b)))-int64(len(b)))...)
}

// parsePAXRecords parses the records of a PAX header ("LEN key=value\n"…) as far as they are
// well formed, turning 0.0's offset and numbytes records into a GNU.sparse.map (for diagnose).
func parsePAXRecords(b []byte) map[string]string {
	m := map[string]string{}
	var sparse []string
	for len(b) > 0 {
		sp := bytes.IndexByte(b, ' ')
		if sp <= 0 {
			break
		}
		n, err := strconv.Atoi(string(b[:sp]))
		if err != nil || n <= sp+1 || n > len(b) || b[n-1] != '\n' {
			break
		}
		k, v, ok := strings.Cut(string(b[sp+1:n-1]), "=")
		b = b[n:]
		if !ok {
			break
		}
		if k == paxSparseOffset || k == paxSparseNumBytes {
			sparse = append(sparse, v)
			continue
		}
		m[k] = v
	}
	if len(sparse) > 0 {
		m[paxSparseMap] = strings.Join(sparse, ",")
	}
	return m
}

// formatPAXRecords is the data of a PAX header holding m, in key order.
func formatPAXRecords(m map[string]string) []byte {
	var b []byte
	for _, k := range slices.Sorted(maps.Keys(m)) {
		kv := " " + k + "=" + m[k] + "\n"
		n := len(kv) + 1
		for len(strconv.Itoa(n))+len(kv) != n {
			n++
		}
		b = append(strconv.AppendInt(b, int64(n), 10), kv...)
	}
	return b
}

// setChecksum sets the checksum of a header block.
func setChecksum(h []byte) {
	copy(h[148:156], "        ")
	var sum int64
	for _, c := range h[:blockSize] {
		sum += int64(c)
	}
	copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
}

// parseNumeric reads a tar header number: octal (NUL- and space-padded) or base-256.
func parseNumeric(b []byte) (int64, error) {
	if len(b) > 0 && b[0]&0x80 != 0 {
		var inv byte
		if b[0]&0x40 != 0 {
			inv = 0xff
		}
		var x uint64
		for i, c := range b {
			c ^= inv
			if i == 0 {
				c &= 0x7f
			}
			if x>>56 > 0 {
				return 0, errors.New("overflow")
			}
			x = x<<8 | uint64(c)
		}
		if x>>63 > 0 {
			return 0, errors.New("overflow")
		}
		if inv == 0xff {
			return ^int64(x), nil
		}
		return int64(x), nil
	}
	b = bytes.Trim(b, " \x00")
	if len(b) == 0 {
		return 0, nil
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	x, err := strconv.ParseUint(string(b), 8, 63)
	return int64(x), err
}

func alignBlock(n int64) int64 { return (n + blockSize - 1) &^ (blockSize - 1) }

// sparseContent writes the data fragments of a sparse entry at their offsets and gives the
// file its apparent size: the holes are not written.
func (a *applier) sparseContent(fd int, m *sparseMap) error {
	for _, f := range m.frags {
		off := f.Offset
		err := a.in.take(f.Length, a.buf, func(b []byte) error {
			if err := a.count(int64(len(b))); err != nil {
				return err
			}
			if err := pwriteAll(fd, b, off); err != nil {
				return err
			}
			off += int64(len(b))
			return nil
		})
		if err != nil {
			return err
		}
	}
	if err := unix.Ftruncate(fd, m.size); err != nil {
		return fmt.Errorf("set size %d: %w", m.size, err)
	}
	return nil
}

// skipSparse passes over the data of a sparse entry that is not applied.
func (a *applier) skipSparse(m *sparseMap) error {
	return a.in.take(m.data, a.buf, func([]byte) error { return nil })
}

// pwriteAll writes b to fd at off.
func pwriteAll(fd int, b []byte, off int64) error {
	for len(b) > 0 {
		n, err := unix.Pwrite(fd, b, off)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return fmt.Errorf("write: %w", err)
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}
