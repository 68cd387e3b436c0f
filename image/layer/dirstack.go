package layer

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// The parent stack: the open directories from the root down to the parent of the last entry,
// so that the entries of a tree in archive order cost one openat per directory.

// openDir is one directory of the parent stack.
type openDir struct {
	path   string
	fd     int // O_RDONLY|O_DIRECTORY
	setgid bool
}

// maxStack bounds the descriptors the parent stack holds; deeper parents are opened per entry.
const maxStack = 256

const dirFlags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC

// under reports whether p is dir or lies below it.
func under(p, dir string) bool {
	return dir == "." || p == dir || strings.HasPrefix(p, dir) && p[len(dir)] == '/'
}

// top is the innermost open directory (the stack is not empty).
func (a *applier) top() openDir { return a.stack[len(a.stack)-1] }

// pop closes the top of the stack, applying its attributes if this layer set them.
func (a *applier) pop() error {
	d := a.top()
	a.stack = a.stack[:len(a.stack)-1]
	var err error
	if m := a.dirs[d.path]; m != nil && !m.applied {
		if err = a.dirAttrs(d.fd, m); err != nil {
			err = fmt.Errorf("apply %q: %w", d.path, err)
		}
		m.applied = true
	}
	unix.Close(d.fd)
	return err
}

// flush pops the whole stack (before anything that may remove a directory on it).
func (a *applier) flush() error {
	if a.deep.fd >= 0 {
		unix.Close(a.deep.fd)
		a.deep = openDir{fd: -1}
	}
	var first error
	for len(a.stack) > 0 {
		if err := a.pop(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// touched marks dir as changed after its attributes were applied.
func (a *applier) touched(dir string) {
	if m := a.dirs[dir]; m != nil {
		m.applied = false
	}
}

// parent returns a descriptor of dir inside the root, creating missing directories (0755,
// owned by the applier). Open directories from the root down to the last parent are kept on a
// stack: each step is an openat(O_NOFOLLOW) relative to the directory above, and only a
// symlink on the way falls back to openat2(RESOLVE_IN_ROOT) of the whole path.
func (a *applier) parent(dir string) (int, error) {
	if strings.Count(dir, "/")+2 > maxStack {
		return a.deepParent(dir)
	}
	if err := a.openRoot(); err != nil {
		return -1, err
	}
	for !under(dir, a.top().path) {
		if err := a.pop(); err != nil {
			return -1, err
		}
	}
	for {
		top := a.top()
		if top.path == dir {
			a.touched(dir)
			a.psetgid = top.setgid
			return top.fd, nil
		}
		c, next := nextComponent(top.path, dir)
		d, err := a.descend(top, c, next)
		if err != nil {
			return -1, err
		}
		a.touched(top.path)
		a.stack = append(a.stack, d)
	}
}

// openRoot puts the root at the bottom of an empty stack.
func (a *applier) openRoot() error {
	if len(a.stack) > 0 {
		return nil
	}
	fd, err := a.root.OpenFD(".", unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("open root: %w", err)
	}
	var st unix.Stat_t
	unix.Fstat(fd, &st)
	a.stack = append(a.stack, openDir{path: ".", fd: fd, setgid: st.Mode&unix.S_ISGID != 0})
	return nil
}

// nextComponent returns the component of dir right below top and its path.
func nextComponent(top, dir string) (c, next string) {
	rest := dir
	if top != "." {
		rest = dir[len(top)+1:]
	}
	c, _, _ = strings.Cut(rest, "/")
	if top != "." {
		return c, top + "/" + c
	}
	return c, c
}

// descend opens the directory c of top (at path next), creating it when missing. A symlink
// (or anything that is not a directory) on the way is resolved inside the root instead,
// creating what a dangling symlink names.
func (a *applier) descend(top openDir, c, next string) (openDir, error) {
	created := false
	fd, err := unix.Openat(top.fd, c, dirFlags, 0)
	if errors.Is(err, unix.ENOENT) {
		if merr := unix.Mkdirat(top.fd, c, 0755); merr != nil && !errors.Is(merr, unix.EEXIST) {
			return openDir{}, fmt.Errorf("create parent directory %s: %w", next, merr)
		}
		created = true
		fd, err = unix.Openat(top.fd, c, dirFlags, 0)
	}
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ENOENT) {
		created = false
		fd, err = a.resolveParent(next)
	}
	if err != nil {
		return openDir{}, fmt.Errorf("open parent directory %s: %w", next, err)
	}
	setgid := top.setgid
	if !created {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return openDir{}, err
		}
		setgid = st.Mode&unix.S_ISGID != 0
	}
	return openDir{path: next, fd: fd, setgid: setgid}, nil
}

// resolveParent opens the directory p with openat2(RESOLVE_IN_ROOT), creating it (and what a
// dangling symlink on the way names) when missing.
func (a *applier) resolveParent(p string) (int, error) {
	fd, err := a.root.OpenFD(p, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil && errors.Is(err, unix.ENOENT) {
		var pfd int
		if pfd, err = a.root.MkdirAllFD(p, 0755); err == nil {
			unix.Close(pfd)
			fd, err = a.root.OpenFD(p, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		}
	}
	return fd, err
}

// pushCreated puts the directory base just created (or kept) in the top of the stack pfd on
// the stack, saving the lookup its first child would make. Failure only skips the shortcut.
func (a *applier) pushCreated(pfd int, p, base string) {
	if len(a.stack) == 0 || a.top().fd != pfd || len(a.stack) >= maxStack-1 {
		return
	}
	fd, err := unix.Openat(pfd, base, dirFlags, 0)
	if err != nil {
		return
	}
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		unix.Close(fd)
		return
	}
	a.stack = append(a.stack, openDir{path: p, fd: fd, setgid: st.Mode&unix.S_ISGID != 0})
}

// deepParent opens a parent too deep for the stack on its own (openat2 RESOLVE_IN_ROOT).
func (a *applier) deepParent(dir string) (int, error) {
	if a.deep.fd >= 0 && a.deep.path == dir {
		a.psetgid = a.deep.setgid
		return a.deep.fd, nil
	}
	if a.deep.fd >= 0 {
		unix.Close(a.deep.fd)
		a.deep = openDir{fd: -1}
	}
	fd, err := a.root.OpenFD(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil && errors.Is(err, unix.ENOENT) {
		fd, err = a.root.MkdirAllFD(dir, 0755)
	}
	if err != nil {
		return -1, fmt.Errorf("open parent directory: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, err
	}
	a.deep = openDir{path: dir, fd: fd, setgid: st.Mode&unix.S_ISGID != 0}
	a.psetgid = a.deep.setgid
	return fd, nil
}
