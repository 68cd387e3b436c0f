package layer

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"strconv"
	"strings"

	digest "github.com/opencontainers/go-digest"

	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/internal/rootfs"
)

// Apply in the order of layer.md "Applying Changesets": the archive is read entry by entry;
// each entry is checked (limits, names), then is a whiteout (whiteout.go) or a path this layer
// writes in its parent directory (dirstack.go, entries.go); attributes (attrs.go) of
// directories are set once their children are in place.

const nameMax = 255

type applier struct {
	ctx     context.Context
	root    *rootfs.Root
	opts    Options
	lim     Limits
	pipe    *pipe
	in      *tarInput        // what the tar reader reads: the pipe, and what sparse entries need of it
	sparse  *sparseMap       // the current entry's layout when it is sparse and its data not yet read
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
	a := newApplier(ctx, root, p, opts, lim)
	defer a.flush()
	if err := a.entriesOf(tar.NewReader(a.in)); err != nil {
		return Stats{}, err
	}
	return a.finish()
}

func newApplier(ctx context.Context, root *rootfs.Root, p *pipe, opts Options, lim Limits) *applier {
	return &applier{
		ctx: ctx, root: root, opts: opts, lim: lim, pipe: p, in: &tarInput{p: p},
		marks: make(map[uint64]uint8), seed: maphash.MakeSeed(), dirs: make(map[string]*dirMeta),
		deep: openDir{fd: -1}, euid: os.Geteuid(), egid: os.Getegid(), umask: currentUmask(),
		buf: make([]byte, 1<<20),
	}
}

// entriesOf applies every entry of the archive tr reads (from a.in).
func (a *applier) entriesOf(tr *tar.Reader) error {
	for {
		if a.entries&63 == 0 {
			if err := a.ctx.Err(); err != nil {
				return err
			}
		}
		hdr, err := a.in.next(tr)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return a.readError(err)
		}
		var sparse *sparseMap
		if sparse, err = a.in.sparseOf(hdr); err == nil {
			a.sparse = sparse
			err = a.entry(hdr, tr)
		}
		if err == nil {
			err = a.skipContent(tr, sparse != nil)
		}
		if err != nil {
			return fmt.Errorf("apply %q: %w", hdr.Name, err)
		}
	}
}

// skipContent passes over what the entry holds and was not applied (the content of a skipped
// entry), so that the tar reader reads only headers when it looks for the next entry. The
// content of a sparse entry is never read through tr (which would produce its holes).
func (a *applier) skipContent(tr *tar.Reader, sparse bool) error {
	if m := a.sparse; m != nil {
		a.sparse = nil
		return a.skipSparse(m)
	}
	if sparse {
		return nil // its data was taken from the stream: tr owes nothing more
	}
	if _, err := io.CopyBuffer(io.Discard, tr, a.buf); err != nil {
		return fmt.Errorf("read content: %w", err)
	}
	return nil
}

// readError describes a failure to read the next entry's header.
func (a *applier) readError(err error) error {
	if why := a.in.diagnose(); why != "" {
		return fmt.Errorf("read layer entry %d: %w: %s", a.entries+1, errdef.ErrInvalidArgument, why)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("read layer entry %d: %w: archive is truncated", a.entries+1, errdef.ErrInvalidArgument)
	}
	if errors.Is(err, errdef.ErrTooLarge) || errors.Is(err, errdef.ErrInvalidArgument) {
		return fmt.Errorf("read layer entry %d: %w", a.entries+1, err)
	}
	return fmt.Errorf("read layer entry %d: %w: %v", a.entries+1, errdef.ErrInvalidArgument, err)
}

// finish applies the directory attributes, reads the rest of the stream and checks the diffID.
func (a *applier) finish() (Stats, error) {
	if err := a.finishDirs(); err != nil {
		return Stats{}, err
	}
	p := a.pipe
	if err := p.drain(); err != nil {
		return Stats{}, err
	}
	st := Stats{DiffID: digest.NewDigest(digest.SHA256, p.h), Entries: a.entries, Bytes: p.n}
	if a.opts.DiffID != "" && a.opts.DiffID != st.DiffID {
		return st, fmt.Errorf("apply layer: %w: uncompressed content hashes to %s, diffID is %s", errdef.ErrDigestMismatch, st.DiffID, a.opts.DiffID)
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

// entry applies one entry: it is counted and its names checked; a whiteout removes what lower
// layers left; any other entry is created in its parent directory, replacing what is there.
func (a *applier) entry(hdr *tar.Header, r io.Reader) error {
	a.entries++
	if a.entries > a.lim.MaxEntries {
		return fmt.Errorf("%w: more than %d entries in one layer (limit)", errdef.ErrTooLarge, a.lim.MaxEntries)
	}
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	if err := a.checkNames(hdr); err != nil {
		return err
	}
	p := rootfs.Clean(hdr.Name)
	dir, base := splitPath(p)
	if skip, err := checkParents(dir, base); skip || err != nil {
		return err
	}
	if strings.HasPrefix(base, whiteoutPrefix) {
		return a.whiteoutEntry(dir, base)
	}
	if p == "." {
		if hdr.Typeflag != tar.TypeDir {
			return fmt.Errorf("%w: a %s entry may not replace the root", errdef.ErrUnsafePath, typeName(hdr.Typeflag))
		}
		return a.deferDir(p, hdr)
	}
	if err := checkType(hdr.Typeflag); err != nil {
		return err
	}
	return a.place(hdr, r, p, dir, base)
}

// checkNames holds the entry's name and link target to the limits; neither may hold a NUL.
func (a *applier) checkNames(hdr *tar.Header) error {
	if len(hdr.Name) > a.lim.MaxNameLength {
		return invalid("name of %d bytes is over the %d byte limit", len(hdr.Name), a.lim.MaxNameLength)
	}
	if len(hdr.Linkname) > a.lim.MaxNameLength {
		return invalid("link target of %d bytes is over the %d byte limit", len(hdr.Linkname), a.lim.MaxNameLength)
	}
	if strings.IndexByte(hdr.Name, 0) >= 0 || strings.IndexByte(hdr.Linkname, 0) >= 0 {
		return invalid("name or link target holds a NUL byte")
	}
	return nil
}

// checkParents checks the components of a cleaned entry path (dir/base): each within NAME_MAX,
// none a whiteout. skip is set for entries inside AUFS metadata (.wh..wh.plnk/…).
func checkParents(dir, base string) (skip bool, err error) {
	if dir != "." {
		for _, c := range strings.Split(dir, "/") {
			if len(c) > nameMax {
				return false, invalid("path component of %d bytes is over NAME_MAX", len(c))
			}
			if strings.HasPrefix(c, whiteoutMeta) {
				return true, nil
			}
			if strings.HasPrefix(c, whiteoutPrefix) {
				return false, invalid("whiteout %q used as a directory", c)
			}
		}
	}
	if len(base) > nameMax {
		return false, invalid("name component of %d bytes is over NAME_MAX", len(base))
	}
	return false, nil
}

// checkType refuses the entry types a layer may not hold.
func checkType(t byte) error {
	switch t {
	case tar.TypeReg, tar.TypeRegA, tar.TypeCont, tar.TypeGNUSparse:
	case tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	default:
		return fmt.Errorf("%w: tar entry type %q", errdef.ErrUnsupported, t)
	}
	return nil
}

// place marks p (dir/base) as written by this layer and creates the entry in its parent
// directory, by type.
func (a *applier) place(hdr *tar.Header, r io.Reader, p, dir, base string) error {
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
		return a.dir(pfd, p, base, hdr)
	case tar.TypeSymlink:
		return a.symlink(pfd, base, hdr, uid, gid)
	case tar.TypeLink:
		return a.hardlink(pfd, base, p, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return a.device(pfd, base, hdr, uid, gid)
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
