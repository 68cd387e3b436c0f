package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// MkdirAllFollow is MkdirAllXDev for mount points: a symlink met on the way, dangling ones
// included, is followed inside the root and what it names is created (as runc does for a mount
// destination). Resolution is one component at a time; every lookup is openat2 with
// RESOLVE_IN_ROOT, and absolute or ".."-climbing link targets clamp at the root, so nothing
// outside the root is created or opened. It returns an O_PATH descriptor of the directory.
func (r *Root) MkdirAllFollow(name string, mode uint32) (*os.File, error) {
	const res = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS
	rest := strings.Split(Clean(name), "/")
	done := "." // resolved, symlink-free, root-relative
	links := 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			done = Clean(path.Dir(done))
			continue
		}
		next := Clean(path.Join(done, c))
		fd, err := r.openat2(next, unix.O_PATH|unix.O_NOFOLLOW, 0, res)
		if errors.Is(err, unix.ENOENT) {
			parent, perr := r.openat2(done, unix.O_PATH|unix.O_DIRECTORY, 0, res)
			if perr != nil {
				return nil, perr
			}
			merr := unix.Mkdirat(parent, c, mode)
			if merr != nil && errors.Is(merr, unix.EBADF) {
				// mkdirat needs a real directory descriptor, not O_PATH, on older kernels
				merr = unix.Mkdir(fmt.Sprintf("/proc/self/fd/%d/%s", parent, c), mode)
			}
			unix.Close(parent)
			if merr != nil && !errors.Is(merr, unix.EEXIST) {
				return nil, &os.PathError{Op: "mkdir", Path: path.Join(r.path, next), Err: merr}
			}
			rest = append([]string{c}, rest...) // look again: it may have raced into a symlink
			if merr == nil {
				done = next
				rest = rest[1:]
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return nil, &os.PathError{Op: "stat", Path: path.Join(r.path, next), Err: err}
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			buf := make([]byte, unix.PathMax)
			n, err := unix.Readlinkat(fd, "", buf)
			unix.Close(fd)
			if err != nil {
				return nil, &os.PathError{Op: "readlink", Path: path.Join(r.path, next), Err: err}
			}
			if links++; links > 40 {
				return nil, &os.PathError{Op: "mkdir", Path: path.Join(r.path, Clean(name)), Err: unix.ELOOP}
			}
			target := string(buf[:n])
			if strings.HasPrefix(target, "/") {
				done = "."
			}
			rest = append(strings.Split(target, "/"), rest...)
		case unix.S_IFDIR:
			unix.Close(fd)
			done = next
		default:
			unix.Close(fd)
			return nil, &os.PathError{Op: "mkdir", Path: path.Join(r.path, next), Err: unix.ENOTDIR}
		}
	}
	fd, err := r.openat2(done, unix.O_PATH|unix.O_DIRECTORY, 0, res)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), path.Join(r.path, done)), nil
}
