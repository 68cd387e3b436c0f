// Package memory is an in-memory content store (Storage, Deleter, Walker, InfoProvider and
// Ingester) for tests and dry runs. It follows the same contracts as content/local and passes
// the same conformance suite (content/contenttest); nothing survives the process.
package memory

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/errdef"
)

type blob struct {
	data    []byte
	updated time.Time
}

// Store holds blobs and ingests in memory. It is safe for concurrent use.
type Store struct {
	mu      sync.RWMutex
	blobs   map[digest.Digest]blob
	ingests map[string]*ingest
}

type ingest struct {
	data []byte
	held bool
}

// New returns an empty store.
func New() *Store {
	return &Store{blobs: map[digest.Digest]blob{}, ingests: map[string]*ingest{}}
}

func (s *Store) get(d digest.Digest) (blob, bool, error) {
	if err := content.ValidateDigest(d); err != nil {
		return blob{}, false, err
	}
	s.mu.RLock()
	b, ok := s.blobs[d]
	s.mu.RUnlock()
	return b, ok, nil
}

// Fetch returns a reader of the blob d; a stored size other than d.Size is
// errdef.ErrSizeMismatch.
func (s *Store) Fetch(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	if err := content.ValidateDescriptor(d); err != nil {
		return nil, err
	}
	b, ok, err := s.get(d.Digest)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("fetch %s: %w", d.Digest, errdef.ErrNotFound)
	}
	if int64(len(b.data)) != d.Size {
		return nil, fmt.Errorf("fetch %s: %w: stored blob has %d bytes, descriptor says %d", d.Digest, errdef.ErrSizeMismatch, len(b.data), d.Size)
	}
	return io.NopCloser(bytes.NewReader(b.data)), nil
}

// Exists reports whether d.Digest is stored.
func (s *Store) Exists(ctx context.Context, d ocispec.Descriptor) (bool, error) {
	_, ok, err := s.get(d.Digest)
	return ok, err
}

// Info returns the stored size of dgst.
func (s *Store) Info(ctx context.Context, dgst digest.Digest) (content.Info, error) {
	b, ok, err := s.get(dgst)
	if err != nil {
		return content.Info{}, err
	}
	if !ok {
		return content.Info{}, fmt.Errorf("stat blob %s: %w", dgst, errdef.ErrNotFound)
	}
	return content.Info{Digest: dgst, Size: int64(len(b.data)), UpdatedAt: b.updated}, nil
}

// Push stores r under expected after checking its size and digest; it is idempotent.
func (s *Store) Push(ctx context.Context, expected ocispec.Descriptor, r io.Reader) error {
	if err := content.ValidateDescriptor(expected); err != nil {
		return err
	}
	if b, ok, _ := s.get(expected.Digest); ok {
		if int64(len(b.data)) != expected.Size {
			return fmt.Errorf("push %s: %w: stored blob has %d bytes, descriptor says %d", expected.Digest, errdef.ErrSizeMismatch, len(b.data), expected.Size)
		}
		return nil
	}
	data, err := io.ReadAll(content.NewVerifyReader(r, expected))
	if err != nil {
		return fmt.Errorf("push %s: %w", expected.Digest, err)
	}
	s.mu.Lock()
	if _, ok := s.blobs[expected.Digest]; !ok {
		s.blobs[expected.Digest] = blob{data: data, updated: time.Now()}
	}
	s.mu.Unlock()
	return nil
}

// Delete removes dgst.
func (s *Store) Delete(ctx context.Context, dgst digest.Digest) error {
	if err := content.ValidateDigest(dgst); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.blobs[dgst]; !ok {
		return fmt.Errorf("delete blob %s: %w", dgst, errdef.ErrNotFound)
	}
	delete(s.blobs, dgst)
	return nil
}

// Walk calls fn for every blob (on a snapshot: fn may use the store).
func (s *Store) Walk(ctx context.Context, fn func(content.Info) error) error {
	s.mu.RLock()
	infos := make([]content.Info, 0, len(s.blobs))
	for d, b := range s.blobs {
		infos = append(infos, content.Info{Digest: d, Size: int64(len(b.data)), UpdatedAt: b.updated})
	}
	s.mu.RUnlock()
	for _, i := range infos {
		if err := fn(i); err != nil {
			return err
		}
	}
	return nil
}

// Writer opens the ingest ref hashing with sha256 (Commit accepts any supported algorithm).
func (s *Store) Writer(ctx context.Context, ref string) (content.Writer, error) {
	return s.WriterAlg(ctx, ref, digest.SHA256)
}

// WriterAlg opens the ingest ref; Digest reports alg. A ref held by another Writer is
// errdef.ErrInvalidState.
func (s *Store) WriterAlg(ctx context.Context, ref string, alg digest.Algorithm) (content.Writer, error) {
	if alg != digest.SHA256 && alg != digest.SHA512 {
		return nil, fmt.Errorf("open ingest: algorithm %q: %w", alg, errdef.ErrUnsupported)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.ingests[ref]
	if !ok {
		in = &ingest{}
		s.ingests[ref] = in
	}
	if in.held {
		return nil, fmt.Errorf("open ingest %q: %w: another writer holds it", ref, errdef.ErrInvalidState)
	}
	in.held = true
	return &writer{s: s, ref: ref, in: in, alg: alg}, nil
}

type writer struct {
	s    *Store
	ref  string
	in   *ingest
	alg  digest.Algorithm
	done bool
}

func (w *writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("write ingest %q: %w: writer is closed", w.ref, errdef.ErrInvalidState)
	}
	w.in.data = append(w.in.data, p...)
	return len(p), nil
}

func (w *writer) Offset() int64 { return int64(len(w.in.data)) }

func (w *writer) Digest() digest.Digest { return w.alg.FromBytes(w.in.data) }

func (w *writer) release(keep bool) {
	w.done = true
	w.s.mu.Lock()
	w.in.held = false
	if !keep {
		delete(w.s.ingests, w.ref)
	}
	w.s.mu.Unlock()
}

func (w *writer) Commit(ctx context.Context, size int64, expected digest.Digest) error {
	if w.done {
		return fmt.Errorf("commit ingest %q: %w: writer is closed", w.ref, errdef.ErrInvalidState)
	}
	defer w.release(false)
	n := int64(len(w.in.data))
	if size > 0 && size != n {
		return fmt.Errorf("commit ingest %q: %w: %d bytes written, expected %d", w.ref, errdef.ErrSizeMismatch, n, size)
	}
	got := w.Digest()
	if expected != "" {
		if err := content.ValidateDigest(expected); err != nil {
			return fmt.Errorf("commit ingest %q: %w", w.ref, err)
		}
		if got = expected.Algorithm().FromBytes(w.in.data); got != expected {
			return fmt.Errorf("commit ingest %q: %w: content hashes to %s, expected %s", w.ref, errdef.ErrDigestMismatch, got, expected)
		}
	}
	w.s.mu.Lock()
	if _, ok := w.s.blobs[got]; !ok {
		w.s.blobs[got] = blob{data: w.in.data, updated: time.Now()}
	}
	w.s.mu.Unlock()
	return nil
}

func (w *writer) Close() error {
	if !w.done {
		w.release(true)
	}
	return nil
}

func (w *writer) Cancel(ctx context.Context) error {
	if !w.done {
		w.release(false)
	}
	return nil
}
