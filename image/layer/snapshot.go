package layer

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/internal/rootfs"
)

// Record is the state of one path of a root at a point in time: enough to tell, without
// reading the file, whether it changed since (any change to content, mode, owner, xattrs or
// links moves ctime; a replaced file has a new inode).
type Record struct {
	Path     string // root-relative, "." for the root
	Mode     uint32 // st_mode: type and permission bits
	UID, GID uint32
	Size     int64
	Mtime    int64 // ns
	Ctime    int64 // ns
	Ino      uint64
	Nlink    uint32
}

func (r Record) IsDir() bool { return r.Mode&unix.S_IFMT == unix.S_IFDIR }

// same reports whether o describes r unchanged.
func (r Record) same(o Record) bool {
	return r.Mode == o.Mode && r.UID == o.UID && r.GID == o.GID && r.Size == o.Size &&
		r.Mtime == o.Mtime && r.Ctime == o.Ctime && r.Ino == o.Ino
}

const snapshotMagic = "wharf-snapshot-1\n"

func recordOf(p string, st *unix.Stat_t) Record {
	return Record{Path: p, Mode: st.Mode, UID: st.Uid, GID: st.Gid, Size: st.Size,
		Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(), Ino: st.Ino, Nlink: uint32(st.Nlink)}
}

// Walk calls fn for every path of root, the root itself first, parents before children,
// siblings in byte order, never following a symlink. Directories are listed and their entries
// stat-ed by several goroutines (the order of the calls to fn does not depend on it).
func Walk(root *rootfs.Root, fn func(Record) error) error {
	fd, err := root.OpenFD(".", unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	var st unix.Stat_t
	err = unix.Fstat(fd, &st)
	unix.Close(fd)
	if err != nil {
		return err
	}
	kids, err := collect(root)
	if err != nil {
		return err
	}
	if err := fn(recordOf(".", &st)); err != nil {
		return err
	}
	var emit func(dir string) error
	emit = func(dir string) error {
		for _, r := range kids[dir] {
			if err := fn(r); err != nil {
				return err
			}
			if r.IsDir() {
				if err := emit(r.Path); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return emit(".")
}

// collect lists every directory of root in parallel: directory path → its entries, sorted.
func collect(root *rootfs.Root) (map[string][]Record, error) {
	c := &collector{root: root, queue: []string{"."}, out: map[string][]Record{}}
	c.cond = sync.NewCond(&c.mu)
	workers := runtime.GOMAXPROCS(0)
	if workers < 2 {
		workers = 2
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.work()
		}()
	}
	wg.Wait()
	if c.err != nil {
		return nil, c.err
	}
	return c.out, nil
}

// collector is the shared state of collect's workers: directories still to list, how many
// are being listed, the first error, the listings.
type collector struct {
	root  *rootfs.Root
	mu    sync.Mutex
	cond  *sync.Cond
	queue []string
	busy  int
	err   error
	out   map[string][]Record
}

// work lists directories until none is left (or one failed).
func (c *collector) work() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		dir, ok := c.next()
		if !ok {
			return
		}
		c.mu.Unlock()
		recs, subdirs, err := listDir(c.root, dir)
		c.mu.Lock()
		c.done(dir, recs, subdirs, err)
	}
}

// next takes a directory off the queue, waiting while others are listed (whose
// subdirectories may come); ok is false once all is listed or a listing failed. Held: mu.
func (c *collector) next() (dir string, ok bool) {
	for len(c.queue) == 0 && c.busy > 0 && c.err == nil {
		c.cond.Wait()
	}
	if len(c.queue) == 0 || c.err != nil {
		c.cond.Broadcast()
		return "", false
	}
	dir = c.queue[len(c.queue)-1]
	c.queue = c.queue[:len(c.queue)-1]
	c.busy++
	return dir, true
}

// done records the listing of dir and queues its subdirectories. Held: mu.
func (c *collector) done(dir string, recs []Record, subdirs []string, err error) {
	c.busy--
	if err != nil && c.err == nil {
		c.err = fmt.Errorf("walk %s: %w", dir, err)
	}
	c.out[dir] = recs
	c.queue = append(c.queue, subdirs...)
	c.cond.Broadcast()
}

// listDir stats the entries of dir (sorted by name, never following a symlink) and returns
// them with the paths of those that are directories.
func listDir(root *rootfs.Root, dir string) ([]Record, []string, error) {
	fd, err := root.OpenFDNoSymlinks(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, nil, err
	}
	defer unix.Close(fd)
	names, err := readNames(fd)
	if err != nil {
		return nil, nil, err
	}
	sort.Strings(names)
	prefix := ""
	if dir != "." {
		prefix = dir + "/"
	}
	recs := make([]Record, 0, len(names))
	var subdirs []string
	for _, n := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return nil, nil, fmt.Errorf("stat %s%s: %w", prefix, n, err)
		}
		r := recordOf(prefix+n, &st)
		recs = append(recs, r)
		if r.IsDir() {
			subdirs = append(subdirs, r.Path)
		}
	}
	return recs, subdirs, nil
}

// The snapshot format (BUNDLE/wharf.snapshot): the line "wharf-snapshot-1\n", then one record
// per path in Walk order (the root first, parents before children). A record is binary, never
// a line: the path's length as a uvarint and its bytes as they are (any byte but NUL: a name
// holding a newline or any other control byte is read back exactly, and cannot end a record or
// start another), then mode, uid, gid (uvarints), size, mtime, ctime (varints), inode and link
// count (uvarints). ReadSnapshot refuses a record it cannot parse or that WriteSnapshot could
// not have written.

// maxSnapshotPath bounds a path in a snapshot (a root-relative path; PATH_MAX is 4096, but
// directories reached through symlinks may nest deeper).
const maxSnapshotPath = 1 << 16

// appendRecord appends the encoding of r to b.
func appendRecord(b []byte, r Record) []byte {
	b = binary.AppendUvarint(b, uint64(len(r.Path)))
	b = append(b, r.Path...)
	b = binary.AppendUvarint(b, uint64(r.Mode))
	b = binary.AppendUvarint(b, uint64(r.UID))
	b = binary.AppendUvarint(b, uint64(r.GID))
	b = binary.AppendVarint(b, r.Size)
	b = binary.AppendVarint(b, r.Mtime)
	b = binary.AppendVarint(b, r.Ctime)
	b = binary.AppendUvarint(b, r.Ino)
	return binary.AppendUvarint(b, uint64(r.Nlink))
}

// WriteSnapshot records every path of root (see Record) to w in a compact binary form (see
// above). A path longer than 64 KiB is an error.
func WriteSnapshot(root *rootfs.Root, w io.Writer) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	bw.WriteString(snapshotMagic)
	var buf []byte
	err := Walk(root, func(r Record) error {
		if len(r.Path) > maxSnapshotPath {
			return fmt.Errorf("%w: path of %d bytes (limit %d) below %.100q", errdef.ErrTooLarge, len(r.Path), maxSnapshotPath, r.Path)
		}
		buf = appendRecord(buf[:0], r)
		_, err := bw.Write(buf)
		return err
	})
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", root.Path(), err)
	}
	return bw.Flush()
}

// ReadSnapshot reads what WriteSnapshot wrote. It fails, wrapping errdef.ErrInvalidArgument and
// naming the record, on anything else: a truncated record or trailing bytes, a field out of
// range, a path that is not clean and root-relative or holds a NUL, the root not first, a
// path listed twice or before its parent directory.
func ReadSnapshot(r io.Reader) ([]Record, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != snapshotMagic {
		return nil, fmt.Errorf("read snapshot: %w: not a wharf snapshot", errdef.ErrInvalidArgument)
	}
	var out []Record
	dirs := map[string]bool{} // every path so far → whether it is a directory
	for {
		rec, err := readRecord(br)
		if err == io.EOF {
			if len(out) == 0 {
				return nil, fmt.Errorf("read snapshot: %w: no record of the root", errdef.ErrInvalidArgument)
			}
			return out, nil
		}
		if err == nil {
			err = checkRecord(rec, len(out) == 0, dirs)
		}
		if err != nil {
			if rec.Path != "" {
				return nil, fmt.Errorf("read snapshot: %w: record %d (%.200q): %v", errdef.ErrInvalidArgument, len(out)+1, rec.Path, err)
			}
			return nil, fmt.Errorf("read snapshot: %w: record %d: %v", errdef.ErrInvalidArgument, len(out)+1, err)
		}
		dirs[rec.Path] = rec.IsDir()
		out = append(out, rec)
	}
}

// readRecord decodes one record; io.EOF only when none starts.
func readRecord(br *bufio.Reader) (Record, error) {
	n, err := binary.ReadUvarint(br)
	if err != nil {
		if err == io.EOF {
			return Record{}, io.EOF
		}
		return Record{}, fmt.Errorf("path length: %w", err)
	}
	if n > maxSnapshotPath {
		return Record{}, fmt.Errorf("path of %d bytes (limit %d)", n, maxSnapshotPath)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(br, p); err != nil {
		return Record{}, fmt.Errorf("path: %w", noEOF(err))
	}
	d := fieldReader{br: br}
	r := Record{Path: string(p), Mode: d.u32("mode"), UID: d.u32("uid"), GID: d.u32("gid"),
		Size: d.varint("size"), Mtime: d.varint("mtime"), Ctime: d.varint("ctime"),
		Ino: d.uvarint("inode"), Nlink: d.u32("link count")}
	return r, d.err
}

// fieldReader decodes the numbers of a record, keeping the first error (later reads are no-ops).
type fieldReader struct {
	br  *bufio.Reader
	err error
}

func (d *fieldReader) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, err := binary.ReadUvarint(d.br)
	if err != nil {
		d.err = fmt.Errorf("%s: %w", what, noEOF(err))
	}
	return v
}

func (d *fieldReader) u32(what string) uint32 {
	v := d.uvarint(what)
	if d.err == nil && v > 1<<32-1 {
		d.err = fmt.Errorf("%s: %d out of range", what, v)
	}
	return uint32(v)
}

func (d *fieldReader) varint(what string) int64 {
	if d.err != nil {
		return 0
	}
	v, err := binary.ReadVarint(d.br)
	if err != nil {
		d.err = fmt.Errorf("%s: %w", what, noEOF(err))
	}
	return v
}

// noEOF turns io.EOF inside a record into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// checkRecord checks a decoded record against what Walk emits, given the paths before it.
func checkRecord(r Record, first bool, dirs map[string]bool) error {
	switch r.Mode & unix.S_IFMT {
	case unix.S_IFREG, unix.S_IFDIR, unix.S_IFLNK, unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO, unix.S_IFSOCK:
	default:
		return fmt.Errorf("mode %o is no file type", r.Mode)
	}
	if r.Size < 0 {
		return fmt.Errorf("negative size %d", r.Size)
	}
	if first {
		if r.Path != "." || !r.IsDir() {
			return errors.New("the first record is not the root directory")
		}
		return nil
	}
	if r.Path == "." || strings.IndexByte(r.Path, 0) >= 0 || rootfs.Clean(r.Path) != r.Path {
		return errors.New("not a clean root-relative path")
	}
	if _, dup := dirs[r.Path]; dup {
		return errors.New("listed twice")
	}
	if d, _ := splitPath(r.Path); !dirs[d] {
		return fmt.Errorf("parent %.200q is not a directory listed before it", d)
	}
	return nil
}
