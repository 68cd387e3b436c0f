package layer

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"unsafe"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/internal/rootfs"
)

const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"
	nameMax        = 255
)

// marks for paths this layer wrote: whiteouts hide lower layers only.
const (
	markCreated = 1 << iota // the path is an entry of this layer
	markAbove               // an entry of this layer lies below the path
)

type dirMeta struct {
	applied      bool
	path         string
	uid, gid     int
	mode         uint32
	atime, mtime unix.Timespec
	xattrs       map[string]string
}

type applier struct {
	ctx     context.Context
	root    *rootfs.Root
	opts    Options
	lim     Limits
	pipe    *pipe
	marks   map[uint64]uint8 // hashed paths (a random seed: not forgeable) → mark bits
	seed    maphash.Seed
	dirs    map[string]*dirMeta // directory attributes to apply once the children are in place
	stack   []openDir           // the open directories from the root to the last parent used
	deep    openDir             // a parent too deep for the stack (fd -1 when none)
	psetgid bool                // the last parent has S_ISGID (new files inherit its group)
	euid    int
	egid    int
	umask   uint32
	buf     []byte
	entries int64
	written int64
}

// Apply applies the layer blob read from r, of media type mediaType, to root. See the package
// documentation for the semantics. On error the root is left partly applied: callers apply
// into a directory they discard on failure.
func Apply(ctx context.Context, root *rootfs.Root, r io.Reader, mediaType string, opts Options) (Stats, error) {
	lim := opts.Limits.withDefaults()
	cr := &countingReader{r: r}
	dr, err := Decompress(cr, mediaType)
	if err != nil {
		return Stats{}, err
	}
	defer dr.Close()
	p := newPipe(dr, cr, lim)
	defer p.close()
	a := &applier{
		ctx: ctx, root: root, opts: opts, lim: lim, pipe: p,
		marks: make(map[uint64]uint8), seed: maphash.MakeSeed(), dirs: make(map[string]*dirMeta),
		deep: openDir{fd: -1}, euid: os.Geteuid(), egid: os.Getegid(), umask: currentUmask(),
		buf: make([]byte, 1<<20),
	}
	defer a.flush()
	tr := tar.NewReader(p)
	for {
		if a.entries&63 == 0 {
			if err := ctx.Err(); err != nil {
				return Stats{}, err
			}
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return Stats{}, fmt.Errorf("read layer entry %d: %w: archive is truncated", a.entries+1, errdef.ErrInvalidArgument)
			}
			if errors.Is(err, errdef.ErrTooLarge) {
				return Stats{}, fmt.Errorf("read layer entry %d: %w", a.entries+1, err)
			}
			return Stats{}, fmt.Errorf("read layer entry %d: %w: %v", a.entries+1, errdef.ErrInvalidArgument, err)
		}
		if err := a.entry(hdr, tr); err != nil {
			return Stats{}, fmt.Errorf("apply %q: %w", hdr.Name, err)
		}
	}
	if err := a.finishDirs(); err != nil {
		return Stats{}, err
	}
	if err := p.drain(); err != nil {
		return Stats{}, err
	}
	st := Stats{DiffID: digest.NewDigest(digest.SHA256, p.h), Entries: a.entries, Bytes: p.n}
	if opts.DiffID != "" && opts.DiffID != st.DiffID {
		return st, fmt.Errorf("apply layer: %w: uncompressed content hashes to %s, diffID is %s", errdef.ErrDigestMismatch, st.DiffID, opts.DiffID)
	}
	return st, nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errdef.ErrInvalidArgument, fmt.Sprintf(format, args...))
}

func splitPath(p string) (dir, base string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return ".", p
	}
	return p[:i], p[i+1:]
}

func (a *applier) entry(hdr *tar.Header, r io.Reader) error {
	a.entries++
	if a.entries > a.lim.MaxEntries {
		return fmt.Errorf("%w: more than %d entries in one layer (limit)", errdef.ErrTooLarge, a.lim.MaxEntries)
	}
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	if len(hdr.Name) > a.lim.MaxNameLength {
		return invalid("name of %d bytes is over the %d byte limit", len(hdr.Name), a.lim.MaxNameLength)
	}
	if len(hdr.Linkname) > a.lim.MaxNameLength {
		return invalid("link target of %d bytes is over the %d byte limit", len(hdr.Linkname), a.lim.MaxNameLength)
	}
	if strings.IndexByte(hdr.Name, 0) >= 0 || strings.IndexByte(hdr.Linkname, 0) >= 0 {
		return invalid("name or link target holds a NUL byte")
	}
	p := rootfs.Clean(hdr.Name)
	dir, base := splitPath(p)
	if dir != "." {
		for _, c := range strings.Split(dir, "/") {
			if len(c) > nameMax {
				return invalid("path component of %d bytes is over NAME_MAX", len(c))
			}
			if strings.HasPrefix(c, whiteoutMeta) {
				return nil // inside AUFS metadata (.wh..wh.plnk/…): skipped
			}
			if strings.HasPrefix(c, whiteoutPrefix) {
				return invalid("whiteout %q used as a directory", c)
			}
		}
	}
	if len(base) > nameMax {
		return invalid("name component of %d bytes is over NAME_MAX", len(base))
	}
	if strings.HasPrefix(base, whiteoutPrefix) {
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
	if p == "." {
		if hdr.Typeflag != tar.TypeDir {
			return fmt.Errorf("%w: a %s entry may not replace the root", errdef.ErrUnsafePath, typeName(hdr.Typeflag))
		}
		return a.deferDir(p, hdr)
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeCont, tar.TypeGNUSparse:
	case tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	default:
		return fmt.Errorf("%w: tar entry type %q", errdef.ErrUnsupported, hdr.Typeflag)
	}
	a.mark(p)
	pfd, err := a.parent(dir)
	if err != nil {
		return err
	}
	uid, gid, err := a.owner(hdr)
	if err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := a.create(pfd, base, true, func() error { return unix.Mkdirat(pfd, base, uint32(hdr.Mode)&0777|0700) }); err != nil {
			return err
		}
		if err := a.deferDir(p, hdr); err != nil {
			return err
		}
		a.pushCreated(pfd, p, base) // its children most likely come next
		return nil
	case tar.TypeSymlink:
		if err := a.create(pfd, base, false, func() error { return unix.Symlinkat(hdr.Linkname, pfd, base) }); err != nil {
			return err
		}
		if uid != a.euid || gid != a.egid || a.psetgid {
			if err := unix.Fchownat(pfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return fmt.Errorf("chown: %w", err)
			}
		}
		return a.times(pfd, base, hdr)
	case tar.TypeLink:
		return a.hardlink(pfd, base, p, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
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
	return a.regular(pfd, base, hdr, r, uid, gid)
}

func typeName(t byte) string {
	switch t {
	case tar.TypeReg, tar.TypeRegA:
		return "regular file"
	case tar.TypeSymlink:
		return "symlink"
	case tar.TypeLink:
		return "hardlink"
	case tar.TypeChar, tar.TypeBlock:
		return "device"
	case tar.TypeFifo:
		return "fifo"
	}
	return "type " + strconv.Quote(string(t))
}

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

// openDir is one directory of the parent stack.
type openDir struct {
	path   string
	fd     int // O_RDONLY|O_DIRECTORY
	setgid bool
}

// maxStack bounds the descriptors the parent stack holds; deeper parents are opened per entry.
const maxStack = 256

func under(p, dir string) bool {
	return dir == "." || p == dir || strings.HasPrefix(p, dir) && p[len(dir)] == '/'
}

// pop closes the top of the stack, applying its attributes if this layer set them.
func (a *applier) pop() error {
	d := a.stack[len(a.stack)-1]
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
// stack, so that the entries of a tree in archive order cost one openat per directory: each
// step is an openat(O_NOFOLLOW) relative to the directory above, and only a symlink on the way
// falls back to openat2(RESOLVE_IN_ROOT) of the whole path.
func (a *applier) parent(dir string) (int, error) {
	if strings.Count(dir, "/")+2 > maxStack {
		return a.deepParent(dir)
	}
	if len(a.stack) == 0 {
		fd, err := a.root.OpenFD(".", unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			return -1, fmt.Errorf("open root: %w", err)
		}
		var st unix.Stat_t
		unix.Fstat(fd, &st)
		a.stack = append(a.stack, openDir{path: ".", fd: fd, setgid: st.Mode&unix.S_ISGID != 0})
	}
	for !under(dir, a.stack[len(a.stack)-1].path) {
		if err := a.pop(); err != nil {
			return -1, err
		}
	}
	for {
		top := &a.stack[len(a.stack)-1]
		if top.path == dir {
			a.touched(dir)
			a.psetgid = top.setgid
			return top.fd, nil
		}
		rest := dir
		if top.path != "." {
			rest = dir[len(top.path)+1:]
		}
		c, _, _ := strings.Cut(rest, "/")
		next := c
		if top.path != "." {
			next = top.path + "/" + c
		}
		created := false
		fd, err := unix.Openat(top.fd, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			if merr := unix.Mkdirat(top.fd, c, 0755); merr != nil && !errors.Is(merr, unix.EEXIST) {
				return -1, fmt.Errorf("create parent directory %s: %w", next, merr)
			}
			created = true
			fd, err = unix.Openat(top.fd, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		}
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ENOENT) {
			// a symlink (or something that is not a directory): resolve the whole path inside
			// the root, creating what a dangling symlink names.
			created = false
			fd, err = a.root.OpenFD(next, unix.O_RDONLY|unix.O_DIRECTORY, 0)
			if err != nil && errors.Is(err, unix.ENOENT) {
				var pfd int
				if pfd, err = a.root.MkdirAllFD(next, 0755); err == nil {
					unix.Close(pfd)
					fd, err = a.root.OpenFD(next, unix.O_RDONLY|unix.O_DIRECTORY, 0)
				}
			}
		}
		if err != nil {
			return -1, fmt.Errorf("open parent directory %s: %w", next, err)
		}
		setgid := top.setgid
		if !created {
			var st unix.Stat_t
			if err := unix.Fstat(fd, &st); err != nil {
				unix.Close(fd)
				return -1, err
			}
			setgid = st.Mode&unix.S_ISGID != 0
		}
		a.touched(top.path)
		a.stack = append(a.stack, openDir{path: next, fd: fd, setgid: setgid})
	}
}

// pushCreated puts the directory base just created (or kept) in the top of the stack pfd on
// the stack, saving the lookup its first child would make. Failure only skips the shortcut.
func (a *applier) pushCreated(pfd int, p, base string) {
	if len(a.stack) == 0 || a.stack[len(a.stack)-1].fd != pfd || len(a.stack) >= maxStack-1 {
		return
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
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

func timespecs(hdr *tar.Header) [2]unix.Timespec {
	m := unix.NsecToTimespec(hdr.ModTime.UnixNano())
	at := m
	if !hdr.AccessTime.IsZero() {
		at = unix.NsecToTimespec(hdr.AccessTime.UnixNano())
	}
	return [2]unix.Timespec{at, m}
}

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

func (a *applier) regular(pfd int, base string, hdr *tar.Header, r io.Reader, uid, gid int) error {
	mode := uint32(hdr.Mode) & 07777
	var fd int
	err := a.create(pfd, base, false, func() error {
		var err error
		fd, err = unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode&0777)
		return err
	})
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()
	if hdr.Size > 0 {
		if err := a.copy(fd, r); err != nil {
			return err
		}
	}
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
	ok = true
	if err := unix.Close(fd); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

func (a *applier) copy(fd int, r io.Reader) error {
	for {
		n, err := r.Read(a.buf)
		if n > 0 {
			a.written += int64(n)
			if err := a.pipe.check(a.written); err != nil {
				return err
			}
			for b := a.buf[:n]; len(b) > 0; {
				m, werr := unix.Write(fd, b)
				if werr != nil {
					if werr == unix.EINTR {
						continue
					}
					return fmt.Errorf("write: %w", werr)
				}
				b = b[m:]
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
	for _, d := range rest {
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
	names, err := readNames(fd)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := a.prune(fd, n, path.Join(dir, n)); err != nil {
			return err
		}
	}
	return nil
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
	fd, err := unix.Openat(pfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", p, err)
	}
	defer unix.Close(fd)
	names, err := readNames(fd)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := a.prune(fd, n, p+"/"+n); err != nil {
			return err
		}
	}
	return nil
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
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
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
