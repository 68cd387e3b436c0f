package copy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/image"
)

// DefaultConcurrency is the number of blobs copied at once when Options.Concurrency is 0: as
// many as skopeo, so that a typical image's layers all start at once (with 4, one of bookworm's
// five blobs waited, sometimes the biggest).
const DefaultConcurrency = 6

// ErrSkipDesc, returned by Options.PreCopy, skips a descriptor (and, for a manifest or index,
// everything below it) without error.
var ErrSkipDesc = errors.New("skip descriptor")

// Source is what Copy reads from: content that can be fetched, probed and resolved.
type Source interface {
	content.ReadOnlyStorage
	content.Resolver
}

// Options steer a copy. The zero value copies the host platform's image (see Platform) with
// DefaultConcurrency.
type Options struct {
	// Concurrency bounds the blobs (and documents) transferred at once; 0 means
	// DefaultConcurrency.
	Concurrency int

	// Platform selects one image manifest when the source reference names an index (nested
	// indexes are searched, see image.SelectManifest); that manifest is what is copied and
	// named at the destination. When Platform is nil and AllPlatforms is false, the host's
	// platform (image.DefaultPlatform) is selected, as skopeo does. A reference that names a
	// manifest is copied as it is in every case.
	Platform *ocispec.Platform
	// AllPlatforms copies an index whole, every platform included. It may not be combined
	// with Platform.
	AllPlatforms bool

	// Referrers also copies, for every manifest and index copied, the manifests whose subject
	// it is (and their graphs), when the source is a content.ReferrerLister. They are not
	// named at the destination: a registry lists them by subject, a layout keeps them for it.
	Referrers bool

	// PreCopy is called before a descriptor is copied (not when the destination already has
	// it). Returning ErrSkipDesc skips it and, for a document, what lies below it.
	PreCopy func(ctx context.Context, desc ocispec.Descriptor) error
	// PostCopy is called once a descriptor is stored at the destination.
	PostCopy func(ctx context.Context, desc ocispec.Descriptor) error
	// OnCopySkipped is called for a descriptor the destination already has (nothing below it
	// is visited), and for a non-distributable layer the source does not hold.
	OnCopySkipped func(ctx context.Context, desc ocispec.Descriptor) error
	// MountFrom returns repositories the blob desc may be mounted from when the destination is
	// a content.Mounter (a registry's cross-repository mount). The first mount that succeeds
	// replaces the transfer; when all fail, the blob is copied.
	MountFrom func(ctx context.Context, desc ocispec.Descriptor) ([]string, error)
	// OnMounted is called after a blob was mounted instead of copied.
	OnMounted func(ctx context.Context, desc ocispec.Descriptor) error

	// Progress, when set, reports each descriptor the copy learns of (Expected: the root, the
	// children of every document it reads, the referrers it lists), the bytes of each transfer
	// as they arrive (Transferring; Done grows to Descriptor.Size) and the end of every
	// descriptor's copy (Copied, Skipped, Mounted). It is called from several goroutines at
	// once.
	Progress func(Progress)
}

// State is where one descriptor's copy stands.
type State int

const (
	// Transferring: bytes are moving; Done says how many so far.
	Transferring State = iota
	// Copied: stored at the destination.
	Copied
	// Skipped: the destination already had it (or PreCopy skipped it).
	Skipped
	// Mounted: made available at the destination by a mount.
	Mounted
	// Expected: the copy will visit it. Reported once per digest, before any other report of
	// it, as soon as the copy knows of it: the root when the copy starts, a document's
	// children once the document is read (nothing below a document the destination already
	// has), a referrer once listed. Copied, Skipped or Mounted follows unless the copy fails,
	// so that what is expected and not finished yet is what remains to do (the total of a
	// progress bar), without a walk of its own.
	Expected
)

// Progress is one progress report.
type Progress struct {
	Descriptor ocispec.Descriptor
	Done       int64
	State      State
}

// Copy copies the graph that srcRef names in src to dst and names its root dstRef there. It
// returns the root descriptor copied: the one srcRef resolves to, or the platform's manifest
// picked out of it (see Options.Platform). An empty dstRef names the root by its digest
// (Tag(root, digest)), which in a layout is an untagged index.json entry.
func Copy(ctx context.Context, src Source, srcRef string, dst content.Target, dstRef string, opts Options) (ocispec.Descriptor, error) {
	if err := opts.check(srcRef); err != nil {
		return ocispec.Descriptor{}, err
	}
	root, err := src.Resolve(ctx, srcRef)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("copy %s: %w", srcRef, err)
	}
	return copyRoot(ctx, src, srcRef, root, dst, dstRef, opts)
}

// CopyRoot is Copy from a root the caller has resolved in src already (to name the copy, or
// to show it): it does not resolve again, which for a registry source is one request less.
func CopyRoot(ctx context.Context, src content.ReadOnlyStorage, root ocispec.Descriptor, dst content.Target, dstRef string, opts Options) (ocispec.Descriptor, error) {
	what := root.Digest.String()
	if err := opts.check(what); err != nil {
		return ocispec.Descriptor{}, err
	}
	return copyRoot(ctx, src, what, root, dst, dstRef, opts)
}

func (o Options) check(what string) error {
	if o.Platform != nil && o.AllPlatforms {
		return fmt.Errorf("copy %s: %w: a platform and all platforms both asked for", what, errdef.ErrInvalidArgument)
	}
	return nil
}

// copyRoot selects the platform's manifest out of an index root (unless AllPlatforms), copies
// its graph and names it.
func copyRoot(ctx context.Context, src content.ReadOnlyStorage, what string, root ocispec.Descriptor, dst content.Target, dstRef string, opts Options) (ocispec.Descriptor, error) {
	if err := content.ValidateDescriptor(root); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("copy %s: %w", what, err)
	}
	if image.IsIndex(root.MediaType) && !opts.AllPlatforms {
		sel, err := image.SelectManifest(ctx, src, root, opts.Platform)
		if err != nil {
			if opts.Platform == nil && errors.Is(err, errdef.ErrNotFound) {
				err = fmt.Errorf("%w (copy every platform, or choose one)", err)
			}
			return ocispec.Descriptor{}, fmt.Errorf("copy %s: %w", what, err)
		}
		root = sel
	}
	ref := dstRef
	if ref == "" {
		ref = root.Digest.String()
	}
	tagged, err := copyGraph(ctx, src, dst, root, opts, ref)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("copy %s: %w", what, err)
	}
	if tagged {
		return root, nil
	}
	if err := dst.Tag(ctx, root, ref); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("copy %s: %w", what, err)
	}
	return root, nil
}

// CopyGraph copies root and everything it references from src to dst, children first. It
// names nothing. Options.Platform and AllPlatforms do not apply: the graph is copied whole.
func CopyGraph(ctx context.Context, src content.ReadOnlyStorage, dst content.Storage, root ocispec.Descriptor, opts Options) error {
	_, err := copyGraph(ctx, src, dst, root, opts, "")
	return err
}

// copyGraph is CopyGraph; with rootTag set and a content.TagPusher destination, the root
// document is pushed as rootTag (tagged reports it) instead of by digest.
func copyGraph(ctx context.Context, src content.ReadOnlyStorage, dst content.Storage, root ocispec.Descriptor, opts Options, rootTag string) (tagged bool, err error) {
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	c := &copier{src: src, dst: dst, opts: opts, sem: make(chan struct{}, opts.Concurrency), tasks: map[digest.Digest]*task{},
		expected: map[digest.Digest]bool{}, cancel: cancel}
	if rl, ok := src.(content.ReferrerLister); ok && opts.Referrers {
		c.referrers = rl
	}
	if tp, ok := dst.(content.TagPusher); ok && rootTag != "" && !strings.Contains(rootTag, ":") {
		c.root, c.rootTag, c.tagPusher = root.Digest, rootTag, tp
	}
	c.expect(root)
	err = c.copy(ctx, root)
	c.wg.Wait()
	if err == nil {
		err = context.Cause(ctx) // a referrer copied in the background failed, or ctx ended
	}
	return c.rootTagged, err
}

type task struct {
	done chan struct{}
	err  error
}

type copier struct {
	src       content.ReadOnlyStorage
	dst       content.Storage
	opts      Options
	referrers content.ReferrerLister
	sem       chan struct{}
	cancel    context.CancelCauseFunc
	// root is pushed as rootTag through tagPusher (rootTagged once done).
	root       digest.Digest
	rootTag    string
	tagPusher  content.TagPusher
	rootTagged bool
	wg         sync.WaitGroup // referrer copies started in the background

	mu       sync.Mutex
	tasks    map[digest.Digest]*task
	expected map[digest.Digest]bool // reported Expected
}

// copy copies desc once per digest: concurrent callers for the same digest wait for the first.
func (c *copier) copy(ctx context.Context, desc ocispec.Descriptor) error {
	c.mu.Lock()
	t, ok := c.tasks[desc.Digest]
	if !ok {
		t = &task{done: make(chan struct{})}
		c.tasks[desc.Digest] = t
	}
	c.mu.Unlock()
	if ok {
		select {
		case <-t.done:
			return t.err
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	t.err = c.copyNode(ctx, desc)
	if t.err != nil {
		c.cancel(t.err)
	}
	close(t.done)
	return t.err
}

func (c *copier) acquire(ctx context.Context) error {
	select {
	case c.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (c *copier) release() { <-c.sem }

func (c *copier) progress(p Progress) {
	if c.opts.Progress != nil {
		c.opts.Progress(p)
	}
}

// expect reports the descriptors not reported Expected yet.
func (c *copier) expect(descs ...ocispec.Descriptor) {
	if c.opts.Progress == nil {
		return
	}
	for _, d := range descs {
		c.mu.Lock()
		seen := c.expected[d.Digest]
		c.expected[d.Digest] = true
		c.mu.Unlock()
		if !seen {
			c.progress(Progress{Descriptor: d, State: Expected})
		}
	}
}

func (c *copier) skipped(ctx context.Context, desc ocispec.Descriptor) error {
	c.progress(Progress{Descriptor: desc, Done: desc.Size, State: Skipped})
	if c.opts.OnCopySkipped != nil {
		return c.opts.OnCopySkipped(ctx, desc)
	}
	return nil
}

func (c *copier) copyNode(ctx context.Context, desc ocispec.Descriptor) error {
	if err := content.ValidateDescriptor(desc); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	exists, err := c.dst.Exists(ctx, desc)
	if err != nil {
		return fmt.Errorf("probe destination for %s: %w", desc.Digest, err)
	}
	if exists {
		if err := c.skipped(ctx, desc); err != nil {
			return err
		}
		if err := c.tagPresentRoot(ctx, desc); err != nil {
			return err
		}
		return c.copyReferrers(ctx, desc)
	}
	if c.opts.PreCopy != nil {
		if err := c.opts.PreCopy(ctx, desc); err != nil {
			if errors.Is(err, ErrSkipDesc) {
				c.progress(Progress{Descriptor: desc, State: Skipped})
				return nil
			}
			return err
		}
	}
	if image.IsManifest(desc.MediaType) || image.IsIndex(desc.MediaType) {
		err = c.copyDocument(ctx, desc)
	} else {
		err = c.copyBlob(ctx, desc)
	}
	if errors.Is(err, ErrSkipDesc) {
		return nil
	}
	if err != nil {
		return err
	}
	if c.opts.PostCopy != nil {
		if err := c.opts.PostCopy(ctx, desc); err != nil {
			return err
		}
	}
	return c.copyReferrers(ctx, desc)
}

// copyDocument copies a manifest or index: its children first (in parallel), then itself.
func (c *copier) copyDocument(ctx context.Context, desc ocispec.Descriptor) error {
	if err := c.acquire(ctx); err != nil {
		return err
	}
	body, err := content.ReadAll(ctx, c.src, desc, 0)
	c.release()
	if err != nil {
		return fmt.Errorf("read %s %s: %w", desc.MediaType, desc.Digest, err)
	}
	kids, err := image.Children(desc, body)
	if err != nil {
		return err
	}
	c.expect(kids...)
	if err := c.copyAll(ctx, kids); err != nil {
		return err
	}
	if err := c.acquire(ctx); err != nil {
		return err
	}
	defer c.release()
	c.progress(Progress{Descriptor: desc, State: Transferring})
	if c.isTaggedRoot(desc) {
		if err := c.pushRootTag(ctx, desc, body); err != nil {
			return err
		}
	} else if err := c.dst.Push(ctx, desc, bytes.NewReader(body)); err != nil {
		return fmt.Errorf("push %s %s: %w", desc.MediaType, desc.Digest, err)
	}
	c.progress(Progress{Descriptor: desc, Done: desc.Size, State: Copied})
	return nil
}

// isTaggedRoot reports whether desc is the root that goes to the destination as its tag.
func (c *copier) isTaggedRoot(desc ocispec.Descriptor) bool {
	return c.tagPusher != nil && desc.Digest == c.root
}

// pushRootTag stores the root document body as the tag (content.TagPusher). Only the
// goroutine that copies the root (tasks) calls it; Copy reads rootTagged after wg.
func (c *copier) pushRootTag(ctx context.Context, desc ocispec.Descriptor, body []byte) error {
	if err := c.tagPusher.PushTag(ctx, desc, bytes.NewReader(body), c.rootTag); err != nil {
		return fmt.Errorf("push %s %s as %s: %w", desc.MediaType, desc.Digest, c.rootTag, err)
	}
	c.rootTagged = true
	return nil
}

// tagPresentRoot names a root the destination already holds with its tag, in one request
// with the document read from the source (a registry's Tag would read it from the
// destination first).
func (c *copier) tagPresentRoot(ctx context.Context, desc ocispec.Descriptor) error {
	if !c.isTaggedRoot(desc) {
		return nil
	}
	if err := c.acquire(ctx); err != nil {
		return err
	}
	defer c.release()
	body, err := content.ReadAll(ctx, c.src, desc, 0)
	if err != nil {
		return fmt.Errorf("read %s %s: %w", desc.MediaType, desc.Digest, err)
	}
	return c.pushRootTag(ctx, desc, body)
}

// copyAll copies descs concurrently and returns the first error.
func (c *copier) copyAll(ctx context.Context, descs []ocispec.Descriptor) error {
	if len(descs) == 1 {
		return c.copy(ctx, descs[0])
	}
	errs := make([]error, len(descs))
	var wg sync.WaitGroup
	for i, d := range descs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.copy(ctx, d)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	return errors.Join(errs...)
}

// copyBlob copies one blob: a mount when possible, else a verified transfer.
func (c *copier) copyBlob(ctx context.Context, desc ocispec.Descriptor) error {
	if mounted, err := c.mount(ctx, desc); err != nil || mounted {
		return err
	}
	if err := c.acquire(ctx); err != nil {
		return err
	}
	defer c.release()
	rc, err := c.src.Fetch(ctx, desc)
	if err != nil {
		if errors.Is(err, errdef.ErrNotFound) && image.IsNonDistributable(desc.MediaType) {
			// A foreign layer lives at its URLs; the destination does not need it.
			if err := c.skipped(ctx, desc); err != nil {
				return err
			}
			return ErrSkipDesc
		}
		return fmt.Errorf("fetch %s %s: %w", desc.MediaType, desc.Digest, err)
	}
	defer rc.Close()
	var r io.Reader = rc
	if c.opts.Progress != nil {
		r = &progressReader{r: rc, desc: desc, report: c.opts.Progress}
		c.progress(Progress{Descriptor: desc, State: Transferring})
	}
	if err := c.dst.Push(ctx, desc, content.NewVerifyReader(r, desc)); err != nil {
		return fmt.Errorf("copy %s %s: %w", desc.MediaType, desc.Digest, err)
	}
	c.progress(Progress{Descriptor: desc, Done: desc.Size, State: Copied})
	return nil
}

func (c *copier) mount(ctx context.Context, desc ocispec.Descriptor) (bool, error) {
	m, ok := c.dst.(content.Mounter)
	if !ok || c.opts.MountFrom == nil {
		return false, nil
	}
	repos, err := c.opts.MountFrom(ctx, desc)
	if err != nil {
		return false, err
	}
	for _, repo := range repos {
		if err := m.Mount(ctx, desc, repo); err != nil {
			continue // try the next, then copy
		}
		c.progress(Progress{Descriptor: desc, Done: desc.Size, State: Mounted})
		if c.opts.OnMounted != nil {
			if err := c.opts.OnMounted(ctx, desc); err != nil {
				return true, err
			}
		}
		return true, nil
	}
	return false, nil
}

// copyReferrers copies the referrers of a manifest or index (Options.Referrers).
func (c *copier) copyReferrers(ctx context.Context, desc ocispec.Descriptor) error {
	if c.referrers == nil || !(image.IsManifest(desc.MediaType) || image.IsIndex(desc.MediaType)) {
		return nil
	}
	refs, err := c.referrers.Referrers(ctx, desc, "")
	if err != nil {
		if errors.Is(err, errdef.ErrUnsupported) || errors.Is(err, errdef.ErrNotFound) {
			return nil
		}
		return fmt.Errorf("list referrers of %s: %w", desc.Digest, err)
	}
	// Started in the background: a referrer may be an index whose copy waits on desc's
	// graph, and desc's caller must not wait on it in turn.
	c.expect(refs...)
	for _, r := range refs {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			_ = c.copy(ctx, r) // an error cancels the copy and is reported by CopyGraph
		}()
	}
	return nil
}

type progressReader struct {
	r      io.Reader
	desc   ocispec.Descriptor
	done   int64
	report func(Progress)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.done += int64(n)
		p.report(Progress{Descriptor: p.desc, Done: p.done, State: Transferring})
	}
	return n, err
}
