package rootfs

import (
	"errors"
	"io"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// OpenFD is OpenFile returning a raw descriptor (for hot paths that issue *at system calls and
// would pay for an *os.File per entry). The caller closes it with unix.Close.
func (r *Root) OpenFD(name string, flags int, mode uint32) (int, error) {
	return r.openat2(name, flags, mode, resolve)
}

// OpenFDNoSymlinks opens name inside the root refusing any symlink on the way, the last
// component included (ELOOP): the resolution hardlink targets need, since a hardlink may never
// be made through a symlink.
func (r *Root) OpenFDNoSymlinks(name string, flags int, mode uint32) (int, error) {
	return r.openat2(name, flags, mode, resolve|unix.RESOLVE_NO_SYMLINKS)
}

// MkdirAllFD creates name and its missing parents inside the root (each with mode, before
// umask) and returns a raw O_PATH descriptor of the directory. Unlike MkdirAll, a dangling
// symlink on the way is followed inside the root and the directories it names are created
// there (as a chroot-ed mkdir -p would); more than 40 symlinks give ELOOP.
func (r *Root) MkdirAllFD(name string, mode uint32) (int, error) {
	p := Clean(name)
	const dirFlags = unix.O_PATH | unix.O_DIRECTORY
restart:
	for hops := 0; hops <= 40; hops++ {
		if fd, err := r.openat2(p, dirFlags, 0, resolve); err == nil {
			return fd, nil
		} else if !errors.Is(err, unix.ENOENT) {
			return -1, err
		}
		cur, err := unix.Dup(r.fd)
		if err != nil {
			return -1, err
		}
		done := ""
		comps := strings.Split(p, "/")
		for i, c := range comps {
			next := path.Join(done, c)
			fd, err := r.openat2(next, dirFlags, 0, resolve)
			if err != nil && errors.Is(err, unix.ENOENT) {
				if link, lerr := readlinkat(cur, c); lerr == nil {
					// a dangling symlink: continue from what it names, inside the root
					unix.Close(cur)
					rest := strings.Join(comps[i+1:], "/")
					if path.IsAbs(link) {
						p = Clean(link + "/" + rest)
					} else {
						p = Clean(done + "/" + link + "/" + rest)
					}
					continue restart
				}
				if merr := unix.Mkdirat(cur, c, mode); merr != nil && !errors.Is(merr, unix.EEXIST) {
					unix.Close(cur)
					return -1, &os.PathError{Op: "mkdir", Path: path.Join(r.path, next), Err: merr}
				}
				fd, err = r.openat2(next, dirFlags, 0, resolve)
			}
			unix.Close(cur)
			if err != nil {
				return -1, err
			}
			cur, done = fd, next
		}
		return cur, nil
	}
	return -1, &os.PathError{Op: "mkdir", Path: path.Join(r.path, Clean(name)), Err: unix.ELOOP}
}

func readlinkat(dirfd int, name string) (string, error) {
	buf := make([]byte, 4096)
	n, err := unix.Readlinkat(dirfd, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// ReadFile reads at most limit bytes of the regular file name inside the root, following
// symlinks only inside the root. A file longer than limit is an error (EFBIG).
func (r *Root) ReadFile(name string, limit int64) ([]byte, error) {
	f, err := r.OpenFile(name, unix.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, &os.PathError{Op: "read", Path: f.Name(), Err: errors.New("not a regular file")}
	}
	if st.Size() > limit {
		return nil, &os.PathError{Op: "read", Path: f.Name(), Err: unix.EFBIG}
	}
	buf := make([]byte, 0, st.Size()+1)
	for int64(len(buf)) <= limit {
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			if errors.Is(err, io.EOF) {
				return buf, nil
			}
			return nil, err
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
	}
	return nil, &os.PathError{Op: "read", Path: f.Name(), Err: unix.EFBIG}
}
