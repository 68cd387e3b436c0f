package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/moby/patternmatcher"
	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/errdef"
)

// Tree is a directory COPY and ADD read from: the build context, or the root filesystem of a
// stage or image (COPY --from). Every path is opened relative to the tree's descriptor with
// openat2: in the build context with RESOLVE_BENEATH, so a symlink that leads out of the
// context is an error and is never followed out; in a root filesystem with RESOLVE_IN_ROOT,
// so absolute symlinks resolve inside it as they would in a container. Walks never follow a
// symlink. A Tree is safe for concurrent use by Resolve calls.
type Tree struct {
	Dir  string // the directory, as opened
	Name string // what messages call it: "build context", "stage builder", …

	fd      int
	real    string // the directory's path as the kernel resolved it
	context bool
	ignore  *Ignore
}

// OpenContext opens the build context dir with its ignore rules (nil: none).
func OpenContext(dir string, ig *Ignore) (*Tree, error) {
	t, err := openTree(dir, "build context")
	if err != nil {
		return nil, err
	}
	t.context, t.ignore = true, ig
	return t, nil
}

// OpenRootfs opens the root filesystem of a stage or image that COPY --from reads; name is
// what messages call it ("stage builder").
func OpenRootfs(dir, name string) (*Tree, error) {
	return openTree(dir, name)
}

func openTree(dir, name string) (*Tree, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s %s: %w", name, dir, err)
	}
	real, err := fdPath(fd)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("open %s %s: %w", name, dir, err)
	}
	return &Tree{Dir: dir, Name: name, fd: fd, real: real}, nil
}

// Close releases the tree's descriptor.
func (t *Tree) Close() error { return unix.Close(t.fd) }

// Ignore returns the tree's ignore rules (nil for a root filesystem).
func (t *Tree) Ignore() *Ignore { return t.ignore }

func fdPath(fd int) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd), buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

func (t *Tree) resolveFlags() uint64 {
	if t.context {
		return unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS
	}
	return unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS
}

// openat opens rel inside the tree, following symlinks only as the tree allows.
func (t *Tree) openat(rel string, flags int, extra uint64) (int, error) {
	if rel == "" {
		rel = "."
	}
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: t.resolveFlags() | extra}
	for {
		fd, err := unix.Openat2(t.fd, rel, &how)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		return fd, err
	}
}

// OpenFile opens the regular file or directory at the resolved, symlink-free tree path rel
// (an Item's Path joined with an Entry's Rel) for reading.
func (t *Tree) OpenFile(rel string) (*os.File, error) {
	fd, err := t.openat(rel, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NOCTTY|unix.O_NONBLOCK, unix.RESOLVE_NO_SYMLINKS)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path.Join(t.Dir, rel), Err: err}
	}
	return os.NewFile(uintptr(fd), path.Join(t.Dir, rel)), nil
}

// ResolveOptions control how Resolve reads the sources of one COPY or ADD.
type ResolveOptions struct {
	// Instruction is "COPY" or "ADD", for messages (and ADD's URLs).
	Instruction string
	// Excludes are --exclude patterns: matched against each source's path below the
	// directory it copies (and a file source against its own name), as BuildKit does.
	Excludes []string
	// Parents is --parents: each source keeps its path relative to the context root (or to
	// the pivot `/./` in it) under the destination.
	Parents bool
	// Fetcher fetches ADD's http(s) sources; nil makes a URL an error (COPY).
	Fetcher *Fetcher
	// Checksum is ADD --checksum (sha256:HEX), for a single URL source.
	Checksum string
}

// SourceSet is the resolved sources of one COPY or ADD, in instruction order: what Copy
// writes and Digest keys. Close it to remove ADD's downloads.
type SourceSet struct {
	Instruction string
	Sources     []Source
	// Owners says whether the sources' owners matter (COPY --from keeps them); context
	// sources are always re-owned.
	Owners bool
	temps  []string
}

// Source is one source operand and what it matched.
type Source struct {
	Arg    string  // the operand as given (expanded)
	URL    bool    // an ADD http(s) source (never extracted)
	Items  []*Item // what it matched, in name order
	Remote *Download
}

// Item is one matched file or directory.
type Item struct {
	Tree  *Tree
	Match string // the path matched, tree-relative, before symlinks are followed
	Path  string // the path after following symlinks (the item's own only): what is read
	Name  string // base name of Match: what a file source is called under a directory destination
	Rel   string // with --parents, Match relative to the pivot; else Name
	Dir   bool
	// Entries are what is copied: for a file its one entry (Rel ""), for a directory the
	// entries below it that the ignore rules and --exclude keep, in walk order (a
	// directory before what it holds, names in byte order), the directory itself not included.
	Entries []Entry
	// Parents are, with --parents, the directories between the pivot and Match, outermost
	// first (Rel relative to the pivot).
	Parents []Entry

	parents bool // resolved with --parents
}

// Entry is one file, directory, symlink or device to copy, with the lstat of its source.
type Entry struct {
	Rel             string // slash-separated, relative to the item ("" for a file item)
	Mode            uint32 // st_mode: type and permission bits
	UID, GID        uint32
	Size            int64
	Mtime, Ctime    unix.Timespec
	Dev, Ino, Nlink uint64
	Rdev            uint64
	Link            string // a symlink's target
}

// IsDir, IsRegular and IsSymlink classify the entry.
func (e *Entry) IsDir() bool     { return e.Mode&unix.S_IFMT == unix.S_IFDIR }
func (e *Entry) IsRegular() bool { return e.Mode&unix.S_IFMT == unix.S_IFREG }
func (e *Entry) IsSymlink() bool { return e.Mode&unix.S_IFMT == unix.S_IFLNK }

func entryFromStat(rel string, st *unix.Stat_t) Entry {
	return Entry{Rel: rel, Mode: st.Mode, UID: st.Uid, GID: st.Gid, Size: st.Size, Mtime: st.Mtim, Ctime: st.Ctim, Dev: st.Dev, Ino: st.Ino, Nlink: uint64(st.Nlink), Rdev: st.Rdev}
}

// Items lists every item of every source, in order.
func (s *SourceSet) Items() []*Item {
	var out []*Item
	for _, src := range s.Sources {
		out = append(out, src.Items...)
	}
	return out
}

// Close removes what ADD downloaded for the set.
func (s *SourceSet) Close() error {
	var first error
	for _, src := range s.Sources {
		if src.Remote != nil && src.Remote.tree != nil {
			src.Remote.tree.Close()
			src.Remote.tree = nil
		}
	}
	for _, d := range s.temps {
		if err := os.RemoveAll(d); err != nil && first == nil {
			first = err
		}
	}
	s.temps = nil
	return first
}

func isURL(s string) bool { return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") }

func hasMeta(s string) bool { return strings.ContainsAny(s, `*?[\`) }

// Resolve matches the sources of one COPY or ADD in the tree: each operand is a path or a
// glob (path.Match per component), relative to the tree's root whether or not it starts with
// "/"; ".." may not climb out (an error, "COPY source outside the build context"). In the
// build context a path the ignore rules exclude is not there (a glob skips it, a path is an
// error), and a directory's excluded entries are left out, without reading excluded
// directories no `!` exception could re-include from. An operand that matches nothing is an
// error (as buildah: BuildKit lets an empty wildcard pass). A source that is a symlink is
// followed (inside the tree: out of the context it is an error).
func (t *Tree) Resolve(ctx context.Context, srcs []string, opts ResolveOptions) (*SourceSet, error) {
	ins := opts.Instruction
	if ins == "" {
		ins = "COPY"
	}
	set := &SourceSet{Instruction: ins, Owners: !t.context}
	excl, err := NewIgnore(opts.Excludes)
	if err != nil {
		return nil, fmt.Errorf("%s --exclude: %w", ins, err)
	}
	if opts.Checksum != "" && (len(srcs) != 1 || !isURL(srcs[0])) {
		return nil, fmt.Errorf("%s --checksum: %w: a checksum needs a single http(s) source", ins, errdef.ErrInvalidArgument)
	}
	for _, src := range srcs {
		if isURL(src) {
			if opts.Fetcher == nil {
				return nil, fmt.Errorf("%s %s: %w: a source can't be a URL for COPY", ins, src, errdef.ErrInvalidArgument)
			}
			dl, err := opts.Fetcher.Fetch(ctx, src, opts.Checksum)
			if err != nil {
				set.Close()
				return nil, err
			}
			set.temps = append(set.temps, dl.dir)
			it, err := dl.item()
			if err != nil {
				set.Close()
				return nil, err
			}
			set.Sources = append(set.Sources, Source{Arg: src, URL: true, Items: []*Item{it}, Remote: dl})
			continue
		}
		items, err := t.resolveOne(ctx, ins, src, opts.Parents, excl)
		if err != nil {
			set.Close()
			return nil, err
		}
		set.Sources = append(set.Sources, Source{Arg: src, Items: items})
	}
	return set, nil
}

// cleanSource turns an operand into a tree-relative path ("" for the root).
func (t *Tree) cleanSource(ins, src string) (string, error) {
	c := path.Clean(src)
	if path.IsAbs(c) {
		c = strings.TrimPrefix(c, "/")
	} else if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("%s %s: %w: %s source outside the %s", ins, src, errdef.ErrUnsafePath, ins, t.Name)
	}
	if c == "." {
		c = ""
	}
	return c, nil
}

func (t *Tree) resolveOne(ctx context.Context, ins, src string, parents bool, excl *Ignore) ([]*Item, error) {
	pivot, pattern := "", src
	if parents {
		if a, b, ok := strings.Cut(src, "/./"); ok {
			pivot, pattern = a, b
		} else if strings.HasPrefix(src, "./") {
			pattern = src
		}
	}
	pv, err := t.cleanSource(ins, pivot)
	if err != nil {
		return nil, err
	}
	pat, err := t.cleanSource(ins, pattern)
	if err != nil {
		return nil, err
	}
	full := path.Join(pv, pat)
	if pv != "" && full != pv && !strings.HasPrefix(full, pv+"/") {
		return nil, fmt.Errorf("%s %s: %w: %s source outside the %s", ins, src, errdef.ErrUnsafePath, ins, t.Name)
	}
	glob := hasMeta(pat) || hasMeta(pv)
	var cands []string
	if glob {
		if cands, err = t.glob(full); err != nil {
			return nil, fmt.Errorf("%s %s: %w", ins, src, err)
		}
	} else {
		cands = []string{full}
	}
	var items []*Item
	excluded := 0
	for _, c := range cands {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		it, skip, err := t.resolveItem(ins, src, c, glob)
		if err != nil {
			return nil, err
		}
		if skip {
			excluded++
			continue
		}
		it.Rel = it.Name
		if parents {
			rel := strings.TrimPrefix(strings.TrimPrefix(c, pv), "/")
			if rel == "" {
				rel = "."
			}
			it.Rel, it.parents = rel, true
			if it.Parents, err = t.parentEntries(pv, rel, it.Dir); err != nil {
				return nil, fmt.Errorf("%s %s: %w", ins, src, err)
			}
		}
		// --exclude of the item itself, by its path below the pivot (its name without one)
		if !excl.empty() && c != "" {
			rel := it.Rel
			if !parents {
				rel = it.Name
			}
			if x, err := excl.Excluded(rel); err != nil {
				return nil, fmt.Errorf("%s --exclude: %w", ins, err)
			} else if x && !(it.Dir && excl.MayIncludeBelow(rel)) {
				excluded++
				continue
			}
		}
		if it.Dir {
			if err := t.walk(ctx, it, excl); err != nil {
				return nil, fmt.Errorf("%s %s: %w", ins, src, err)
			}
		}
		items = append(items, it)
	}
	if len(items) == 0 {
		why := ""
		if excluded > 0 {
			why = fmt.Sprintf(" (%d excluded", excluded)
			if t.ignore != nil && t.ignore.File != "" {
				why += " by " + t.ignore.File + " or --exclude"
			}
			why += ")"
		}
		return nil, fmt.Errorf("%s %s: %w: no such file or directory in the %s%s", ins, src, errdef.ErrNotFound, t.Name, why)
	}
	return items, nil
}

// resolveItem looks one candidate path up: skip is true when the ignore rules exclude it
// (then a non-glob operand is an error).
func (t *Tree) resolveItem(ins, src, c string, glob bool) (*Item, bool, error) {
	notFound := func(why string) error {
		return fmt.Errorf("%s %s: %w: %s in the %s%s", ins, src, errdef.ErrNotFound, "no such file or directory", t.Name, why)
	}
	if t.context && c != "" {
		x, err := t.ignore.Excluded(c)
		if err != nil {
			return nil, false, fmt.Errorf("%s %s: match ignore rules: %w", ins, src, err)
		}
		if x && !t.ignore.MayIncludeBelow(c) {
			if glob {
				return nil, true, nil
			}
			return nil, false, notFound(" (excluded by " + t.ignore.File + ")")
		}
	}
	fd, err := t.openat(c, unix.O_PATH, 0)
	if err != nil {
		switch {
		case errors.Is(err, unix.EXDEV):
			return nil, false, fmt.Errorf("%s %s: %w: %s source outside the %s: %s is a symlink that leads out of it", ins, src, errdef.ErrUnsafePath, ins, t.Name, c)
		case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR):
			return nil, false, notFound("")
		}
		return nil, false, fmt.Errorf("%s %s: open %s: %w", ins, src, c, err)
	}
	defer unix.Close(fd)
	real, err := fdPath(fd)
	if err != nil {
		return nil, false, fmt.Errorf("%s %s: %w", ins, src, err)
	}
	resolved := ""
	if real != t.real {
		if !strings.HasPrefix(real, strings.TrimSuffix(t.real, "/")+"/") {
			return nil, false, fmt.Errorf("%s %s: %w: %s source outside the %s", ins, src, errdef.ErrUnsafePath, ins, t.Name)
		}
		resolved = strings.TrimPrefix(real, strings.TrimSuffix(t.real, "/")+"/")
	}
	if t.context && resolved != c && resolved != "" {
		// a symlink to an excluded file does not bring it in
		if x, err := t.ignore.Excluded(resolved); err == nil && x && !t.ignore.MayIncludeBelow(resolved) {
			if glob {
				return nil, true, nil
			}
			return nil, false, notFound(" (its target " + resolved + " is excluded by " + t.ignore.File + ")")
		}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, false, fmt.Errorf("%s %s: stat: %w", ins, src, err)
	}
	name := path.Base(c)
	if c == "" {
		name = "."
	}
	it := &Item{Tree: t, Match: c, Path: resolved, Name: name, Dir: st.Mode&unix.S_IFMT == unix.S_IFDIR}
	if !it.Dir {
		e := entryFromStat("", &st)
		if e.Mode&unix.S_IFMT == unix.S_IFSOCK {
			return nil, false, fmt.Errorf("%s %s: %w: a socket cannot be copied", ins, src, errdef.ErrUnsupported)
		}
		it.Entries = []Entry{e}
	}
	return it, false, nil
}

// parentEntries stats the directories between the pivot and rel (rel itself when self).
func (t *Tree) parentEntries(pivot, rel string, self bool) ([]Entry, error) {
	var out []Entry
	if rel == "." {
		return nil, nil
	}
	comps := strings.Split(rel, "/")
	last := len(comps) - 1
	if self {
		last++
	}
	for i := 1; i <= last; i++ {
		r := strings.Join(comps[:i], "/")
		fd, err := t.openat(path.Join(pivot, r), unix.O_PATH|unix.O_DIRECTORY, 0)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", r, err)
		}
		var st unix.Stat_t
		err = unix.Fstat(fd, &st)
		unix.Close(fd)
		if err != nil {
			return nil, err
		}
		out = append(out, entryFromStat(r, &st))
	}
	return out, nil
}

// glob expands a pattern one component at a time, in name order.
func (t *Tree) glob(pattern string) ([]string, error) {
	cur := []string{""}
	for _, c := range strings.Split(pattern, "/") {
		if c == "" || c == "." {
			continue
		}
		var next []string
		if !hasMeta(c) {
			for _, p := range cur {
				next = append(next, path.Join(p, c))
			}
			cur = next
			continue
		}
		if _, err := path.Match(c, ""); err != nil {
			return nil, fmt.Errorf("%w: pattern %q: %v", errdef.ErrInvalidArgument, pattern, err)
		}
		for _, p := range cur {
			names, err := t.readDirNames(p)
			if err != nil {
				if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.EXDEV) {
					continue
				}
				return nil, err
			}
			for _, n := range names {
				if ok, _ := path.Match(c, n); ok {
					next = append(next, path.Join(p, n))
				}
			}
		}
		cur = next
	}
	return cur, nil
}

func (t *Tree) readDirNames(rel string) ([]string, error) {
	fd, err := t.openat(rel, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}

// walk lists the entries of a directory item, depth first, names in order, pruning what the
// ignore rules and --exclude leave out.
func (t *Tree) walk(ctx context.Context, it *Item, excl *Ignore) error {
	fd, err := t.openat(it.Path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, unix.RESOLVE_NO_SYMLINKS)
	if err != nil {
		return fmt.Errorf("open %s: %w", it.Path, err)
	}
	w := &walker{ctx: ctx, t: t, it: it, excl: excl}
	var ign patternmatcher.MatchInfo
	if t.context && !t.ignore.empty() && it.Path != "" {
		_, ign, err = t.ignore.match(it.Path, patternmatcher.MatchInfo{})
		if err != nil {
			unix.Close(fd)
			return err
		}
	}
	return w.dir(fd, "", ign, patternmatcher.MatchInfo{})
}

// dirsRead counts the directories walks have read (tests check what a walk skips).
var dirsRead int64

type walker struct {
	ctx     context.Context
	t       *Tree
	it      *Item
	excl    *Ignore
	pending []Entry // excluded directories whose entries are emitted only if something below them is
	n       int
}

func (w *walker) emit(e Entry) {
	for _, p := range w.pending {
		w.it.Entries = append(w.it.Entries, p)
	}
	w.pending = w.pending[:0]
	w.it.Entries = append(w.it.Entries, e)
}

// dir walks the open directory fd (closed on return), rel below the item.
func (w *walker) dir(fd int, rel string, ign, ex patternmatcher.MatchInfo) error {
	atomic.AddInt64(&dirsRead, 1)
	f := os.NewFile(uintptr(fd), rel)
	names, err := f.Readdirnames(-1)
	if err != nil {
		f.Close()
		return fmt.Errorf("read directory %s: %w", path.Join(w.it.Path, rel), err)
	}
	defer f.Close()
	sort.Strings(names)
	for _, name := range names {
		if w.n++; w.n&1023 == 0 {
			if err := w.ctx.Err(); err != nil {
				return err
			}
		}
		crel := path.Join(rel, name)
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue // gone while we read
			}
			return fmt.Errorf("stat %s: %w", path.Join(w.it.Path, crel), err)
		}
		isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
		cign, cex := ign, ex
		excluded := false
		if w.t.context && !w.t.ignore.empty() {
			ctxRel := path.Join(w.it.Path, crel)
			x, info, err := w.t.ignore.match(ctxRel, ign)
			if err != nil {
				return err
			}
			cign = info
			if x {
				if !isDir || !w.t.ignore.MayIncludeBelow(ctxRel) {
					continue
				}
				excluded = true
			}
		}
		if !w.excl.empty() {
			x, info, err := w.excl.match(crel, ex)
			if err != nil {
				return err
			}
			cex = info
			if x {
				if !isDir || !w.excl.MayIncludeBelow(crel) {
					continue
				}
				excluded = true
			}
		}
		e := entryFromStat(crel, &st)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFSOCK:
			continue // buildah and BuildKit skip sockets
		case unix.S_IFLNK:
			buf := make([]byte, unix.PathMax)
			n, err := unix.Readlinkat(fd, name, buf)
			if err != nil {
				return fmt.Errorf("readlink %s: %w", path.Join(w.it.Path, crel), err)
			}
			e.Link = string(buf[:n])
		}
		if !isDir {
			if !excluded {
				w.emit(e)
			}
			continue
		}
		depth := len(w.pending)
		if excluded {
			w.pending = append(w.pending, e)
		} else {
			w.emit(e)
		}
		cfd, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return fmt.Errorf("open %s: %w", path.Join(w.it.Path, crel), err)
		}
		if err := w.dir(cfd, crel, cign, cex); err != nil {
			return err
		}
		if len(w.pending) > depth {
			w.pending = w.pending[:depth] // nothing below was kept
		}
	}
	return nil
}
