// Package rootfs resolves paths inside a directory the way a container sees it: absolute and
// relative symlinks resolve inside the root and ".." clamps at the root (openat2 with
// RESOLVE_IN_ROOT, Linux ≥ 5.6). Nothing is ever created, opened or probed outside the root.
//
// It is shared by image/layer (applying layers), image/bundle (reading /etc/passwd of an image)
// and runtime (mount destinations), so it imports nothing of wharf but errdef.
package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/errdef"
)

// Root is an open directory that confines path resolution. It is safe for concurrent use.
type Root struct {
	fd   int
	path string
}

// Open opens dir as a root. dir itself must be a directory; if it is a symlink, it is refused.
func Open(dir string) (*Root, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return nil, fmt.Errorf("open root %s: %w: not a directory (or a symlink)", dir, errdef.ErrUnsafePath)
		}
		return nil, &os.PathError{Op: "open root", Path: dir, Err: err}
	}
	return &Root{fd: fd, path: dir}, nil
}

// Close releases the root's descriptor.
func (r *Root) Close() error { return unix.Close(r.fd) }

// Path is the host path the root was opened with (for messages only: never re-resolve it).
func (r *Root) Path() string { return r.path }

// FD is the root's O_PATH descriptor.
func (r *Root) FD() int { return r.fd }

// Clean turns name into a root-relative path: "/a/../b" → "b", "/" → ".".
func Clean(name string) string {
	c := path.Clean("/" + name)
	if c == "/" {
		return "."
	}
	return strings.TrimPrefix(c, "/")
}

const resolve = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

// OpenFile opens name inside the root. Symlinks in every component, the last included, resolve
// inside the root unless flags has O_NOFOLLOW (then a final symlink gives ELOOP). Mount points
// are not crossed.
func (r *Root) OpenFile(name string, flags int, mode uint32) (*os.File, error) {
	fd, err := r.openat2(name, flags, mode, resolve)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), path.Join(r.path, Clean(name))), nil
}

// OpenFileXDev is OpenFile that may cross mount points inside the root (needed by a runtime
// whose rootfs holds bind mounts).
func (r *Root) OpenFileXDev(name string, flags int, mode uint32) (*os.File, error) {
	fd, err := r.openat2(name, flags, mode, unix.RESOLVE_IN_ROOT|unix.RESOLVE_NO_MAGICLINKS)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), path.Join(r.path, Clean(name))), nil
}

func (r *Root) openat2(name string, flags int, mode uint32, res uint64) (int, error) {
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Mode: uint64(mode), Resolve: res}
	if flags&unix.O_CREAT == 0 && flags&unix.O_TMPFILE != unix.O_TMPFILE {
		how.Mode = 0
	}
	for {
		fd, err := unix.Openat2(r.fd, Clean(name), &how)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "openat2", Path: path.Join(r.path, Clean(name)), Err: err}
		}
		return fd, nil
	}
}
