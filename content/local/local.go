package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/errdef"
)

// DefaultIngestDir is the name of the ingest directory under the root when WithIngestDir is not
// given. It is removed whenever it becomes empty, so an image layout stays clean.
const DefaultIngestDir = ".wharf-ingest"

// defaultCheckpoint is how many bytes a Writer takes between two saves of its digest state.
const defaultCheckpoint = 8 << 20

// Store is a content-addressed store on disk. Blobs live at root/blobs/<alg>/<hex>, the OCI
// image-layout blob layout. It is safe for concurrent use, by several goroutines and processes.
type Store struct {
	root       string
	rootFd     int // O_PATH descriptor of root; every blob path is resolved beneath it
	ingestDir  string
	ownIngest  bool // ingestDir is the default one: remove it when empty
	checkpoint int64
	dirSyncs   sync.Map // algorithm → *groupSync of its blob directory
}

// Option configures a Store.
type Option func(*Store)

// WithIngestDir keeps ingests (resumable writes and temporary files) in dir instead of
// root/.wharf-ingest. dir should be on the same file system as root (commits are then a
// rename; otherwise they copy). dir is created if needed and never removed.
func WithIngestDir(dir string) Option {
	return func(s *Store) { s.ingestDir = dir; s.ownIngest = false }
}

// WithCheckpointInterval makes Writers save their digest state every n bytes (default 8 MiB;
// also on Close). A writer resumed after a crash restarts from its last checkpoint.
func WithCheckpointInterval(n int64) Option {
	return func(s *Store) {
		if n > 0 {
			s.checkpoint = n
		}
	}
}

// New opens (creating it if needed) the store rooted at root. root itself may be reached through
// a symlink; nothing inside it ever is.
func New(root string, opts ...Option) (*Store, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("create store root: %w", err)
	}
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open store root", Path: root, Err: err}
	}
	s := &Store{
		root:       root,
		rootFd:     fd,
		ingestDir:  filepath.Join(root, DefaultIngestDir),
		ownIngest:  true,
		checkpoint: defaultCheckpoint,
	}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// Close releases the store's root descriptor. Open readers stay valid.
func (s *Store) Close() error { return unix.Close(s.rootFd) }

// Root is the directory the store was opened with.
func (s *Store) Root() string { return s.root }

// BlobPath returns the path of the blob d (whether or not it is stored) once d is validated.
// It is meant for messages and for tools that need a path; readers should prefer Fetch, which
// refuses symlinks.
func (s *Store) BlobPath(d digest.Digest) (string, error) {
	if err := content.ValidateDigest(d); err != nil {
		return "", err
	}
	return filepath.Join(s.root, "blobs", d.Algorithm().String(), d.Encoded()), nil
}

func blobRel(d digest.Digest) string {
	return "blobs/" + d.Algorithm().String() + "/" + d.Encoded()
}

// openBeneath opens name relative to the root, refusing any symlink and any escape.
func (s *Store) openBeneath(name string, flags int) (int, error) {
	how := unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC | unix.O_NOFOLLOW),
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	for {
		fd, err := unix.Openat2(s.rootFd, name, &how)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		return fd, err
	}
}

// pathErr turns an errno from a blob lookup into a wharf error naming the digest.
func pathErr(op string, d digest.Digest, err error) error {
	switch {
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("%s %s: %w", op, d, errdef.ErrNotFound)
	case errors.Is(err, unix.ELOOP), errors.Is(err, unix.EXDEV), errors.Is(err, unix.ENOTDIR):
		return fmt.Errorf("%s %s: %w: symlink or non-directory in the store", op, d, errdef.ErrUnsafePath)
	default:
		return fmt.Errorf("%s %s: %w", op, d, err)
	}
}

// statBlob returns the stat of the blob d, refusing anything but a regular file.
func (s *Store) statBlob(op string, d digest.Digest) (unix.Stat_t, error) {
	var st unix.Stat_t
	if err := content.ValidateDigest(d); err != nil {
		return st, err
	}
	fd, err := s.openBeneath(blobRel(d), unix.O_PATH)
	if err != nil {
		return st, pathErr(op, d, err)
	}
	defer unix.Close(fd)
	if err := unix.Fstat(fd, &st); err != nil {
		return st, pathErr(op, d, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		return st, nil
	case unix.S_IFLNK:
		return st, fmt.Errorf("%s %s: %w: blob is a symlink", op, d, errdef.ErrUnsafePath)
	default:
		return st, fmt.Errorf("%s %s: %w: blob is not a regular file", op, d, errdef.ErrUnsafePath)
	}
}

// Exists reports whether the blob d.Digest is stored. A symlink in its place is an error.
func (s *Store) Exists(ctx context.Context, d ocispec.Descriptor) (bool, error) {
	_, err := s.statBlob("stat blob", d.Digest)
	if errors.Is(err, errdef.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Info returns the stored size and modification time of dgst.
func (s *Store) Info(ctx context.Context, dgst digest.Digest) (content.Info, error) {
	st, err := s.statBlob("stat blob", dgst)
	if err != nil {
		return content.Info{}, err
	}
	return content.Info{Digest: dgst, Size: st.Size, UpdatedAt: time.Unix(st.Mtim.Unix())}, nil
}

// Fetch opens the blob d. The reader is the blob's *os.File (so io.Copy to a socket can use
// sendfile); its size is checked against d.Size (errdef.ErrSizeMismatch), its content is not
// hashed.
func (s *Store) Fetch(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	if err := content.ValidateDescriptor(d); err != nil {
		return nil, err
	}
	f, err := s.Open(d.Digest)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("fetch %s: %w", d.Digest, err)
	}
	if st.Size() != d.Size {
		f.Close()
		return nil, fmt.Errorf("fetch %s: %w: stored blob has %d bytes, descriptor says %d", d.Digest, errdef.ErrSizeMismatch, st.Size(), d.Size)
	}
	return f, nil
}

// Open opens the blob dgst read-only, whatever its size. It refuses symlinks and anything that
// is not a regular file.
func (s *Store) Open(dgst digest.Digest) (*os.File, error) {
	if err := content.ValidateDigest(dgst); err != nil {
		return nil, err
	}
	fd, err := s.openBeneath(blobRel(dgst), unix.O_RDONLY)
	if err != nil {
		return nil, pathErr("open blob", dgst, err)
	}
	f := os.NewFile(uintptr(fd), filepath.Join(s.root, blobRel(dgst)))
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open blob %s: %w", dgst, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("open blob %s: %w: not a regular file", dgst, errdef.ErrUnsafePath)
	}
	return f, nil
}

// Push stores the content of r under expected. It is idempotent and safe to call concurrently
// for the same blob: all callers succeed and one copy is kept.
func (s *Store) Push(ctx context.Context, expected ocispec.Descriptor, r io.Reader) error {
	if err := content.ValidateDescriptor(expected); err != nil {
		return err
	}
	if info, err := s.Info(ctx, expected.Digest); err == nil {
		if info.Size != expected.Size {
			return fmt.Errorf("push %s: %w: stored blob has %d bytes, descriptor says %d", expected.Digest, errdef.ErrSizeMismatch, info.Size, expected.Size)
		}
		return nil
	} else if !errors.Is(err, errdef.ErrNotFound) {
		return err
	}
	f, err := s.createTemp()
	if err != nil {
		return fmt.Errorf("push %s: %w", expected.Digest, err)
	}
	tmp := f.Name()
	defer func() {
		f.Close()
		os.Remove(tmp)
		s.cleanIngestDir()
	}()
	// A reader from content.NewVerifyReader hashes as it is read, on this goroutine: take the
	// reader under it and hash on another one (copyPipelined), checking the same size and digest.
	if src, ok := content.VerifiedSource(r, expected); ok {
		r = src
	}
	h := expected.Digest.Algorithm().Hash()
	n, err := copyPipelined(ctx, f, 0, h, io.LimitReader(r, expected.Size+1), nil)
	if err != nil {
		return fmt.Errorf("push %s: write: %w", expected.Digest, err)
	}
	if n != expected.Size {
		return fmt.Errorf("push %s: %w: got %s bytes, descriptor says %d", expected.Digest, errdef.ErrSizeMismatch, sizeWord(n, expected.Size), expected.Size)
	}
	if got := digest.NewDigest(expected.Digest.Algorithm(), h); got != expected.Digest {
		return fmt.Errorf("push %s: %w: content hashes to %s", expected.Digest, errdef.ErrDigestMismatch, got)
	}
	return s.install(f, expected.Digest)
}

func sizeWord(n, size int64) string {
	if n > size {
		return fmt.Sprintf("more than %d", size)
	}
	return fmt.Sprint(n)
}

// createTemp creates a private temporary file in the ingest directory.
func (s *Store) createTemp() (*os.File, error) {
	var f *os.File
	err := s.inIngestDir(func() error {
		var err error
		f, err = os.CreateTemp(s.ingestDir, "push-*")
		return err
	})
	return f, err
}

// RemoveTemporary deletes the temporary files that interrupted Push calls (a killed process)
// left in the ingest directory. Resumable ingests (Writer) are kept. Call it only when no other
// process uses the store (the registry holds a lock on its root).
func (s *Store) RemoveTemporary() error {
	names, err := filepath.Glob(filepath.Join(s.ingestDir, "push-*"))
	if err != nil {
		return err
	}
	tmps, _ := filepath.Glob(filepath.Join(s.ingestDir, "*.state.tmp"))
	for _, n := range append(names, tmps...) {
		if err := os.Remove(n); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove temporary %s: %w", n, err)
		}
	}
	return nil
}

// inIngestDir runs create after making sure the ingest directory exists, retrying when a
// concurrent cleanIngestDir removed it in between.
func (s *Store) inIngestDir(create func() error) error {
	var err error
	for range 10 {
		if err = os.MkdirAll(s.ingestDir, 0o700); err != nil {
			return fmt.Errorf("create ingest directory: %w", err)
		}
		if err = create(); !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return err
}

// cleanIngestDir removes the default ingest directory if it is empty (best effort).
func (s *Store) cleanIngestDir() {
	if s.ownIngest {
		_ = unix.Rmdir(s.ingestDir)
	}
}

// algDir opens root/blobs/<alg> for writing entries, creating it if needed.
func (s *Store) algDir(alg digest.Algorithm) (int, error) {
	rel := "blobs/" + alg.String()
	fd, err := s.openBeneath(rel, unix.O_RDONLY|unix.O_DIRECTORY)
	if err == nil {
		return fd, nil
	}
	if !errors.Is(err, unix.ENOENT) {
		return -1, pathErr("open blob directory", digest.Digest(alg.String()+":"), err)
	}
	for _, dir := range []string{"blobs", rel} {
		if err := unix.Mkdirat(s.rootFd, dir, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return -1, fmt.Errorf("create %s: %w", dir, err)
		}
	}
	fd, err = s.openBeneath(rel, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", rel, errUnsafe(err))
	}
	// Make the new directories durable.
	for _, dir := range []string{".", "blobs"} {
		if pfd, err := s.openBeneath(dir, unix.O_RDONLY|unix.O_DIRECTORY); err == nil {
			unix.Fsync(pfd)
			unix.Close(pfd)
		}
	}
	return fd, nil
}

func errUnsafe(err error) error {
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ENOTDIR) {
		return fmt.Errorf("%w: symlink or non-directory in the store", errdef.ErrUnsafePath)
	}
	return err
}

// install makes the fully written temporary file f the blob d: fsync, mode 0444, rename without
// replacing (a blob that appeared meanwhile wins and f is dropped), fsync of the directory
// (shared with concurrent installs: groupSync).
// f's path is gone afterwards unless an error is returned.
func (s *Store) install(f *os.File, d digest.Digest) error {
	if err := f.Sync(); err != nil {
		return fmt.Errorf("install %s: sync: %w", d, err)
	}
	if err := f.Chmod(0o444); err != nil {
		return fmt.Errorf("install %s: chmod: %w", d, err)
	}
	dfd, err := s.algDir(d.Algorithm())
	if err != nil {
		return fmt.Errorf("install %s: %w", d, err)
	}
	defer unix.Close(dfd)
	err = renameNoReplace(f.Name(), dfd, d.Encoded())
	if errors.Is(err, unix.EXDEV) {
		if err = s.copyInto(f, dfd, d); err == nil || errors.Is(err, unix.EEXIST) {
			os.Remove(f.Name())
		}
	}
	switch {
	case err == nil:
	case errors.Is(err, unix.EEXIST):
		// Stored meanwhile by someone else: one copy is kept. Make sure it is not a symlink.
		os.Remove(f.Name())
		if _, serr := s.statBlob("install", d); serr != nil {
			return serr
		}
		return nil
	default:
		return fmt.Errorf("install %s: rename: %w", d, err)
	}
	if err := s.dirSync(d.Algorithm().String()).sync(dfd); err != nil {
		return fmt.Errorf("install %s: sync directory: %w", d, err)
	}
	return nil
}

// renameNoReplace renames from to dirfd/name, failing with EEXIST if name exists.
func renameNoReplace(from string, dirfd int, name string) error {
	err := unix.Renameat2(unix.AT_FDCWD, from, dirfd, name, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// File system without RENAME_NOREPLACE: link refuses to replace too.
		if err = unix.Linkat(unix.AT_FDCWD, from, dirfd, name, 0); err == nil {
			unix.Unlink(from)
		}
	}
	return err
}

// copyInto copies f to a temporary file in the blob directory and renames it into place (the
// ingest directory is on another file system).
func (s *Store) copyInto(f *os.File, dfd int, d digest.Digest) error {
	tmp := fmt.Sprintf(".tmp-%d-%d", os.Getpid(), time.Now().UnixNano())
	tfd, err := unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o444)
	if err != nil {
		return err
	}
	t := os.NewFile(uintptr(tfd), tmp)
	defer t.Close()
	defer unix.Unlinkat(dfd, tmp, 0)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if _, err := io.Copy(t, f); err != nil {
		return err
	}
	if err := t.Sync(); err != nil {
		return err
	}
	return unix.Renameat2(dfd, tmp, dfd, d.Encoded(), unix.RENAME_NOREPLACE)
}

// Delete removes the blob dgst (a symlink in its place is removed, never followed).
func (s *Store) Delete(ctx context.Context, dgst digest.Digest) error {
	if err := content.ValidateDigest(dgst); err != nil {
		return err
	}
	dfd, err := s.openBeneath("blobs/"+dgst.Algorithm().String(), unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return pathErr("delete blob", dgst, err)
	}
	defer unix.Close(dfd)
	if err := unix.Unlinkat(dfd, dgst.Encoded(), 0); err != nil {
		return pathErr("delete blob", dgst, err)
	}
	unix.Fsync(dfd)
	return nil
}

// Walk calls fn for every regular file under blobs/<alg>/ whose name is a valid digest of a
// supported algorithm; anything else (symlinks, temporary files) is skipped.
func (s *Store) Walk(ctx context.Context, fn func(content.Info) error) error {
	for _, alg := range []digest.Algorithm{digest.SHA256, digest.SHA512} {
		fd, err := s.openBeneath("blobs/"+alg.String(), unix.O_RDONLY|unix.O_DIRECTORY)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return fmt.Errorf("walk blobs/%s: %w", alg, errUnsafe(err))
		}
		if err := s.walkDir(ctx, fd, alg, fn); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) walkDir(ctx context.Context, fd int, alg digest.Algorithm, fn func(content.Info) error) error {
	dir := os.NewFile(uintptr(fd), "blobs/"+alg.String())
	defer dir.Close()
	for {
		names, err := dir.Readdirnames(1024)
		for _, name := range names {
			if err := ctx.Err(); err != nil {
				return err
			}
			d := digest.NewDigestFromEncoded(alg, name)
			if content.ValidateDigest(d) != nil {
				continue
			}
			var st unix.Stat_t
			if unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
				continue
			}
			if err := fn(content.Info{Digest: d, Size: st.Size, UpdatedAt: time.Unix(st.Mtim.Unix())}); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("walk blobs/%s: %w", alg, err)
		}
	}
}
