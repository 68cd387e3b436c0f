package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// MkdirAllFollow creates name and its missing parents inside the root, as a chroot-ed
// `mkdir -p` would, and returns an O_PATH descriptor of the directory. It may cross mount points
// inside the root (a runtime's mount destinations). A symlink met on the way, dangling ones
// included, is followed inside the root and what it names is created (as runc does for a mount
// destination). Resolution is one component at a time; every lookup is openat2 with
// RESOLVE_IN_ROOT, and absolute or ".."-climbing link targets clamp at the root, so nothing
// outside the root is created or opened. More than 40 symlinks give ELOOP.
func (r *Root) MkdirAllFollow(name string, mode uint32) (*os.File, error) {
	fd, done, err := r.mkdirAllFollow(name, mode, unix.RESOLVE_IN_ROOT|unix.RESOLVE_NO_MAGICLINKS)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), path.Join(r.path, done)), nil
}

// MkdirAllFD is MkdirAllFollow returning a raw descriptor, without crossing mount points (for
// hot paths that issue *at system calls, such as applying a layer). The caller closes it with
// unix.Close.
func (r *Root) MkdirAllFD(name string, mode uint32) (int, error) {
	fd, _, err := r.mkdirAllFollow(name, mode, resolve)
	return fd, err
}

// mkdirAllFollow is the one implementation behind MkdirAllFollow and MkdirAllFD: it returns the
// directory's descriptor and its resolved root-relative path.
func (r *Root) mkdirAllFollow(name string, mode uint32, res uint64) (int, string, error) {
	// Fast path: the directory is there (symlinks on the way resolve inside the root).
	if fd, err := r.openat2(name, unix.O_PATH|unix.O_DIRECTORY, 0, res); err == nil {
		return fd, Clean(name), nil
	}
	rest := strings.Split(Clean(name), "/")
	done := "." // resolved, symlink-free, root-relative
	links, races := 0, 0
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
				return -1, "", perr
			}
			merr := unix.Mkdirat(parent, c, mode)
			if merr != nil && errors.Is(merr, unix.EBADF) {
				// mkdirat needs a real directory descriptor, not O_PATH, on older kernels
				merr = unix.Mkdir(fmt.Sprintf("/proc/self/fd/%d/%s", parent, c), mode)
			}
			unix.Close(parent)
			if merr != nil && !errors.Is(merr, unix.EEXIST) {
				return -1, "", &os.PathError{Op: "mkdir", Path: path.Join(r.path, next), Err: merr}
			}
			// Look again: it may have raced into a symlink. A name that is never found and
			// always exists (a magic link in /proc/PID/fd naming the parent itself) must not
			// spin: give up after as many retries as symlinks are followed.
			if merr != nil {
				if races++; races > 40 {
					return -1, "", &os.PathError{Op: "mkdir", Path: path.Join(r.path, next), Err: merr}
				}
			}
			rest = append([]string{c}, rest...)
			if merr == nil {
				done = next
				rest = rest[1:]
			}
			continue
		}
		if err != nil {
			return -1, "", err
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return -1, "", &os.PathError{Op: "stat", Path: path.Join(r.path, next), Err: err}
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			buf := make([]byte, unix.PathMax)
			n, err := unix.Readlinkat(fd, "", buf)
			unix.Close(fd)
			if err != nil {
				return -1, "", &os.PathError{Op: "readlink", Path: path.Join(r.path, next), Err: err}
			}
			if links++; links > 40 {
				return -1, "", &os.PathError{Op: "mkdir", Path: path.Join(r.path, Clean(name)), Err: unix.ELOOP}
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
			return -1, "", &os.PathError{Op: "mkdir", Path: path.Join(r.path, next), Err: unix.ENOTDIR}
		}
	}
	fd, err := r.openat2(done, unix.O_PATH|unix.O_DIRECTORY, 0, res)
	if err != nil {
		return -1, "", err
	}
	return fd, done, nil
}
