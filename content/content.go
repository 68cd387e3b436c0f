package content

import (
	"context"
	"io"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Fetcher reads content by descriptor.
type Fetcher interface {
	// Fetch returns a reader of exactly d.Size bytes of the blob d.Digest. The reader is not
	// verified: wrap it with VerifyReader when the source is not trusted. A missing blob gives an
	// error wrapping errdef.ErrNotFound.
	Fetch(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error)
}

// Pusher stores content.
type Pusher interface {
	// Push stores the content read from r under expected. It is idempotent: pushing a blob that
	// is already stored succeeds without rewriting it. A nil error means the content is stored,
	// durable, and has exactly expected.Size bytes hashing to expected.Digest; otherwise nothing
	// is stored (errdef.ErrDigestMismatch, errdef.ErrSizeMismatch, errdef.ErrInvalidDigest…).
	Push(ctx context.Context, expected ocispec.Descriptor, r io.Reader) error
}

// ReadOnlyStorage reads and probes content.
type ReadOnlyStorage interface {
	Fetcher
	// Exists reports whether the blob d.Digest is stored. A malformed digest is an error, never
	// a false.
	Exists(ctx context.Context, d ocispec.Descriptor) (bool, error)
}

// Storage reads and writes content.
type Storage interface {
	ReadOnlyStorage
	Pusher
}

// Deleter removes content. Deleting a missing blob wraps errdef.ErrNotFound.
type Deleter interface {
	Delete(ctx context.Context, dgst digest.Digest) error
}

// Info describes one stored blob.
type Info struct {
	Digest    digest.Digest
	Size      int64
	UpdatedAt time.Time
}

// InfoProvider returns the stored size of a blob without reading it.
type InfoProvider interface {
	Info(ctx context.Context, dgst digest.Digest) (Info, error)
}

// Walker lists every stored blob. The order is unspecified; returning an error from fn stops
// the walk and is returned.
type Walker interface {
	Walk(ctx context.Context, fn func(Info) error) error
}

// Ingester opens resumable writers.
type Ingester interface {
	// Writer opens the ingest named ref, creating it if needed. Opening a ref that has an
	// interrupted ingest (even one left by a process that was killed) resumes it: Offset reports
	// how many bytes are already held and the digest state continues from there. Only one
	// Writer may hold a ref at a time; a second gets errdef.ErrInvalidState (unavailable).
	Writer(ctx context.Context, ref string) (Writer, error)
}

// Writer is one resumable ingest. It hashes while it writes.
type Writer interface {
	io.Writer
	// Offset is the number of bytes written so far, across resumes.
	Offset() int64
	// Digest is the digest of the bytes written so far.
	Digest() digest.Digest
	// Commit checks the content against size (when > 0, or exactly 0 when expected is the empty
	// digest) and expected (when not empty), makes it durable and visible under its digest, and
	// removes the ingest. Commit always closes the writer, even on error; on a mismatch the
	// ingest is discarded. Committing content that is already stored succeeds.
	Commit(ctx context.Context, size int64, expected digest.Digest) error
	// Close releases the writer and keeps the ingest (data and digest state) so that a later
	// Writer(ref) resumes it.
	Close() error
	// Cancel discards the ingest. It is safe to call after Commit, Close or Cancel.
	Cancel(ctx context.Context) error
}

// Resolver maps a reference (a tag, or a digest string) to a descriptor.
type Resolver interface {
	// Resolve wraps errdef.ErrNotFound when ref names nothing.
	Resolve(ctx context.Context, ref string) (ocispec.Descriptor, error)
}

// Tagger names a descriptor.
type Tagger interface {
	Tag(ctx context.Context, d ocispec.Descriptor, ref string) error
}

// Target is a Storage whose roots can be named: an image layout, a registry repository.
type Target interface {
	Storage
	Resolver
	Tagger
}

// TagPusher is an optional ability of a Target: store a document and name it in one step (a
// registry's PUT /v2/<name>/manifests/<tag>), so that a copy does not push its root twice.
// It has the effect of Push followed by Tag.
type TagPusher interface {
	PushTag(ctx context.Context, expected ocispec.Descriptor, r io.Reader, ref string) error
}

// TagLister is an optional ability of a Target: list the tags its roots are named by (a
// registry repository's tags/list, a layout's ref names in index.json).
type TagLister interface {
	// Tags returns every tag, each once, in lexical (byte) order; none gives an empty list.
	Tags(ctx context.Context) ([]string, error)
}

// ReferrerLister is an optional ability of a Target: list the manifests whose subject is d
// (the referrers API of distribution-spec, the subject field of image-spec).
type ReferrerLister interface {
	Referrers(ctx context.Context, d ocispec.Descriptor, artifactType string) ([]ocispec.Descriptor, error)
}

// Mounter is an optional ability of a Target: make a blob that the same backend already
// holds elsewhere visible here without copying it (cross-repository mount).
type Mounter interface {
	Mount(ctx context.Context, d ocispec.Descriptor, fromRepo string) error
}
