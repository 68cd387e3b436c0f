package layer

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
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
	var (
		mu       sync.Mutex
		cond     = sync.NewCond(&mu)
		queue    = []string{"."}
		busy     int
		firstErr error
		out      = map[string][]Record{}
	)
	list := func(dir string) ([]Record, []string, error) {
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
	workers := runtime.GOMAXPROCS(0)
	if workers < 2 {
		workers = 2
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			for {
				for len(queue) == 0 && busy > 0 && firstErr == nil {
					cond.Wait()
				}
				if len(queue) == 0 || firstErr != nil {
					cond.Broadcast()
					return
				}
				dir := queue[len(queue)-1]
				queue = queue[:len(queue)-1]
				busy++
				mu.Unlock()
				recs, subdirs, err := list(dir)
				mu.Lock()
				busy--
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("walk %s: %w", dir, err)
				}
				out[dir] = recs
				queue = append(queue, subdirs...)
				cond.Broadcast()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

// WriteSnapshot records every path of root (see Record) to w in a compact binary form.
func WriteSnapshot(root *rootfs.Root, w io.Writer) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	bw.WriteString(snapshotMagic)
	var buf [binary.MaxVarintLen64 * 10]byte
	err := Walk(root, func(r Record) error {
		b := buf[:0]
		b = binary.AppendUvarint(b, uint64(len(r.Path)))
		bw.Write(b)
		bw.WriteString(r.Path)
		b = buf[:0]
		b = binary.AppendUvarint(b, uint64(r.Mode))
		b = binary.AppendUvarint(b, uint64(r.UID))
		b = binary.AppendUvarint(b, uint64(r.GID))
		b = binary.AppendVarint(b, r.Size)
		b = binary.AppendVarint(b, r.Mtime)
		b = binary.AppendVarint(b, r.Ctime)
		b = binary.AppendUvarint(b, r.Ino)
		b = binary.AppendUvarint(b, uint64(r.Nlink))
		_, err := bw.Write(b)
		return err
	})
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", root.Path(), err)
	}
	return bw.Flush()
}

// ReadSnapshot reads what WriteSnapshot wrote.
func ReadSnapshot(r io.Reader) ([]Record, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != snapshotMagic {
		return nil, fmt.Errorf("read snapshot: %w: not a wharf snapshot", errdef.ErrInvalidArgument)
	}
	var out []Record
	bad := func(err error) ([]Record, error) {
		return nil, fmt.Errorf("read snapshot: %w: record %d: %v", errdef.ErrInvalidArgument, len(out)+1, err)
	}
	for {
		n, err := binary.ReadUvarint(br)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return bad(err)
		}
		if n > 1<<16 {
			return bad(errors.New("path too long"))
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(br, p); err != nil {
			return bad(err)
		}
		var u [8]uint64
		for i := range u {
			switch i {
			case 3, 4, 5:
				v, err := binary.ReadVarint(br)
				if err != nil {
					return bad(err)
				}
				u[i] = uint64(v)
			default:
				v, err := binary.ReadUvarint(br)
				if err != nil {
					return bad(err)
				}
				u[i] = v
			}
		}
		out = append(out, Record{Path: string(p), Mode: uint32(u[0]), UID: uint32(u[1]), GID: uint32(u[2]),
			Size: int64(u[3]), Mtime: int64(u[4]), Ctime: int64(u[5]), Ino: u[6], Nlink: uint32(u[7])})
	}
}
