package layer

import (
	"errors"
	"fmt"
	"hash/maphash"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// Whiteouts (layer.md "Whiteouts"): a whiteout or an opaque marker hides what lower layers
// put at a path, never what this layer wrote, wherever the marker sits in the archive. The
// applier marks every path this layer writes and pruning skips the marked ones.

const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// marks for paths this layer wrote: whiteouts hide lower layers only.
const (
	markCreated = 1 << iota // the path is an entry of this layer
	markAbove               // an entry of this layer lies below the path
)

// key hashes a path for marks: 8 bytes per path keep the bookkeeping of a huge layer small.
func (a *applier) key(p string) uint64 { return maphash.String(a.seed, p) }

// mark records that this layer wrote p.
func (a *applier) mark(p string) {
	a.marks[a.key(p)] |= markCreated
	for q := p; ; {
		d, _ := splitPath(q)
		k := a.key(d)
		if d == "." || a.marks[k]&markAbove != 0 {
			return
		}
		a.marks[k] |= markAbove
		q = d
	}
}

// whiteoutEntry handles an entry named .wh.* in dir: an opaque marker, AUFS metadata (skipped)
// or the whiteout of one name.
func (a *applier) whiteoutEntry(dir, base string) error {
	switch {
	case base == whiteoutOpaque:
		return a.opaque(dir)
	case strings.HasPrefix(base, whiteoutMeta):
		return nil // AUFS metadata (.wh..wh.plnk, .wh..wh.aufs, …)
	}
	target := base[len(whiteoutPrefix):]
	if target == "" || target == "." || target == ".." {
		return invalid("invalid whiteout %q", base)
	}
	return a.whiteout(dir, target)
}

// whiteout removes dir/target as lower layers left it.
func (a *applier) whiteout(dir, target string) error {
	if err := a.flush(); err != nil {
		return err
	}
	a.touched(dir)
	fd, err := a.root.OpenFD(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return nil
		}
		return fmt.Errorf("open whiteout directory: %w", err)
	}
	defer unix.Close(fd)
	return a.prune(fd, target, path.Join(dir, target))
}

// opaque removes every child of dir that lower layers put there, as if the opaque whiteout
// came first in the layer.
func (a *applier) opaque(dir string) error {
	if err := a.flush(); err != nil {
		return err
	}
	a.touched(dir)
	fd, err := a.root.OpenFD(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return nil
		}
		return fmt.Errorf("open opaque directory: %w", err)
	}
	defer unix.Close(fd)
	return a.pruneChildren(fd, dir)
}

// prune removes name (at p) in the directory pfd, keeping what this layer created.
func (a *applier) prune(pfd int, name, p string) error {
	m := a.marks[a.key(p)]
	if m == 0 {
		return removeAllAt(pfd, name)
	}
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("stat %s: %w", p, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		if m&markCreated != 0 {
			return nil
		}
		return removeAllAt(pfd, name)
	}
	fd, err := unix.Openat(pfd, name, dirFlags, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", p, err)
	}
	defer unix.Close(fd)
	return a.pruneChildren(fd, p)
}

// pruneChildren prunes every child of the directory fd (at p).
func (a *applier) pruneChildren(fd int, p string) error {
	names, err := readNames(fd)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := a.prune(fd, n, childPath(p, n)); err != nil {
			return err
		}
	}
	return nil
}

// childPath is the path of the entry name of the directory at p.
func childPath(p, name string) string {
	if p == "." {
		return name
	}
	return p + "/" + name
}

// readNames lists a directory opened for reading (without "." and ".."), from its start.
func readNames(fd int) ([]string, error) {
	if _, err := unix.Seek(fd, 0, 0); err != nil {
		return nil, fmt.Errorf("read directory: %w", err)
	}
	buf := make([]byte, 32<<10)
	var names []string
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read directory: %w", err)
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}

// removeAllAt removes name in dirfd and, if it is a directory, everything below it, never
// following a symlink.
func removeAllAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	err = unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.ENOTEMPTY) && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	fd, err := unix.Openat(dirfd, name, dirFlags, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", name, err)
	}
	names, err := readNames(fd)
	if err == nil {
		for _, n := range names {
			if err = removeAllAt(fd, n); err != nil {
				break
			}
		}
	}
	unix.Close(fd)
	if err != nil {
		return err
	}
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	return nil
}
