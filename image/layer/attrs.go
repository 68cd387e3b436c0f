package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Attributes: owners (shifted by the ID maps), times, extended attributes, and the directory
// attributes applied once a directory's children are in place.

// dirMeta is what a directory entry asks for, applied after its children (finishDirs).
type dirMeta struct {
	applied      bool
	path         string
	uid, gid     int
	mode         uint32
	atime, mtime unix.Timespec
	xattrs       map[string]string
}

// mapID shifts a container ID to the host ID of m (no map: the same ID).
func mapID(m []specs.LinuxIDMapping, id int, what string) (int, error) {
	if id < 0 || id > 0xfffffffe {
		return -1, invalid("%s %d out of range", what, id)
	}
	if len(m) == 0 {
		return id, nil
	}
	for _, e := range m {
		if uint64(id) >= uint64(e.ContainerID) && uint64(id) < uint64(e.ContainerID)+uint64(e.Size) {
			return int(e.HostID) + (id - int(e.ContainerID)), nil
		}
	}
	return -1, invalid("%s %d is not in the %s map", what, id, what)
}

// owner returns the host owner of an entry.
func (a *applier) owner(hdr *tar.Header) (int, int, error) {
	uid, err := mapID(a.opts.UIDMap, hdr.Uid, "uid")
	if err != nil {
		return 0, 0, err
	}
	gid, err := mapID(a.opts.GIDMap, hdr.Gid, "gid")
	if err != nil {
		return 0, 0, err
	}
	return uid, gid, nil
}

// timespecs returns an entry's atime (its mtime when the layer has none) and mtime.
func timespecs(hdr *tar.Header) [2]unix.Timespec {
	m := unix.NsecToTimespec(hdr.ModTime.UnixNano())
	at := m
	if !hdr.AccessTime.IsZero() {
		at = unix.NsecToTimespec(hdr.AccessTime.UnixNano())
	}
	return [2]unix.Timespec{at, m}
}

// times sets the times of base in pfd, not following a symlink.
func (a *applier) times(pfd int, base string, hdr *tar.Header) error {
	ts := timespecs(hdr)
	if err := unix.UtimesNanoAt(pfd, base, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// futimens sets the times of an open file (utimensat with a NULL path).
func futimens(fd int, ts *[2]unix.Timespec) error {
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// xattrsOf returns the extended attributes an entry records (SCHILY.xattr.*) that may be
// applied.
func xattrsOf(hdr *tar.Header) map[string]string {
	var m map[string]string
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok || !allowedXattr(name) {
			continue
		}
		if m == nil {
			m = make(map[string]string)
		}
		m[name] = v
	}
	return m
}

// allowedXattr keeps overlayfs' private attributes (which would let a layer forge whiteouts,
// redirects or metacopy files on an overlay mount) out of the root.
func allowedXattr(name string) bool {
	return !strings.HasPrefix(name, "trusted.overlay.") && !strings.HasPrefix(name, "user.overlay.")
}

// setXattrs sets m on an open file, in name order.
func setXattrs(fd int, m map[string]string) error {
	for _, k := range sortedKeys(m) {
		if err := unix.Fsetxattr(fd, k, []byte(m[k]), 0); err != nil {
			return fmt.Errorf("set xattr %s: %w", k, err)
		}
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// fileAttrs sets what a regular file entry asks for on the open file: owner, mode (only when
// the umask, a set-ID bit after a chown or a set-group-ID parent changed it), xattrs, times.
func (a *applier) fileAttrs(fd int, hdr *tar.Header, uid, gid int) error {
	mode := uint32(hdr.Mode) & 07777
	chowned := false
	if uid != a.euid || gid != a.egid || a.psetgid {
		if err := unix.Fchown(fd, uid, gid); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
		chowned = true
	}
	if mode != mode&0777&^a.umask || (chowned && mode&(unix.S_ISUID|unix.S_ISGID) != 0) || a.psetgid {
		if err := unix.Fchmod(fd, mode); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	if x := xattrsOf(hdr); x != nil {
		if err := setXattrs(fd, x); err != nil {
			return err
		}
	}
	ts := timespecs(hdr)
	if err := futimens(fd, &ts); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// deferDir records a directory entry's attributes, applied once its children are in place.
func (a *applier) deferDir(p string, hdr *tar.Header) error {
	uid, gid, err := a.owner(hdr)
	if err != nil {
		return err
	}
	ts := timespecs(hdr)
	a.dirs[p] = &dirMeta{path: p, uid: uid, gid: gid, mode: uint32(hdr.Mode) & 07777, atime: ts[0], mtime: ts[1], xattrs: xattrsOf(hdr)}
	return nil
}

// finishDirs applies directory attributes, deepest first, once every child is in place: those
// of the directories on the stack as it unwinds, then those of directories never used as a
// parent or changed after their attributes were applied.
func (a *applier) finishDirs() error {
	if err := a.flush(); err != nil {
		return err
	}
	for _, d := range a.pendingDirs() {
		fd, err := a.root.OpenFD(d.path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
		if err != nil {
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
				continue // replaced or removed later in the layer: the last entry won
			}
			return fmt.Errorf("apply %q: %w", d.path, err)
		}
		err = a.dirAttrs(fd, d)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("apply %q: %w", d.path, err)
		}
		d.applied = true
	}
	return nil
}

// pendingDirs lists the directories whose attributes are not applied, deepest first.
func (a *applier) pendingDirs() []*dirMeta {
	var rest []*dirMeta
	for _, m := range a.dirs {
		if !m.applied {
			rest = append(rest, m)
		}
	}
	depth := func(p string) int {
		if p == "." {
			return -1
		}
		return strings.Count(p, "/")
	}
	sort.Slice(rest, func(i, j int) bool {
		if di, dj := depth(rest[i].path), depth(rest[j].path); di != dj {
			return di > dj
		}
		return rest[i].path < rest[j].path
	})
	return rest
}

// dirAttrs applies a directory entry's owner, mode, xattrs and times to the open directory.
func (a *applier) dirAttrs(fd int, d *dirMeta) error {
	if err := unix.Fchown(fd, d.uid, d.gid); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if err := unix.Fchmod(fd, d.mode); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	if err := setXattrs(fd, d.xattrs); err != nil {
		return err
	}
	ts := [2]unix.Timespec{d.atime, d.mtime}
	if err := futimens(fd, &ts); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// currentUmask reads the process umask without changing it (/proc/self/status, Linux ≥ 4.7).
func currentUmask() uint32 {
	b, err := os.ReadFile("/proc/self/status")
	if err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "Umask:"); ok {
				if u, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
					return uint32(u)
				}
			}
		}
	}
	return 0o7777 // unknown: always chmod
}
