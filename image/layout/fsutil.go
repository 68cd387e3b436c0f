package layout

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/errdef"
)

// beneath is how every path inside a layout is resolved: no "..", no absolute path, no symlink
// in any component (the last included), no magic links, no mount crossing.
const beneath = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

// openDir opens the layout root itself. The root may be reached through a symlink (the user
// named it); what is inside it may not.
func openDir(dir string) (int, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return fd, nil
}

// openIn opens name (relative, slash-separated) inside the directory dirfd without following
// any symlink. A symlink gives an error wrapping errdef.ErrUnsafePath.
func openIn(dirfd int, root, name string, flags int, mode uint32) (*os.File, error) {
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: beneath}
	if flags&unix.O_CREAT != 0 {
		how.Mode = uint64(mode)
	}
	for {
		fd, err := unix.Openat2(dirfd, name, &how)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		if err != nil {
			p := filepath.Join(root, name)
			if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EXDEV) {
				return nil, fmt.Errorf("open %s: %w: a symlink (or a path leaving the layout) is not allowed here", p, errdef.ErrUnsafePath)
			}
			if errors.Is(err, unix.ENOENT) {
				return nil, fmt.Errorf("open %s: %w", p, errors.Join(errdef.ErrNotFound, os.ErrNotExist))
			}
			return nil, &os.PathError{Op: "open", Path: p, Err: err}
		}
		return os.NewFile(uintptr(fd), filepath.Join(root, name)), nil
	}
}

// readCapped reads the regular file name inside dirfd, refusing it (before reading) when it is
// larger than limit, not a regular file, or a symlink.
func readCapped(dirfd int, root, name string, limit int64) ([]byte, error) {
	f, err := openIn(dirfd, root, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("read %s: %w: not a regular file (%s)", f.Name(), errdef.ErrUnsafePath, st.Mode().Type())
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("read %s: %w: %d bytes is over the %d byte limit", f.Name(), errdef.ErrTooLarge, st.Size(), limit)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("read %s: %w: over the %d byte limit", f.Name(), errdef.ErrTooLarge, limit)
	}
	return b, nil
}

// statIn lstats name inside dirfd without following symlinks anywhere.
func statIn(dirfd int, root, name string) (os.FileInfo, error) {
	f, err := openIn(dirfd, root, name, unix.O_PATH|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Stat()
}

const noFollow = unix.O_NOFOLLOW

func closeFD(fd int) error { return unix.Close(fd) }

func descOf(i content.Info) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: "application/octet-stream", Digest: i.Digest, Size: i.Size}
}
