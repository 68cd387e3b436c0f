package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"

	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/internal/rootfs"
)

// Each kind of entry created in its parent directory pfd (layer.md "File Types").

// create runs mk; if the name exists it is removed (unless both are directories: then kept)
// and mk runs again.
func (a *applier) create(pfd int, base string, dir bool, mk func() error) error {
	err := mk()
	if err == nil || !errors.Is(err, unix.EEXIST) {
		if err != nil {
			return fmt.Errorf("create: %w", err)
		}
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("stat existing: %w", err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if dir {
			return nil
		}
		if err := removeAllAt(pfd, base); err != nil {
			return err
		}
	} else if err := unix.Unlinkat(pfd, base, 0); err != nil {
		return fmt.Errorf("remove existing: %w", err)
	}
	if err := mk(); err != nil {
		return fmt.Errorf("create: %w", err)
	}
	return nil
}

// dir creates (or keeps) the directory p; its attributes wait until its children are in place.
func (a *applier) dir(pfd int, p, base string, hdr *tar.Header) error {
	if err := a.create(pfd, base, true, func() error { return unix.Mkdirat(pfd, base, uint32(hdr.Mode)&0777|0700) }); err != nil {
		return err
	}
	if err := a.deferDir(p, hdr); err != nil {
		return err
	}
	a.pushCreated(pfd, p, base) // its children most likely come next
	return nil
}

// symlink creates a symbolic link with the entry's owner and times (never its target's).
func (a *applier) symlink(pfd int, base string, hdr *tar.Header, uid, gid int) error {
	if err := a.create(pfd, base, false, func() error { return unix.Symlinkat(hdr.Linkname, pfd, base) }); err != nil {
		return err
	}
	if uid != a.euid || gid != a.egid || a.psetgid {
		if err := unix.Fchownat(pfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	return a.times(pfd, base, hdr)
}

// device creates a character or block device or a fifo.
func (a *applier) device(pfd int, base string, hdr *tar.Header, uid, gid int) error {
	mode := uint32(hdr.Mode) & 07777
	switch hdr.Typeflag {
	case tar.TypeChar:
		mode |= unix.S_IFCHR
	case tar.TypeBlock:
		mode |= unix.S_IFBLK
	default:
		mode |= unix.S_IFIFO
	}
	if hdr.Devmajor < 0 || hdr.Devminor < 0 || hdr.Devmajor > 0xfff || hdr.Devminor > 0xfffff {
		return invalid("device number %d:%d out of range", hdr.Devmajor, hdr.Devminor)
	}
	dev := int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))
	if err := a.create(pfd, base, false, func() error { return unix.Mknodat(pfd, base, mode, dev) }); err != nil {
		return err
	}
	if err := unix.Fchownat(pfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if err := unix.Fchmodat(pfd, base, mode&07777, 0); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	return a.times(pfd, base, hdr)
}

// hardlink links base to the entry's target, resolved inside the root without following a
// symlink on the way.
func (a *applier) hardlink(pfd int, base, p string, hdr *tar.Header) error {
	target := rootfs.Clean(hdr.Linkname)
	if target == "." {
		return fmt.Errorf("%w: hardlink to the root", errdef.ErrUnsafePath)
	}
	if target == p {
		return invalid("hardlink to itself")
	}
	tdir, tbase := splitPath(target)
	tfd, err := a.root.OpenFDNoSymlinks(tdir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EXDEV) {
			return fmt.Errorf("hardlink target %s: %w: through a symlink", hdr.Linkname, errdef.ErrUnsafePath)
		}
		return fmt.Errorf("hardlink target %s: %w", hdr.Linkname, err)
	}
	defer unix.Close(tfd)
	var st unix.Stat_t
	if err := unix.Fstatat(tfd, tbase, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("hardlink target %s: %w", hdr.Linkname, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return invalid("hardlink target %s is a directory", hdr.Linkname)
	}
	var cur unix.Stat_t
	if unix.Fstatat(pfd, base, &cur, unix.AT_SYMLINK_NOFOLLOW) == nil && cur.Ino == st.Ino && cur.Dev == st.Dev {
		return nil // already this file
	}
	return a.create(pfd, base, false, func() error { return unix.Linkat(tfd, tbase, pfd, base, 0) })
}

// regular creates a regular file with the entry's content (holes kept for a sparse entry) and
// attributes.
func (a *applier) regular(pfd int, base string, hdr *tar.Header, r io.Reader, uid, gid int) error {
	var fd int
	err := a.create(pfd, base, false, func() error {
		var err error
		fd, err = unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(hdr.Mode)&0777)
		return err
	})
	if err != nil {
		return err
	}
	if err := a.content(fd, hdr, r); err != nil {
		unix.Close(fd)
		return err
	}
	if err := a.fileAttrs(fd, hdr, uid, gid); err != nil {
		unix.Close(fd)
		return err
	}
	if err := unix.Close(fd); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

// content writes the entry's content to fd: a sparse entry's data fragments at their offsets,
// holes left unwritten; any other entry's bytes as they come.
func (a *applier) content(fd int, hdr *tar.Header, r io.Reader) error {
	if m := a.sparse; m != nil {
		a.sparse = nil
		return a.sparseContent(fd, m)
	}
	if hdr.Size > 0 {
		return a.copy(fd, r)
	}
	return nil
}

// copy writes what r holds to fd, counting it against the limits.
func (a *applier) copy(fd int, r io.Reader) error {
	for {
		n, err := r.Read(a.buf)
		if n > 0 {
			if err := a.count(int64(n)); err != nil {
				return err
			}
			if err := writeAll(fd, a.buf[:n]); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("read content: %w: archive is truncated", errdef.ErrInvalidArgument)
			}
			return fmt.Errorf("read content: %w", err)
		}
	}
}

// count adds n bytes written to files and checks the limits.
func (a *applier) count(n int64) error {
	a.written += n
	return a.pipe.check(a.written)
}

// writeAll writes b to fd at its offset.
func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		m, err := unix.Write(fd, b)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return fmt.Errorf("write: %w", err)
		}
		b = b[m:]
	}
	return nil
}
