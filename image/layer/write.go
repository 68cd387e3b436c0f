package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/internal/rootfs"
)

// WriteOptions control WriteChanges.
type WriteOptions struct {
	// SourceDateEpoch, when set, clamps every mtime to it (reproducible builds).
	SourceDateEpoch *time.Time
	// UIDMap and GIDMap are the shifts the root was unpacked with: owners are shifted back to
	// container IDs. A host ID outside every range is an error.
	UIDMap, GIDMap []specs.LinuxIDMapping
}

type tarEntry struct {
	name string // root-relative path of the entry ("a/.wh.b" for whiteouts)
	comp []string
	ch   *Change
	kind int // 0 path, 1 opaque marker, 2 whiteout
}

func unmapID(m []specs.LinuxIDMapping, id uint32, what string) (int, error) {
	if len(m) == 0 {
		return int(id), nil
	}
	for _, e := range m {
		if uint64(id) >= uint64(e.HostID) && uint64(id) < uint64(e.HostID)+uint64(e.Size) {
			return int(e.ContainerID + (id - e.HostID)), nil
		}
	}
	return 0, invalid("host %s %d is outside the %s map", what, id, what)
}

// WriteChanges writes changes (from Changes) as an uncompressed layer tar to w: entries sorted
// by path component, whiteouts (.wh.NAME) for deletions, an opaque whiteout in each replaced
// directory, hardlinks for paths sharing an inode, no user or group names, no access or change
// times. The same tree and changes give the same bytes.
func WriteChanges(ctx context.Context, root *rootfs.Root, changes []Change, lowerLinks map[uint64]string, w io.Writer, opts WriteOptions) error {
	cw := &changeWriter{root: root, w: w, tw: tar.NewWriter(w), opts: opts, lowerLinks: lowerLinks,
		emitted: map[uint64]string{}, buf: make([]byte, 1<<20)}
	for _, e := range tarEntries(changes) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := cw.entry(e); err != nil {
			return err
		}
	}
	return cw.tw.Close()
}

// tarEntries lists the entries that write changes: one per path, a whiteout for a deletion,
// a path and its opaque marker for a replaced directory; sorted by path component.
func tarEntries(changes []Change) []tarEntry {
	var ents []tarEntry
	for i := range changes {
		c := &changes[i]
		p := c.Rec.Path
		if p == "." && c.Kind != Deleted {
			continue // the root's own attributes are not part of a changeset
		}
		switch c.Kind {
		case Deleted:
			d, b := splitPath(p)
			n := whiteoutPrefix + b
			if d != "." {
				n = d + "/" + n
			}
			ents = append(ents, tarEntry{name: n, ch: c, kind: 2})
		case Replaced:
			ents = append(ents, tarEntry{name: p, ch: c}, tarEntry{name: p + "/" + whiteoutOpaque, ch: c, kind: 1})
		default:
			ents = append(ents, tarEntry{name: p, ch: c})
		}
	}
	for i := range ents {
		ents[i].comp = strings.Split(ents[i].name, "/")
	}
	sort.SliceStable(ents, func(i, j int) bool {
		a, b := ents[i].comp, ents[j].comp
		for k := 0; k < len(a) && k < len(b); k++ {
			if a[k] != b[k] {
				return a[k] < b[k]
			}
		}
		return len(a) < len(b)
	})
	return ents
}

// changeWriter writes the entries of one changeset.
type changeWriter struct {
	root       *rootfs.Root
	w          io.Writer // the layer: tw, and the sparse entries written around it
	tw         *tar.Writer
	opts       WriteOptions
	lowerLinks map[uint64]string // inodes of unchanged files → one of their paths
	emitted    map[uint64]string // inodes written in this layer → the first path
	buf        []byte
}

// entry writes one entry: a whiteout, or a path's header (owner, mode, mtime, type, xattrs)
// and, for a regular file, its content (a file with holes as a sparse entry, see sparseLayout).
func (cw *changeWriter) entry(e tarEntry) error {
	if e.kind != 0 {
		// whiteouts: empty regular files
		return cw.tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeReg, Mode: 0644, ModTime: time.Unix(0, 0), Format: tar.FormatPAX})
	}
	r := e.ch.Rec
	h, fd, err := cw.header(r)
	if err != nil || h == nil {
		if err != nil {
			return fmt.Errorf("repack %s: %w", r.Path, err)
		}
		return nil // not part of an image
	}
	if fd >= 0 {
		defer unix.Close(fd)
	}
	if err := cw.write(h, fd); err != nil {
		return fmt.Errorf("repack %s: %w", r.Path, err)
	}
	return nil
}

// header is the header of r, with a descriptor of the directory or regular file (-1 for other
// types; closed on error); nil for what an image does not hold (sockets).
func (cw *changeWriter) header(r Record) (*tar.Header, int, error) {
	h, err := cw.baseHeader(r)
	if err != nil {
		return nil, -1, err
	}
	fd, ok, err := cw.typed(h, r)
	if err != nil || !ok {
		return nil, -1, err
	}
	if fd >= 0 {
		if err := addXattrs(h, fd); err != nil {
			unix.Close(fd)
			return nil, -1, err
		}
	}
	return h, fd, nil
}

// write writes the header h and, for a regular file, the content of fd: as a sparse entry when
// it has holes.
func (cw *changeWriter) write(h *tar.Header, fd int) error {
	if h.Typeflag != tar.TypeReg || h.Size == 0 {
		return cw.tw.WriteHeader(h)
	}
	sp, err := sparseLayout(fd, h)
	if err != nil {
		return fmt.Errorf("find holes: %w", err)
	}
	if sp != nil {
		return cw.sparseEntry(h, fd, sp)
	}
	if err := cw.tw.WriteHeader(h); err != nil {
		return err
	}
	return cw.content(fd, h.Size)
}

// baseHeader is the header of r without its type: name, mode, owner (shifted back to
// container IDs) and mtime (clamped to SourceDateEpoch).
func (cw *changeWriter) baseHeader(r Record) (*tar.Header, error) {
	uid, err := unmapID(cw.opts.UIDMap, r.UID, "uid")
	if err != nil {
		return nil, err
	}
	gid, err := unmapID(cw.opts.GIDMap, r.GID, "gid")
	if err != nil {
		return nil, err
	}
	mt := time.Unix(0, r.Mtime)
	if cw.opts.SourceDateEpoch != nil && mt.After(*cw.opts.SourceDateEpoch) {
		mt = *cw.opts.SourceDateEpoch
	}
	return &tar.Header{Name: r.Path, Mode: int64(r.Mode & 07777), Uid: uid, Gid: gid, ModTime: mt, Format: tar.FormatPAX}, nil
}

// typed completes h by the type of r and returns a descriptor of the directory or regular file
// (-1 for other types) for its xattrs and content. ok is false for what an image does not
// hold (sockets) and on error.
func (cw *changeWriter) typed(h *tar.Header, r Record) (fd int, ok bool, err error) {
	switch r.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		h.Typeflag, h.Name = tar.TypeDir, r.Path+"/"
		fd, err = cw.root.OpenFD(r.Path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
		return fd, err == nil, err
	case unix.S_IFREG:
		if cw.link(h, r) {
			return -1, true, nil
		}
		h.Typeflag, h.Size = tar.TypeReg, r.Size
		fd, err = cw.root.OpenFD(r.Path, unix.O_RDONLY|unix.O_NOFOLLOW, 0)
		return fd, err == nil, err
	case unix.S_IFLNK:
		h.Typeflag = tar.TypeSymlink
		h.Linkname, err = readlinkIn(cw.root, r.Path)
		return -1, true, err
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
		return -1, true, cw.device(h, r)
	}
	return -1, false, nil // sockets and the like are not part of an image
}

// link makes h a hardlink when r is an inode already written in this layer or left unchanged
// in a lower one, and otherwise remembers r as the inode's first path.
func (cw *changeWriter) link(h *tar.Header, r Record) bool {
	if r.Nlink <= 1 {
		return false
	}
	if first, ok := cw.emitted[r.Ino]; ok {
		h.Typeflag, h.Linkname = tar.TypeLink, first
		return true
	}
	if lower, ok := cw.lowerLinks[r.Ino]; ok {
		h.Typeflag, h.Linkname = tar.TypeLink, lower
		return true
	}
	cw.emitted[r.Ino] = r.Path
	return false
}

// device completes h for a character or block device or a fifo.
func (cw *changeWriter) device(h *tar.Header, r Record) error {
	var st unix.Stat_t
	dfd, err := cw.root.OpenFD(r.Path, unix.O_PATH|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	err = unix.Fstat(dfd, &st)
	unix.Close(dfd)
	h.Typeflag = map[uint32]byte{unix.S_IFCHR: tar.TypeChar, unix.S_IFBLK: tar.TypeBlock, unix.S_IFIFO: tar.TypeFifo}[r.Mode&unix.S_IFMT]
	if h.Typeflag != tar.TypeFifo {
		h.Devmajor, h.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	}
	return err
}

// addXattrs records the extended attributes of the open file in h.
func addXattrs(h *tar.Header, fd int) error {
	x, err := listXattrs(fd)
	if err != nil || len(x) == 0 {
		return err
	}
	h.PAXRecords = map[string]string{}
	for k, v := range x {
		h.PAXRecords["SCHILY.xattr."+k] = v
	}
	return nil
}

// content writes size bytes of the open file fd as the entry's data.
func (cw *changeWriter) content(fd int, size int64) error {
	n, err := io.CopyBuffer(cw.tw, io.NewSectionReader(fdReader(fd), 0, size), cw.buf)
	if err == nil && n != size {
		err = fmt.Errorf("file shrank while being read (%d of %d bytes)", n, size)
	}
	return err
}

// fdReader reads an open file at offsets (pread), leaving its offset alone.
type fdReader int

func (fd fdReader) ReadAt(b []byte, off int64) (int, error) {
	for {
		n, err := unix.Pread(int(fd), b, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if n == 0 && len(b) > 0 {
			return 0, io.EOF
		}
		return n, nil
	}
}

func readlinkIn(root *rootfs.Root, p string) (string, error) {
	d, b := splitPath(p)
	fd, err := root.OpenFD(d, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	buf := make([]byte, 4096)
	n, err := unix.Readlinkat(fd, b, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// listXattrs reads the extended attributes of an open file that belong in a layer.
func listXattrs(fd int) (map[string]string, error) {
	sz, err := unix.Flistxattr(fd, nil)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		return nil, err
	}
	if sz == 0 {
		return nil, nil
	}
	names := make([]byte, sz)
	sz, err = unix.Flistxattr(fd, names)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, n := range strings.Split(strings.TrimRight(string(names[:sz]), "\x00"), "\x00") {
		if n == "" || !allowedXattr(n) || strings.HasPrefix(n, "security.selinux") || strings.HasPrefix(n, "system.") {
			continue
		}
		vs, err := unix.Fgetxattr(fd, n, nil)
		if err != nil {
			continue
		}
		v := make([]byte, vs)
		vs, err = unix.Fgetxattr(fd, n, v)
		if err != nil {
			continue
		}
		out[n] = string(v[:vs])
	}
	return out, nil
}

// A file with holes is written as a sparse entry in GNU tar's PAX 1.0 format, the one GNU tar
// writes by default with --sparse (and archive/tar, so umoci, containerd and podman, read):
// a regular file named DIR/GNUSparseFile.0/NAME with the records GNU.sparse.major=1,
// GNU.sparse.minor=0, GNU.sparse.name=DIR/NAME and GNU.sparse.realsize=SIZE, whose data is the
// map (the number of data fragments, then each one's offset and length, in decimal, one a line,
// padded to 512 bytes) followed by the data fragments. Holes are found with SEEK_DATA and
// SEEK_HOLE and kept at 512-byte granularity (GNU tar's); a file is written sparse only when
// its holes total at least minSparseHoles, and the map always ends at the file's size (a
// zero-length fragment at the end when the file ends in a hole, as GNU tar writes it).

// minSparseHoles is the least hole a file needs to be written sparse: one filesystem block
// (the granularity of SEEK_HOLE on ext4, xfs, btrfs and tmpfs); the sparse encoding costs
// about two tar blocks (its PAX records and the map) over a plain entry.
const minSparseHoles = 4096

// sparseFile is how a file with holes is written: its PAX records, its map encoded, its data
// fragments.
type sparseFile struct {
	records map[string]string
	encoded []byte
	frags   []sparseFrag
}

// sparseLayout finds the holes of the open regular file fd described by h; when there are
// enough, it makes h the header of a sparse entry (name and size) and returns how to write it
// (nil for a file written as it is).
func sparseLayout(fd int, h *tar.Header) (*sparseFile, error) {
	frags, err := dataFragments(fd, h.Size)
	if err != nil || frags == nil {
		return nil, err
	}
	sp := &sparseFile{encoded: encodePAX1Map(frags), frags: frags, records: map[string]string{
		paxSparseMajor: "1", paxSparseMinor: "0", paxSparseName: h.Name, paxSparseRealSize: strconv.FormatInt(h.Size, 10),
	}}
	var data int64
	for _, f := range frags {
		data += f.Length
	}
	dir, base := path.Split(h.Name)
	h.Name = path.Join(dir, "GNUSparseFile.0", base)
	h.Size = int64(len(sp.encoded)) + data
	return sp, nil
}

// dataFragments lists the data of the open file fd of size size, holes aligned inward to
// 512-byte blocks, ending at size; nil when its holes total less than minSparseHoles (or the
// filesystem does not tell). It moves the file offset.
func dataFragments(fd int, size int64) ([]sparseFrag, error) {
	if hole, err := unix.Seek(fd, 0, unix.SEEK_HOLE); err != nil || hole >= size {
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENXIO) {
			err = nil // SEEK_HOLE unsupported; or the file shrank to nothing
		}
		return nil, err // no hole before the end: the common case, one system call
	}
	var frags []sparseFrag
	for off := int64(0); off < size; {
		start, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // a hole up to the end
		}
		if err != nil {
			return nil, err
		}
		if start >= size {
			break
		}
		end, err := unix.Seek(fd, start, unix.SEEK_HOLE)
		if err != nil {
			return nil, err
		}
		end = min(end, size)
		start &^= blockSize - 1
		if end < size {
			end = min(alignBlock(end), size)
		}
		if n := len(frags); n > 0 && frags[n-1].Offset+frags[n-1].Length >= start {
			frags[n-1].Length = end - frags[n-1].Offset // joined by the alignment
		} else {
			frags = append(frags, sparseFrag{start, end - start})
		}
		off = end
	}
	var data int64
	for _, f := range frags {
		data += f.Length
	}
	if size-data < minSparseHoles {
		return nil, nil
	}
	if n := len(frags); n == 0 || frags[n-1].Offset+frags[n-1].Length < size {
		frags = append(frags, sparseFrag{size, 0})
	}
	return frags, nil
}

// sparseEntry writes the sparse entry h: its headers (sparseHeader), its map, the data
// fragments of the open file fd, the padding to a block.
func (cw *changeWriter) sparseEntry(h *tar.Header, fd int, sp *sparseFile) error {
	hdr, err := sparseHeader(h, sp.records)
	if err != nil {
		return err
	}
	if err := cw.tw.Flush(); err != nil { // the previous entry's padding
		return err
	}
	if _, err := cw.w.Write(append(hdr, sp.encoded...)); err != nil {
		return err
	}
	for _, fr := range sp.frags {
		n, err := io.CopyBuffer(cw.w, io.NewSectionReader(fdReader(fd), fr.Offset, fr.Length), cw.buf)
		if err == nil && n != fr.Length {
			err = fmt.Errorf("file shrank while being read (%d of %d bytes at %d)", n, fr.Length, fr.Offset)
		}
		if err != nil {
			return err
		}
	}
	_, err = cw.w.Write(make([]byte, alignBlock(h.Size)-h.Size))
	return err
}

// sparseHeader returns the header blocks of the sparse entry h with the PAX records recs:
// archive/tar's own encoding of h (its Writer drops GNU.sparse.* records), whose PAX header is
// given recs too and loses its path record (GNU.sparse.name holds the name, as GNU tar and the
// sparse writer archive/tar once had do it).
func sparseHeader(h *tar.Header, recs map[string]string) ([]byte, error) {
	const placeholder = "WHARF.placeholder" // makes archive/tar write a PAX header
	h2 := *h
	h2.PAXRecords = maps.Clone(h.PAXRecords)
	if h2.PAXRecords == nil {
		h2.PAXRecords = map[string]string{}
	}
	h2.PAXRecords[placeholder] = "1"
	var b bytes.Buffer
	if err := tar.NewWriter(&b).WriteHeader(&h2); err != nil {
		return nil, err
	}
	out := b.Bytes()
	if len(out) < 3*blockSize || out[156] != tar.TypeXHeader {
		return nil, errors.New("archive/tar wrote no PAX header")
	}
	n, err := parseNumeric(out[124:136])
	if err != nil || blockSize+alignBlock(n)+blockSize != int64(len(out)) {
		return nil, errors.New("archive/tar wrote an unexpected PAX header")
	}
	m := parsePAXRecords(out[blockSize : blockSize+n])
	delete(m, placeholder)
	delete(m, "path")
	maps.Copy(m, recs)
	data := formatPAXRecords(m)
	x := append([]byte(nil), out[:blockSize]...)
	copy(x[124:136], fmt.Sprintf("%011o\x00", len(data)))
	setChecksum(x)
	return slices.Concat(x, data, make([]byte, alignBlock(int64(len(data)))-int64(len(data))), out[len(out)-blockSize:]), nil
}
