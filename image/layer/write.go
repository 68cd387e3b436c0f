package layer

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
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
	tw := tar.NewWriter(w)
	emitted := map[uint64]string{}
	buf := make([]byte, 1<<20)
	epoch := time.Unix(0, 0)
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.kind != 0 {
			// whiteouts: empty regular files
			if err := tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeReg, Mode: 0644, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
				return err
			}
			continue
		}
		r := e.ch.Rec
		uid, err := unmapID(opts.UIDMap, r.UID, "uid")
		if err != nil {
			return fmt.Errorf("repack %s: %w", r.Path, err)
		}
		gid, err := unmapID(opts.GIDMap, r.GID, "gid")
		if err != nil {
			return fmt.Errorf("repack %s: %w", r.Path, err)
		}
		mt := time.Unix(0, r.Mtime)
		if opts.SourceDateEpoch != nil && mt.After(*opts.SourceDateEpoch) {
			mt = *opts.SourceDateEpoch
		}
		h := &tar.Header{Name: r.Path, Mode: int64(r.Mode & 07777), Uid: uid, Gid: gid, ModTime: mt, Format: tar.FormatPAX}
		var fd = -1
		switch r.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			h.Typeflag, h.Name = tar.TypeDir, r.Path+"/"
			fd, err = root.OpenFD(r.Path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
		case unix.S_IFREG:
			if r.Nlink > 1 {
				if first, ok := emitted[r.Ino]; ok {
					h.Typeflag, h.Linkname = tar.TypeLink, first
					break
				}
				if lower, ok := lowerLinks[r.Ino]; ok {
					h.Typeflag, h.Linkname = tar.TypeLink, lower
					break
				}
				emitted[r.Ino] = r.Path
			}
			h.Typeflag, h.Size = tar.TypeReg, r.Size
			fd, err = root.OpenFD(r.Path, unix.O_RDONLY|unix.O_NOFOLLOW, 0)
		case unix.S_IFLNK:
			h.Typeflag = tar.TypeSymlink
			h.Linkname, err = readlinkIn(root, r.Path)
		case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
			var st unix.Stat_t
			dfd, derr := root.OpenFD(r.Path, unix.O_PATH|unix.O_NOFOLLOW, 0)
			if derr != nil {
				err = derr
				break
			}
			err = unix.Fstat(dfd, &st)
			unix.Close(dfd)
			h.Typeflag = map[uint32]byte{unix.S_IFCHR: tar.TypeChar, unix.S_IFBLK: tar.TypeBlock, unix.S_IFIFO: tar.TypeFifo}[r.Mode&unix.S_IFMT]
			if h.Typeflag != tar.TypeFifo {
				h.Devmajor, h.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
			}
		default:
			continue // sockets and the like are not part of an image
		}
		if err != nil {
			return fmt.Errorf("repack %s: %w", r.Path, err)
		}
		if fd >= 0 {
			if x, err := listXattrs(fd); err != nil {
				unix.Close(fd)
				return fmt.Errorf("repack %s: %w", r.Path, err)
			} else if len(x) > 0 {
				h.PAXRecords = map[string]string{}
				for k, v := range x {
					h.PAXRecords["SCHILY.xattr."+k] = v
				}
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			if fd >= 0 {
				unix.Close(fd)
			}
			return fmt.Errorf("repack %s: %w", r.Path, err)
		}
		if h.Typeflag == tar.TypeReg && h.Size > 0 {
			f := os.NewFile(uintptr(fd), r.Path)
			n, err := io.CopyBuffer(tw, io.LimitReader(f, h.Size), buf)
			f.Close()
			fd = -1
			if err == nil && n != h.Size {
				err = fmt.Errorf("file shrank while being read (%d of %d bytes)", n, h.Size)
			}
			if err != nil {
				return fmt.Errorf("repack %s: %w", r.Path, err)
			}
		}
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	return tw.Close()
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
