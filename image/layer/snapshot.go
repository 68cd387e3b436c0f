package layer

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"

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
// siblings in byte order, never following a symlink.
func Walk(root *rootfs.Root, fn func(Record) error) error {
	fd, err := root.OpenFD(".", unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if err := fn(recordOf(".", &st)); err != nil {
		return err
	}
	return walkDir(fd, "", fn)
}

func walkDir(fd int, prefix string, fn func(Record) error) error {
	names, err := readNames(fd)
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, n := range names {
		p := prefix + n
		var st unix.Stat_t
		if err := unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return fmt.Errorf("stat %s: %w", p, err)
		}
		if err := fn(recordOf(p, &st)); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			cfd, err := unix.Openat(fd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("open %s: %w", p, err)
			}
			err = walkDir(cfd, p+"/", fn)
			unix.Close(cfd)
			if err != nil {
				return err
			}
		}
	}
	return nil
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
