package layout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/content/local"
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
	var res GCResult
	dfd, err := openDir(l.root)
	if err != nil {
		return res, err
	}
	defer unix.Close(dfd)
	unlock, err := lock(dfd, l.root)
	if err != nil {
		return res, err
	}
	defer unlock()
	idx, err := readIndex(dfd, l.root)
	if err != nil {
		return res, fmt.Errorf("gc %s: %w", l.root, err)
	}

	reach := map[digest.Digest]bool{}
	var mark func(d ocispec.Descriptor) error
	mark = func(d ocispec.Descriptor) error {
		if reach[d.Digest] {
			return nil
		}
		reach[d.Digest] = true
		if !isDocument(d.MediaType) {
			return nil
		}
		b, err := l.readDoc(ctx, d)
		if errors.Is(err, errdef.ErrNotFound) {
			return nil // a dangling reference holds nothing
		}
		if err != nil {
			return err
		}
		kids, err := children(d, b)
		if err != nil {
			return err
		}
		for _, k := range kids {
			if err := mark(k); err != nil {
				return err
			}
		}
		return nil
	}
	for _, e := range idx.Manifests {
		if err := mark(e); err != nil {
			return res, fmt.Errorf("gc %s: %w", l.root, err)
		}
	}

	var all []content.Info
	if err := l.store.Walk(ctx, func(i content.Info) error { all = append(all, i); return nil }); err != nil {
		return res, fmt.Errorf("gc %s: %w", l.root, err)
	}

	// Referrers: stored manifests with a subject, kept when their subject is reachable.
	refs, err := l.scanReferrers(ctx, all, reach)
	if err != nil {
		return res, fmt.Errorf("gc %s: %w", l.root, err)
	}
	for changed := true; changed; {
		changed = false
		for _, r := range refs {
			if !reach[r.desc.Digest] && reach[r.subject] {
				if err := mark(r.desc); err != nil {
					return res, fmt.Errorf("gc %s: %w", l.root, err)
				}
				changed = true
			}
		}
	}

	cutoff := time.Now().Add(-opts.KeepNewerThan)
	for _, i := range all {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if reach[i.Digest] {
			res.Kept++
			continue
		}
		if opts.KeepNewerThan > 0 && i.UpdatedAt.After(cutoff) {
			res.Kept++
			continue
		}
		if !opts.DryRun {
			if err := l.store.Delete(ctx, i.Digest); err != nil && !errors.Is(err, errdef.ErrNotFound) {
				return res, fmt.Errorf("gc %s: %w", l.root, err)
			}
		}
		res.Removed = append(res.Removed, i)
		res.RemovedBytes += i.Size
	}
	if opts.IngestMaxAge > 0 {
		n, err := cleanIngests(dfd, l.root, time.Now().Add(-opts.IngestMaxAge), opts.DryRun)
		res.Ingests = n
		if err != nil {
			return res, fmt.Errorf("gc %s: %w", l.root, err)
		}
	}
	return res, nil
}

// storedReferrer is a stored manifest or index that has a subject.
type storedReferrer struct {
	desc    ocispec.Descriptor
	body    []byte
	subject digest.Digest
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

// cleanIngests removes the files of the ingest directory last modified before cutoff that no
// writer holds (flock).
func cleanIngests(dfd int, root string, cutoff time.Time, dryRun bool) (int, error) {
	dir, err := openIn(dfd, root, local.DefaultIngestDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if errors.Is(err, errdef.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer dir.Close()
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return 0, fmt.Errorf("list %s: %w", dir.Name(), err)
	}
	n := 0
	ifd := int(dir.Fd())
	for _, name := range names {
		var st unix.Stat_t
		if unix.Fstatat(ifd, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			continue
		}
		if !time.Unix(st.Mtim.Unix()).Before(cutoff) {
			continue
		}
		// A writer holds a flock on its .data file; its .state goes with it.
		lockName := name
		if base, ok := strings.CutSuffix(name, ".state"); ok {
			lockName = base + ".data"
		}
		fd, err := unix.Openat(ifd, lockName, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if errors.Is(err, unix.ENOENT) && lockName != name {
			fd, err = unix.Openat(ifd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		}
		if err != nil {
			continue
		}
		if unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) != nil {
			unix.Close(fd) // a live writer holds it
			continue
		}
		if !dryRun {
			if err := unix.Unlinkat(ifd, name, 0); err != nil && !errors.Is(err, os.ErrNotExist) {
				unix.Close(fd)
				return n, fmt.Errorf("remove ingest %s/%s: %w", dir.Name(), name, err)
			}
		}
		unix.Close(fd)
		n++
	}
	if !dryRun {
		_ = unix.Unlinkat(dfd, local.DefaultIngestDir, unix.AT_REMOVEDIR) // only when empty
	}
	return n, nil
}
