package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/internal/rootfs"
)

// CopyOptions are the destination side of one COPY or ADD.
type CopyOptions struct {
	// Dest is the destination operand (expanded). A relative one is relative to WorkDir
	// ("/" when empty).
	Dest    string
	WorkDir string
	// Chown is --chown: every file and directory copied, and every directory created for the
	// destination, gets this owner (resolved in the destination root). Empty: the sources'
	// owners for a set whose Owners is true (COPY --from), else 0:0.
	Chown string
	// Chmod is --chmod (octal): the mode of every file and directory copied.
	Chmod string
	// StripSetID clears setuid and setgid bits, as buildah 1.28 does when it copies from
	// the build context (not from a stage, not with --chmod).
	StripSetID bool
	// Extract is ADD: a local file that is a tar archive (plain, gzip, bzip2, xz or zstd,
	// detected by content) is extracted into the destination instead of copied. URLs are
	// never extracted.
	Extract bool
}

// relevantXattr reports whether buildah 1.28 keeps the extended attribute name when it
// copies: security.capability, security.ima and user.*; the others are dropped.
func relevantXattr(name string) bool {
	return name == "security.capability" || name == "security.ima" || strings.HasPrefix(name, "user.")
}

// canChown is false when the process may not give files away (not root): the copy then
// leaves ownership as created, which is what a root build gets only for 0:0.
var canChown = os.Geteuid() == 0

// Copy writes the sources of set into the root filesystem at dstRoot with Docker's COPY/ADD
// semantics (https://docs.docker.com/reference/dockerfile/#copy):
//   - a file source is copied to Dest, or to Dest/NAME when Dest ends in "/" or is an
//     existing directory; a directory source copies its contents, not itself;
//   - several sources (operands, or what a glob matched) need a Dest that ends in "/" or is
//     an existing directory;
//   - missing directories of Dest are created 0755, owned by the --chown owner (0:0
//     without one), as buildah does;
//   - symlinks are copied as symlinks (a source operand that is a symlink is followed),
//     hardlinks within one source are kept, modification times are kept (access times set to
//     them), and of the extended attributes those relevantXattr names;
//   - ADD extracts local archives (see CopyOptions.Extract), keeping their owners and
//     modes (--chown and --chmod apply only to what ADD copies, as buildah 1.28).
//
// Every write is confined to dstRoot: Dest and its parents resolve inside it (a symlink in
// the destination that points out of it resolves inside it), and what the copy creates
// below is created with *at calls that never follow a symlink. On error the root is left
// partly written: the executor discards the step's snapshot.
func Copy(ctx context.Context, dstRoot string, set *SourceSet, opts CopyOptions) error {
	root, err := rootfs.Open(dstRoot)
	if err != nil {
		return fmt.Errorf("%s: %w", set.Instruction, err)
	}
	defer root.Close()
	c := &copier{ctx: ctx, root: root, set: set, opts: opts, ins: set.Instruction}
	if c.ins == "" {
		c.ins = "COPY"
	}
	if opts.Chown != "" {
		o, err := ResolveChown(root, opts.Chown)
		if err != nil {
			return fmt.Errorf("%s: %w", c.ins, err)
		}
		c.owner, c.chown = o, true
	}
	if opts.Chmod != "" {
		m, err := ParseChmod(opts.Chmod)
		if err != nil {
			return fmt.Errorf("%s: %w", c.ins, err)
		}
		c.mode, c.chmod = m, true
	}
	return c.run()
}

type copier struct {
	ctx   context.Context
	root  *rootfs.Root
	set   *SourceSet
	opts  CopyOptions
	ins   string
	owner Owner
	chown bool
	mode  uint32
	chmod bool
	n     int
}

func (c *copier) errf(format string, args ...any) error {
	return fmt.Errorf("%s %s: "+format, append([]any{c.ins, c.opts.Dest}, args...)...)
}

// destPath is the destination, root-relative and clean, and whether it is written as a
// directory (ends in "/", or is "." relative to WORKDIR).
func (c *copier) destPath() (string, bool) {
	d := c.opts.Dest
	wd := c.opts.WorkDir
	if wd == "" {
		wd = "/"
	}
	dirSyntax := strings.HasSuffix(d, "/") || d == "" || d == "." || strings.HasSuffix(d, "/.")
	if !path.IsAbs(d) {
		d = path.Join(wd, d)
	}
	return rootfs.Clean(d), dirSyntax
}

func (c *copier) run() error {
	dest, dirSyntax := c.destPath()
	items := c.set.Items()
	multi := len(c.set.Sources) > 1 || len(items) > 1
	archives := make([]bool, len(items))
	anyDirLike := false
	for i, it := range items {
		if it.Dir {
			anyDirLike = true
			continue
		}
		if c.opts.Extract && !c.isRemote(it) {
			ok, err := isArchive(it)
			if err != nil {
				return c.errf("%w", err)
			}
			archives[i] = ok
			anyDirLike = anyDirLike || ok
		}
	}
	exists, existsDir := false, false
	var st unix.Stat_t
	if fd, err := c.root.OpenFD(dest, unix.O_PATH, 0); err == nil {
		exists = true
		if unix.Fstat(fd, &st) == nil {
			existsDir = st.Mode&unix.S_IFMT == unix.S_IFDIR
		}
		unix.Close(fd)
	} else if !errors.Is(err, unix.ENOENT) {
		if errors.Is(err, unix.ENOTDIR) {
			return c.errf("%w: a parent of the destination is not a directory", errdef.ErrInvalidArgument)
		}
		return c.errf("%w", err)
	}
	intoDir := dirSyntax || existsDir
	if multi && !intoDir {
		return c.errf("%w: with several sources the destination must be a directory and end with a /", errdef.ErrInvalidArgument)
	}
	if exists && !existsDir && (anyDirLike || dirSyntax) {
		return c.errf("%w: the destination exists and is not a directory", errdef.ErrInvalidArgument)
	}
	destDir, fileName := dest, ""
	if !intoDir && !anyDirLike {
		destDir, fileName = path.Dir(dest), path.Base(dest)
		if dest == "." {
			return c.errf("%w: a file cannot replace the root directory", errdef.ErrInvalidArgument)
		}
	}
	if err := c.mkdirAll(destDir); err != nil {
		return c.errf("create destination: %w", err)
	}
	dfd, err := c.root.OpenFD(destDir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return c.errf("open destination: %w", err)
	}
	defer unix.Close(dfd)
	for i, it := range items {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		switch {
		case archives[i]:
			if err := c.extract(it, destDir); err != nil {
				return c.errf("extract %s: %w", it.Match, err)
			}
		case it.Dir:
			if err := c.copyDir(dfd, it); err != nil {
				return c.errf("%w", err)
			}
		default:
			name := fileName
			pfd := dfd
			if name == "" {
				name = it.Rel
				if c.isRemote(it) {
					name = it.Name
				}
				if strings.Contains(name, "/") {
					var err error
					pfd, err = c.parents(dfd, it, path.Dir(name))
					if err != nil {
						return c.errf("%w", err)
					}
					name = path.Base(name)
				}
			}
			err := c.putFile(pfd, name, it, &it.Entries[0], nil)
			if pfd != dfd {
				unix.Close(pfd)
			}
			if err != nil {
				return c.errf("%w", err)
			}
		}
	}
	return nil
}

func (c *copier) isRemote(it *Item) bool {
	for _, s := range c.set.Sources {
		for _, x := range s.Items {
			if x == it {
				return s.URL
			}
		}
	}
	return false
}

// mkdirAll creates the missing directories of rel (root-relative), 0755 and owned by the
// --chown owner (0:0 without one); existing ones, and symlinks to directories inside the
// root, are left as they are.
func (c *copier) mkdirAll(rel string) error {
	if rel == "." {
		return nil
	}
	cur := "."
	for _, comp := range strings.Split(rel, "/") {
		next := path.Join(cur, comp)
		fd, err := c.root.OpenFD(next, unix.O_PATH|unix.O_DIRECTORY, 0)
		if err == nil {
			unix.Close(fd)
			cur = next
			continue
		}
		if errors.Is(err, unix.ENOTDIR) {
			return fmt.Errorf("%w: /%s is not a directory", errdef.ErrInvalidArgument, next)
		}
		if !errors.Is(err, unix.ENOENT) {
			return err
		}
		pfd, err := c.root.OpenFD(cur, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			return err
		}
		err = unix.Mkdirat(pfd, comp, 0755)
		if errors.Is(err, unix.EEXIST) {
			// a dangling symlink: create what it names, inside the root
			unix.Close(pfd)
			f, err := c.root.MkdirAllFollow(next, 0755)
			if err != nil {
				return err
			}
			f.Close()
			cur = next
			continue
		}
		if err == nil {
			err = c.chownAt(pfd, comp, c.dirOwner(), unix.AT_SYMLINK_NOFOLLOW)
		}
		if err == nil {
			err = unix.Fchmodat(pfd, comp, 0755, 0)
		}
		unix.Close(pfd)
		if err != nil {
			return fmt.Errorf("mkdir /%s: %w", next, err)
		}
		cur = next
	}
	return nil
}

func (c *copier) dirOwner() Owner {
	if c.chown {
		return c.owner
	}
	return Owner{}
}

func (c *copier) ownerOf(e *Entry) Owner {
	switch {
	case c.chown:
		return c.owner
	case c.set.Owners:
		return Owner{UID: e.UID, GID: e.GID}
	}
	return Owner{}
}

func (c *copier) modeOf(e *Entry) uint32 {
	if c.chmod {
		return c.mode
	}
	m := e.Mode & 07777
	if c.opts.StripSetID {
		m &^= unix.S_ISUID | unix.S_ISGID
	}
	return m
}

func (c *copier) chownAt(dirfd int, name string, o Owner, flags int) error {
	if !canChown {
		return nil
	}
	if err := unix.Fchownat(dirfd, name, int(o.UID), int(o.GID), flags); err != nil {
		return fmt.Errorf("chown %s: %w", name, err)
	}
	return nil
}

// parents creates, below dfd, the directories of --parents between the pivot and an item
// (with their source attributes) and returns a descriptor of the innermost.
func (c *copier) parents(dfd int, it *Item, rel string) (int, error) {
	fd, err := unix.Dup(dfd)
	if err != nil {
		return -1, err
	}
	byRel := map[string]*Entry{}
	for i := range it.Parents {
		byRel[it.Parents[i].Rel] = &it.Parents[i]
	}
	done := ""
	for _, comp := range strings.Split(rel, "/") {
		done = path.Join(done, comp)
		e := byRel[done]
		if e == nil {
			e = &Entry{Mode: unix.S_IFDIR | 0755}
		}
		nfd, err := c.mkdirEntry(fd, comp, e, nil)
		unix.Close(fd)
		if err != nil {
			return -1, err
		}
		fd = nfd
	}
	return fd, nil
}

// dirTimes is a directory whose times are set once what it holds is in place.
type dirTimes struct {
	rel string
	e   *Entry
}

// copyDir copies the entries of a directory item below dfd (into Rel with --parents).
func (c *copier) copyDir(dfd int, it *Item) error {
	base, err := unix.Dup(dfd)
	if err != nil {
		return err
	}
	if it.parents && it.Rel != "." {
		// --parents: the item lands at Rel
		unix.Close(base)
		if base, err = c.parents(dfd, it, it.Rel); err != nil {
			return err
		}
	}
	defer unix.Close(base)
	type open struct {
		rel string
		fd  int
	}
	stack := []open{{"", base}}
	defer func() {
		for _, o := range stack[1:] {
			unix.Close(o.fd)
		}
	}()
	links := map[[2]uint64]string{}
	var dirs []dirTimes
	for i := range it.Entries {
		e := &it.Entries[i]
		if c.n++; c.n&1023 == 0 {
			if err := c.ctx.Err(); err != nil {
				return err
			}
		}
		pdir, name := path.Dir(e.Rel), path.Base(e.Rel)
		if pdir == "." {
			pdir = ""
		}
		for len(stack) > 1 && stack[len(stack)-1].rel != pdir {
			unix.Close(stack[len(stack)-1].fd)
			stack = stack[:len(stack)-1]
		}
		if stack[len(stack)-1].rel != pdir {
			return fmt.Errorf("%w: entry %s out of walk order", errdef.ErrInvalidState, e.Rel)
		}
		pfd := stack[len(stack)-1].fd
		if e.IsDir() {
			fd, err := c.mkdirEntry(pfd, name, e, it)
			if err != nil {
				return fmt.Errorf("copy %s: %w", e.Rel, err)
			}
			stack = append(stack, open{e.Rel, fd})
			dirs = append(dirs, dirTimes{e.Rel, e})
			continue
		}
		if e.Nlink > 1 {
			key := [2]uint64{e.Dev, e.Ino}
			if first, ok := links[key]; ok {
				if err := c.link(base, first, pfd, name); err != nil {
					return fmt.Errorf("copy %s: %w", e.Rel, err)
				}
				continue
			}
			links[key] = e.Rel
		}
		if err := c.putFile(pfd, name, it, e, nil); err != nil {
			return fmt.Errorf("copy %s: %w", e.Rel, err)
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		d := dirs[i]
		ts := []unix.Timespec{d.e.Mtime, d.e.Mtime}
		pdir, name := path.Dir(d.rel), path.Base(d.rel)
		pfd := base
		if pdir != "." {
			fd, err := openBeneath(base, pdir, unix.O_PATH|unix.O_DIRECTORY)
			if err != nil {
				return fmt.Errorf("set times of %s: %w", d.rel, err)
			}
			pfd = fd
		}
		err := unix.UtimesNanoAt(pfd, name, ts, unix.AT_SYMLINK_NOFOLLOW)
		if pfd != base {
			unix.Close(pfd)
		}
		if err != nil {
			return fmt.Errorf("set times of %s: %w", d.rel, err)
		}
	}
	return nil
}

// openBeneath opens rel below dirfd, refusing symlinks and escapes.
func openBeneath(dirfd int, rel string, flags int) (int, error) {
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS}
	for {
		fd, err := unix.Openat2(dirfd, rel, &how)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		return fd, err
	}
}

// clear makes room for a new entry name in pfd: an existing non-directory is removed, an
// existing directory too unless keepDir (then it reports true).
func clear(pfd int, name string, keepDir bool) (bool, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if keepDir {
			return true, nil
		}
		return false, removeAllAt(pfd, name)
	}
	return false, unix.Unlinkat(pfd, name, 0)
}

// removeAllAt removes name below pfd and all it holds, never following a symlink.
func removeAllAt(pfd int, name string) error {
	fd, err := unix.Openat(pfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
			return unix.Unlinkat(pfd, name, 0)
		}
		return err
	}
	f := os.NewFile(uintptr(fd), name)
	names, err := f.Readdirnames(-1)
	if err != nil {
		f.Close()
		return err
	}
	for _, n := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			f.Close()
			return err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			err = removeAllAt(fd, n)
		} else {
			err = unix.Unlinkat(fd, n, 0)
		}
		if err != nil {
			f.Close()
			return err
		}
	}
	f.Close()
	return unix.Unlinkat(pfd, name, unix.AT_REMOVEDIR)
}

// mkdirEntry creates (or reuses) the directory name below pfd with e's attributes (times
// excepted) and returns a descriptor of it. it is the item e comes from (nil: no xattrs).
func (c *copier) mkdirEntry(pfd int, name string, e *Entry, it *Item) (int, error) {
	kept, err := clear(pfd, name, true)
	if err != nil {
		return -1, err
	}
	if !kept {
		if err := unix.Mkdirat(pfd, name, 0700); err != nil {
			return -1, fmt.Errorf("mkdir: %w", err)
		}
	}
	fd, err := unix.Openat(pfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := c.attrs(fd, e, it); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// attrs sets owner, mode and extended attributes on the open fd.
func (c *copier) attrs(fd int, e *Entry, it *Item) error {
	o := c.ownerOf(e)
	if canChown {
		if err := unix.Fchown(fd, int(o.UID), int(o.GID)); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	if err := unix.Fchmod(fd, c.modeOf(e)); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	if it != nil {
		if err := copyXattrs(it, e, fd); err != nil {
			return err
		}
	}
	return nil
}

// copyXattrs copies the relevant extended attributes of e's source to fd.
func copyXattrs(it *Item, e *Entry, fd int) error {
	src, err := it.Tree.OpenFile(path.Join(it.Path, e.Rel))
	if err != nil {
		return err
	}
	defer src.Close()
	return copyXattrsFD(int(src.Fd()), fd)
}

func copyXattrsFD(src, dst int) error {
	names, err := listXattrs(src)
	if err != nil {
		return err
	}
	for _, n := range names {
		if !relevantXattr(n) {
			continue
		}
		v, err := getXattr(src, n)
		if err != nil {
			return err
		}
		if err := unix.Fsetxattr(dst, n, v, 0); err != nil && !errors.Is(err, unix.ENOTSUP) {
			return fmt.Errorf("set extended attribute %s: %w", n, err)
		}
	}
	return nil
}

func listXattrs(fd int) ([]string, error) {
	buf := make([]byte, 4096)
	for {
		n, err := unix.Flistxattr(fd, buf)
		if errors.Is(err, unix.ERANGE) && len(buf) < 1<<20 {
			buf = make([]byte, len(buf)*4)
			continue
		}
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list extended attributes: %w", err)
		}
		var out []string
		for _, s := range strings.Split(string(buf[:n]), "\x00") {
			if s != "" {
				out = append(out, s)
			}
		}
		return out, nil
	}
}

func getXattr(fd int, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Fgetxattr(fd, name, buf)
		if errors.Is(err, unix.ERANGE) && len(buf) < 1<<20 {
			buf = make([]byte, len(buf)*4)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("get extended attribute %s: %w", name, err)
		}
		return buf[:n], nil
	}
}

// link makes name below pfd a hardlink of first (relative to base, created by this copy).
func (c *copier) link(base int, first string, pfd int, name string) error {
	dir, fbase := path.Dir(first), path.Base(first)
	ffd := base
	if dir != "." {
		fd, err := openBeneath(base, dir, unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		ffd = fd
	}
	if _, err := clear(pfd, name, false); err != nil {
		return err
	}
	if err := unix.Linkat(ffd, fbase, pfd, name, 0); err != nil {
		return fmt.Errorf("link to %s: %w", first, err)
	}
	return nil
}

// putFile writes the non-directory entry e of item it as name below pfd. content, when not
// nil, replaces the source file's content (ADD's downloads are ordinary items: nil).
func (c *copier) putFile(pfd int, name string, it *Item, e *Entry, content io.Reader) error {
	if _, err := clear(pfd, name, false); err != nil {
		return err
	}
	o := c.ownerOf(e)
	ts := []unix.Timespec{e.Mtime, e.Mtime}
	switch e.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		if err := unix.Symlinkat(e.Link, pfd, name); err != nil {
			return fmt.Errorf("symlink: %w", err)
		}
		if err := c.chownAt(pfd, name, o, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		return unix.UtimesNanoAt(pfd, name, ts, unix.AT_SYMLINK_NOFOLLOW)
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
		if err := unix.Mknodat(pfd, name, e.Mode&unix.S_IFMT|0600, int(e.Rdev)); err != nil {
			return fmt.Errorf("mknod: %w", err)
		}
		if err := c.chownAt(pfd, name, o, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		if err := unix.Fchmodat(pfd, name, c.modeOf(e), 0); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
		return unix.UtimesNanoAt(pfd, name, ts, unix.AT_SYMLINK_NOFOLLOW)
	case unix.S_IFREG:
	default:
		return fmt.Errorf("%w: file type %o", errdef.ErrUnsupported, e.Mode&unix.S_IFMT)
	}
	src, err := it.Tree.OpenFile(path.Join(it.Path, e.Rel))
	if err != nil {
		return err
	}
	defer src.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(src.Fd()), &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%w: %s changed type while it was copied", errdef.ErrInvalidState, path.Join(it.Path, e.Rel))
	}
	fd, err := unix.Openat(pfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0600)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	dst := os.NewFile(uintptr(fd), name)
	defer dst.Close()
	if content == nil {
		content = src
	}
	if _, err := io.Copy(dst, content); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if canChown {
		if err := unix.Fchown(fd, int(o.UID), int(o.GID)); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	if err := unix.Fchmod(fd, c.modeOf(e)); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	if err := copyXattrsFD(int(src.Fd()), fd); err != nil {
		return err
	}
	if err := unix.UtimesNanoAt(pfd, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return dst.Close()
}
