package layout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/content/local"
	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/image"
	"github.com/wharfoci/wharf/internal/durable"
)

const (
	// LayoutFile is the name of the layout marker file.
	LayoutFile = ocispec.ImageLayoutFile
	// IndexFile is the name of the layout's entry point.
	IndexFile = ocispec.ImageIndexFile
	// BlobsDir is the name of the blob directory.
	BlobsDir = ocispec.ImageBlobsDir
	// Version is the only imageLayoutVersion this package reads and writes.
	Version = ocispec.ImageLayoutVersion
	// lockFile serializes writers of index.json (processes and goroutines alike).
	lockFile = ".wharf-lock"
	// writersFile is held shared by every Layout that has written blobs (until Close) and
	// exclusively by GC, so that a collection never removes the blobs of a copy in progress in
	// another process, pushed but not tagged yet.
	writersFile = ".wharf-writers"
	// maxLayoutFile caps the oci-layout marker.
	maxLayoutFile = 64 << 10
)

// Layout is an OCI image layout on disk. It is safe for concurrent use by goroutines, and
// several processes may write the same layout at once.
type Layout struct {
	root  string
	store *local.Store

	refsMu sync.Mutex
	refs   map[digest.Digest][]ocispec.Descriptor // subject → referrers; nil until Referrers scans

	writersMu sync.Mutex
	writers   *os.File // writersFile, flocked shared once this Layout writes blobs
}

// Root returns the layout's directory.
func (l *Layout) Root() string { return l.root }

// Open opens the image layout in dir. It refuses a directory without a valid `oci-layout`
// file ({"imageLayoutVersion":"1.0.0"}), without a `blobs` directory or `index.json`, or where
// any of them is a symlink; index.json must be a valid image index of at most 4 MiB.
func Open(dir string) (*Layout, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open layout %s: %w", dir, err)
	}
	dfd, err := openDir(root)
	if err != nil {
		return nil, fmt.Errorf("open layout: %w", err)
	}
	defer unix.Close(dfd)
	if err := checkMarker(dfd, root); err != nil {
		return nil, fmt.Errorf("open layout %s: %w", root, err)
	}
	if err := checkBlobsDir(dfd, root); err != nil {
		return nil, fmt.Errorf("open layout %s: %w", root, err)
	}
	if _, err := readIndex(dfd, root); err != nil {
		return nil, fmt.Errorf("open layout %s: %w", root, err)
	}
	st, err := newStore(root)
	if err != nil {
		return nil, fmt.Errorf("open layout %s: %w", root, err)
	}
	return &Layout{root: root, store: st}, nil
}

// Init creates an empty image layout in dir (created if missing) and opens it. If dir already
// holds a valid layout, Init opens it and changes nothing. A non-empty directory that is not a
// layout is refused with errdef.ErrAlreadyExists.
func Init(dir string) (*Layout, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("init layout %s: %w", dir, err)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("init layout: %w", err)
	}
	dfd, err := openDir(root)
	if err != nil {
		return nil, fmt.Errorf("init layout: %w", err)
	}
	defer unix.Close(dfd)
	unlock, err := lock(dfd, root)
	if err != nil {
		return nil, fmt.Errorf("init layout %s: %w", root, err)
	}
	defer unlock()
	if _, err := statIn(dfd, root, LayoutFile); err == nil {
		return Open(root)
	}
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("init layout: %w", err)
	}
	for _, e := range ents {
		if e.Name() != lockFile {
			return nil, fmt.Errorf("init layout %s: %w: directory is not empty and holds no %s", root, errdef.ErrAlreadyExists, LayoutFile)
		}
	}
	if err := unix.Mkdirat(dfd, BlobsDir, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("init layout: create %s: %w", filepath.Join(root, BlobsDir), err)
	}
	idx, err := encodeIndex(&ocispec.Index{})
	if err != nil {
		return nil, err
	}
	if err := durable.WriteAt(dfd, root, IndexFile, idx, 0o644); err != nil {
		return nil, fmt.Errorf("init layout: %w", err)
	}
	marker, _ := json.Marshal(ocispec.ImageLayout{Version: Version})
	// The marker goes last: a directory is a layout only once it is complete.
	if err := durable.WriteAt(dfd, root, LayoutFile, marker, 0o644); err != nil {
		return nil, fmt.Errorf("init layout: %w", err)
	}
	return Open(root)
}

func checkMarker(dfd int, root string) error {
	b, err := readCapped(dfd, root, LayoutFile, maxLayoutFile)
	if err != nil {
		if errors.Is(err, errdef.ErrNotFound) {
			return fmt.Errorf("not an OCI image layout: %w: no %s file", errdef.ErrNotFound, LayoutFile)
		}
		return err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("parse %s: %w: not a JSON object: %v", LayoutFile, errdef.ErrInvalidArgument, err)
	}
	raw, ok := m["imageLayoutVersion"]
	if !ok {
		return fmt.Errorf("parse %s: %w: no imageLayoutVersion", LayoutFile, errdef.ErrInvalidArgument)
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("parse %s: %w: imageLayoutVersion is not a string", LayoutFile, errdef.ErrInvalidArgument)
	}
	if v != Version {
		return fmt.Errorf("parse %s: %w: imageLayoutVersion %q (want %q)", LayoutFile, errdef.ErrUnsupported, v, Version)
	}
	if err := image.ValidateLayoutHeader(b); err != nil {
		return fmt.Errorf("parse %s: %w", LayoutFile, err)
	}
	return nil
}

func checkBlobsDir(dfd int, root string) error {
	for _, name := range []string{BlobsDir, BlobsDir + "/sha256", BlobsDir + "/sha512"} {
		st, err := statIn(dfd, root, name)
		if err != nil {
			if errors.Is(err, errdef.ErrNotFound) && name != BlobsDir {
				continue
			}
			return err
		}
		if st.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("open %s: %w: is a symlink", filepath.Join(root, name), errdef.ErrUnsafePath)
		}
		if !st.IsDir() {
			return fmt.Errorf("open %s: %w: not a directory", filepath.Join(root, name), errdef.ErrInvalidArgument)
		}
	}
	return nil
}

// readIndex reads and validates index.json (capped at content.MaxDocumentSize).
func readIndex(dfd int, root string) (*ocispec.Index, error) {
	b, err := readCapped(dfd, root, IndexFile, content.MaxDocumentSize)
	if err != nil {
		return nil, err
	}
	idx, err := parseIndexJSON(b)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", filepath.Join(root, IndexFile), err)
	}
	return idx, nil
}

// parseIndexJSON validates an index.json document: an image index (not a manifest), schema
// version 2, every descriptor valid.
func parseIndexJSON(b []byte) (*ocispec.Index, error) {
	// Descriptors first, with content's precise errors (a digest that would climb out of the
	// layout is named as such), then the full validation of package image.
	var loose struct {
		Manifests []ocispec.Descriptor `json:"manifests"`
	}
	if json.Unmarshal(b, &loose) == nil {
		for i, d := range loose.Manifests {
			if err := content.ValidateDescriptor(d); err != nil {
				return nil, fmt.Errorf("manifests[%d]: %w", i, err)
			}
		}
	}
	idx, err := parseIndex(b)
	if err != nil {
		return nil, err
	}
	for i, d := range idx.Manifests {
		if d.MediaType == "" {
			return nil, fmt.Errorf("manifests[%d] %s: %w: no mediaType", i, d.Digest, errdef.ErrInvalidArgument)
		}
	}
	return idx, nil
}

func encodeIndex(idx *ocispec.Index) ([]byte, error) {
	out := *idx
	out.SchemaVersion = 2
	out.MediaType = ocispec.MediaTypeImageIndex
	if out.Manifests == nil {
		out.Manifests = []ocispec.Descriptor{}
	}
	b, err := json.Marshal(&out)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", IndexFile, err)
	}
	return b, nil
}

// lock takes the layout's exclusive lock; the returned function releases it.
func lock(dfd int, root string) (func(), error) {
	f, err := openIn(dfd, root, lockFile, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock layout: %w", err)
	}
	if err := flock(f, unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil // closing the descriptor releases the flock
}

// Index returns the current content of index.json.
func (l *Layout) Index(ctx context.Context) (*ocispec.Index, error) {
	dfd, err := openDir(l.root)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dfd)
	return readIndex(dfd, l.root)
}

// update runs fn on index.json under the layout lock and writes the result atomically when fn
// reports a change.
func (l *Layout) update(ctx context.Context, fn func(idx *ocispec.Index) (bool, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dfd, err := openDir(l.root)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	unlock, err := lock(dfd, l.root)
	if err != nil {
		return err
	}
	defer unlock()
	idx, err := readIndex(dfd, l.root)
	if err != nil {
		return err
	}
	changed, err := fn(idx)
	if err != nil || !changed {
		return err
	}
	b, err := encodeIndex(idx)
	if err != nil {
		return err
	}
	return durable.WriteAt(dfd, l.root, IndexFile, b, 0o644)
}

// Fetch returns the blob d. The reader is not verified (wrap it with content.NewVerifyReader),
// but a blob whose stored size differs from d.Size is refused.
func (l *Layout) Fetch(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	if err := content.ValidateDescriptor(d); err != nil {
		return nil, err
	}
	return l.store.Fetch(ctx, d)
}

// Exists reports whether the blob d.Digest is stored.
func (l *Layout) Exists(ctx context.Context, d ocispec.Descriptor) (bool, error) {
	return l.store.Exists(ctx, d)
}

// Push stores a blob (idempotent; nil means stored and verified). It does not name it:
// use Tag, or it is garbage for GC.
func (l *Layout) Push(ctx context.Context, expected ocispec.Descriptor, r io.Reader) error {
	if err := content.ValidateDescriptor(expected); err != nil {
		return err
	}
	if err := l.holdWriters(); err != nil {
		return err
	}
	if err := l.store.Push(ctx, expected, r); err != nil {
		return err
	}
	if image.IsManifest(expected.MediaType) || image.IsIndex(expected.MediaType) {
		l.forgetReferrers() // it may be a referrer
	}
	return nil
}

// Info returns the stored size of a blob.
func (l *Layout) Info(ctx context.Context, dgst digest.Digest) (content.Info, error) {
	return l.store.Info(ctx, dgst)
}

// Walk lists every stored blob.
func (l *Layout) Walk(ctx context.Context, fn func(content.Info) error) error {
	return l.store.Walk(ctx, fn)
}

// readDoc reads a manifest or index blob (capped, verified).
func (l *Layout) readDoc(ctx context.Context, d ocispec.Descriptor) ([]byte, error) {
	return content.ReadAll(ctx, l.store, d, 0)
}

// sniff returns the media type a JSON document declares, or "".
func sniff(b []byte) string {
	var v struct {
		MediaType string `json:"mediaType"`
	}
	if len(bytes.TrimSpace(b)) == 0 || json.Unmarshal(b, &v) != nil {
		return ""
	}
	return v.MediaType
}

// Writer opens a resumable ingest in the layout (see content.Ingester): a large download can
// resume after an interruption. Committed content is a blob like any pushed one.
func (l *Layout) Writer(ctx context.Context, ref string) (content.Writer, error) {
	if err := l.holdWriters(); err != nil {
		return nil, err
	}
	return l.store.Writer(ctx, ref)
}

// holdWriters takes writersFile shared, once, waiting while a GC holds it.
func (l *Layout) holdWriters() error {
	l.writersMu.Lock()
	defer l.writersMu.Unlock()
	if l.writers != nil {
		return nil
	}
	f, err := l.openWriters()
	if err != nil {
		return err
	}
	if err := flock(f, unix.LOCK_SH); err != nil {
		f.Close()
		return fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	l.writers = f
	return nil
}

func (l *Layout) openWriters() (*os.File, error) {
	dfd, err := openDir(l.root)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dfd)
	return openIn(dfd, l.root, writersFile, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW, 0o644)
}

// flock applies how to f, retrying on EINTR.
func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			return err
		}
	}
}
