package layout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/errdef"
)

// GCOptions tunes a garbage collection.
type GCOptions struct {
	// KeepNewerThan keeps unreachable blobs modified less than this long ago: a copy into the
	// layout pushes blobs before it tags their root, and a GC running meanwhile must not take
	// them. Zero collects every unreachable blob.
	KeepNewerThan time.Duration
	// IngestMaxAge removes interrupted ingests (in .wharf-ingest) not touched for this long.
	// Zero keeps every ingest. An ingest a live writer holds is never removed.
	IngestMaxAge time.Duration
	// DryRun reports what would be removed and removes nothing.
	DryRun bool
}

// GCResult says what a garbage collection removed (or would remove, for a dry run).
type GCResult struct {
	Removed      []content.Info // blobs
	RemovedBytes int64
	Kept         int // reachable blobs
	Ingests      int // stale ingest files removed
}

// GC removes the blobs nothing in index.json reaches. Reachable is: every index.json entry,
// and recursively every manifest, index, config, layer and subject they name, plus every
// stored manifest whose subject is reachable (a referrer) and what it names. GC holds the
// layout lock, so no tag changes under it. A document that can not be parsed stops the GC
// before anything is removed.
func (l *Layout) GC(ctx context.Context, opts GCOptions) (GCResult, error) {
	defer l.forgetReferrers()
	var res GCResult
	idx, unlock, err := l.lockForGC()
	if err != nil {
		return res, err
	}
	defer unlock()
	m := &marker{l: l, reach: map[digest.Digest]bool{}}
	for _, e := range idx.Manifests {
		if err := m.mark(ctx, e); err != nil {
			return res, fmt.Errorf("gc %s: %w", l.root, err)
		}
	}
	var all []content.Info
	if err := l.store.Walk(ctx, func(i content.Info) error { all = append(all, i); return nil }); err != nil {
		return res, fmt.Errorf("gc %s: %w", l.root, err)
	}
	if err := m.markReferrers(ctx, all); err != nil {
		return res, fmt.Errorf("gc %s: %w", l.root, err)
	}
	if err := l.sweep(ctx, all, m.reach, opts, &res); err != nil {
		return res, err
	}
	if opts.IngestMaxAge > 0 {
		n, err := l.store.RemoveStaleIngests(time.Now().Add(-opts.IngestMaxAge), opts.DryRun)
		res.Ingests = n
		if err != nil {
			return res, fmt.Errorf("gc %s: %w", l.root, err)
		}
	}
	return res, nil
}

// lockForGC takes what a collection needs held — the writers' file exclusively (no copy in
// progress), then the layout lock — and reads index.json under it. unlock releases both.
func (l *Layout) lockForGC() (idx *ocispec.Index, unlock func(), err error) {
	release, err := l.excludeWriters()
	if err != nil {
		return nil, nil, err
	}
	dfd, err := openDir(l.root)
	if err != nil {
		release()
		return nil, nil, err
	}
	unlockDir, err := lock(dfd, l.root)
	if err != nil {
		unix.Close(dfd)
		release()
		return nil, nil, err
	}
	unlock = func() {
		unlockDir()
		unix.Close(dfd)
		release()
	}
	if idx, err = readIndex(dfd, l.root); err != nil {
		unlock()
		return nil, nil, fmt.Errorf("gc %s: %w", l.root, err)
	}
	return idx, unlock, nil
}

// marker marks what a collection keeps.
type marker struct {
	l     *Layout
	reach map[digest.Digest]bool
}

// mark marks d and, for a document, everything it names (a dangling reference holds nothing).
func (m *marker) mark(ctx context.Context, d ocispec.Descriptor) error {
	if m.reach[d.Digest] {
		return nil
	}
	m.reach[d.Digest] = true
	if !isDocument(d.MediaType) {
		return nil
	}
	b, err := m.l.readDoc(ctx, d)
	if errors.Is(err, errdef.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	kids, err := children(d, b)
	if err != nil {
		return err
	}
	for _, k := range kids {
		if err := m.mark(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

// markReferrers marks the stored manifests with a subject (among blobs) whose subject is
// marked, until none is left: a referrer may itself be the subject of another.
func (m *marker) markReferrers(ctx context.Context, blobs []content.Info) error {
	refs, err := m.l.scanReferrers(ctx, blobs, m.reach)
	if err != nil {
		return err
	}
	for changed := true; changed; {
		changed = false
		for _, r := range refs {
			if !m.reach[r.desc.Digest] && m.reach[r.subject] {
				if err := m.mark(ctx, r.desc); err != nil {
					return err
				}
				changed = true
			}
		}
	}
	return nil
}

// sweep removes (or, for a dry run, counts) every blob of all not in reach and not newer than
// opts.KeepNewerThan, recording it in res.
func (l *Layout) sweep(ctx context.Context, all []content.Info, reach map[digest.Digest]bool, opts GCOptions, res *GCResult) error {
	cutoff := time.Now().Add(-opts.KeepNewerThan)
	for _, i := range all {
		if err := ctx.Err(); err != nil {
			return err
		}
		if reach[i.Digest] || opts.KeepNewerThan > 0 && i.UpdatedAt.After(cutoff) {
			res.Kept++
			continue
		}
		if !opts.DryRun {
			if err := l.store.Delete(ctx, i.Digest); err != nil && !errors.Is(err, errdef.ErrNotFound) {
				return fmt.Errorf("gc %s: %w", l.root, err)
			}
		}
		res.Removed = append(res.Removed, i)
		res.RemovedBytes += i.Size
	}
	return nil
}

// storedReferrer is a stored manifest or index that has a subject.
type storedReferrer struct {
	desc    ocispec.Descriptor
	body    []byte
	subject digest.Digest
}

// excludeWriters takes writersFile exclusively (this Layout's own shared hold is converted),
// failing at once when another Layout or process holds it: a copy into the layout is in
// progress, and its pushed blobs are not tagged yet.
func (l *Layout) excludeWriters() (func(), error) {
	l.writersMu.Lock()
	f := l.writers
	own := f != nil
	if !own {
		var err error
		if f, err = l.openWriters(); err != nil {
			l.writersMu.Unlock()
			return nil, fmt.Errorf("gc %s: %w", l.root, err)
		}
	}
	if err := flock(f, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if !own {
			f.Close()
		}
		l.writersMu.Unlock()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("gc %s: %w: another process is writing blobs into the layout (a copy in progress); run gc when it is done", l.root, errdef.ErrInvalidState)
		}
		return nil, fmt.Errorf("gc %s: lock %s: %w", l.root, f.Name(), err)
	}
	return func() {
		if own {
			flock(f, unix.LOCK_SH)
		} else {
			f.Close()
		}
		l.writersMu.Unlock()
	}, nil
}

// scanReferrers finds the stored manifests and indexes that have a subject, among blobs (all
// stored blobs when nil) not in skip.
func (l *Layout) scanReferrers(ctx context.Context, blobs []content.Info, skip map[digest.Digest]bool) ([]storedReferrer, error) {
	if blobs == nil {
		if err := l.store.Walk(ctx, func(i content.Info) error { blobs = append(blobs, i); return nil }); err != nil {
			return nil, err
		}
	}
	var refs []storedReferrer
	for _, i := range blobs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if skip[i.Digest] || i.Size > content.MaxDocumentSize || i.Size < 2 {
			continue
		}
		b, ok := l.maybeJSON(ctx, i)
		if !ok {
			continue
		}
		mt := sniffManifest(b)
		if mt == "" {
			continue
		}
		d := ocispec.Descriptor{MediaType: mt, Digest: i.Digest, Size: i.Size}
		if s := subjectOf(d, b); s != "" {
			refs = append(refs, storedReferrer{desc: d, body: b, subject: s})
		}
	}
	return refs, nil
}

// maybeJSON reads a small blob when it starts like a JSON object.
func (l *Layout) maybeJSON(ctx context.Context, i content.Info) ([]byte, bool) {
	d := ocispec.Descriptor{Digest: i.Digest, Size: i.Size}
	rc, err := l.store.Fetch(ctx, d)
	if err != nil {
		return nil, false
	}
	defer rc.Close()
	var first [1]byte
	if _, err := io.ReadFull(rc, first[:]); err != nil || first[0] != '{' {
		return nil, false
	}
	rest, err := io.ReadAll(io.LimitReader(rc, content.MaxDocumentSize))
	if err != nil {
		return nil, false
	}
	b := append(first[:], rest...)
	if i.Digest.Algorithm().FromBytes(b) != i.Digest {
		return nil, false
	}
	return b, true
}
