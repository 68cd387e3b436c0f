package rootfs

import (
	"errors"
	"io"
	"os"

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
