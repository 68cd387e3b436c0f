package local

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/errdef"
)

// Writer opens the resumable ingest ref, hashing with sha256. See content.Ingester and
// WriterAlg.
func (s *Store) Writer(ctx context.Context, ref string) (content.Writer, error) {
	return s.WriterAlg(ctx, ref, digest.SHA256)
}

// WriterAlg opens the resumable ingest ref, hashing with alg (sha256 or sha512).
//
// The ingest is a data file and a saved digest state in the ingest directory, both named by a
// hash of ref. The state is saved every checkpoint interval (8 MiB by default) and on Close;
// reopening the ref, even after the process was killed, truncates the data to the last saved
// state and continues from there (or rehashes the data from the start when no usable state
// is left, or when the ingest was hashed with another algorithm). Only one Writer may hold a
// ref at a time, across processes (flock): a second gets errdef.ErrInvalidState.
//
// Commit also accepts an expected digest of another algorithm than alg: the data is then
// rehashed with that algorithm (a registry learns the digest of a chunked upload only at its
// end). A Writer is not safe for concurrent use.
func (s *Store) WriterAlg(ctx context.Context, ref string, alg digest.Algorithm) (content.Writer, error) {
	newHash, err := hashFunc(alg)
	if err != nil {
		return nil, err
	}
	base := filepath.Join(s.ingestDir, ingestBase(ref))
	w := &writer{s: s, ref: ref, alg: alg, newHash: newHash, dataPath: base + ".data", statePath: base + ".state"}
	for attempt := 0; ; attempt++ {
		var f *os.File
		err := s.inIngestDir(func() error {
			var err error
			f, err = os.OpenFile(w.dataPath, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("open ingest %q: %w", ref, err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, fmt.Errorf("open ingest %q: %w: another writer holds it", ref, errdef.ErrInvalidState)
			}
			return nil, fmt.Errorf("lock ingest %q: %w", ref, err)
		}
		// The holder we waited for may have committed or cancelled (unlinked) the file we opened.
		var fst, pst unix.Stat_t
		if unix.Fstat(int(f.Fd()), &fst) == nil && unix.Lstat(w.dataPath, &pst) == nil && fst.Ino == pst.Ino && fst.Dev == pst.Dev {
			w.f = f
			break
		}
		f.Close()
		if attempt > 10 {
			return nil, fmt.Errorf("open ingest %q: %w: it keeps being replaced", ref, errdef.ErrInvalidState)
		}
	}
	if err := w.resume(); err != nil {
		w.f.Close()
		return nil, err
	}
	return w, nil
}

// IngestExists reports whether the ingest ref exists (was opened and not committed or
// cancelled), without creating it.
func (s *Store) IngestExists(ref string) bool {
	_, err := os.Lstat(filepath.Join(s.ingestDir, ingestBase(ref)+".data"))
	return err == nil
}

// ingestBase is the file name (without extension) of the ingest ref: a hash of it.
func ingestBase(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return hex.EncodeToString(sum[:])
}

func hashFunc(alg digest.Algorithm) (func() hash.Hash, error) {
	switch alg {
	case digest.SHA256:
		return sha256.New, nil
	case digest.SHA512:
		return sha512.New, nil
	}
	return nil, fmt.Errorf("open ingest: algorithm %q: %w (sha256, sha512)", alg, errdef.ErrUnsupported)
}

// ingestState is what a writer saves next to its data.
type ingestState struct {
	Ref    string           `json:"ref"`
	Alg    digest.Algorithm `json:"algorithm"`
	Offset int64            `json:"offset"`
	State  []byte           `json:"state"`
}

type writer struct {
	s         *Store
	ref       string
	alg       digest.Algorithm
	newHash   func() hash.Hash
	dataPath  string
	statePath string
	f         *os.File
	h         hash.Hash
	offset    int64
	saved     int64 // offset of the last saved state
	hasState  bool  // a state file exists for this ingest
	done      bool
}

// resume restores the digest state and offset from the saved state, or rehashes the data.
func (w *writer) resume() error {
	st, err := w.f.Stat()
	if err != nil {
		return fmt.Errorf("open ingest %q: %w", w.ref, err)
	}
	size := st.Size()
	w.h = w.newHash()
	b, err := os.ReadFile(w.statePath)
	w.hasState = err == nil
	if err == nil && size > 0 {
		var is ingestState
		if json.Unmarshal(b, &is) == nil && is.Alg == w.alg && is.Offset >= 0 && is.Offset <= size {
			if u, ok := w.h.(encoding.BinaryUnmarshaler); ok && u.UnmarshalBinary(is.State) == nil {
				if err := w.f.Truncate(is.Offset); err != nil {
					return fmt.Errorf("open ingest %q: truncate to saved state: %w", w.ref, err)
				}
				w.offset, w.saved = is.Offset, is.Offset
				_, err := w.f.Seek(w.offset, io.SeekStart)
				return err
			}
		}
		w.h = w.newHash()
	}
	// No usable state: rehash what is there.
	if _, err := w.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	n, err := io.Copy(w.h, w.f)
	if err != nil {
		return fmt.Errorf("open ingest %q: rehash: %w", w.ref, err)
	}
	w.offset = n
	return nil
}

func (w *writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("write ingest %q: %w: writer is closed", w.ref, errdef.ErrInvalidState)
	}
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.offset += int64(n)
	if err != nil {
		return n, fmt.Errorf("write ingest %q: %w", w.ref, err)
	}
	if w.offset-w.saved >= w.s.checkpoint {
		if err := w.saveState(w.offset); err != nil {
			return n, err
		}
	}
	return n, nil
}

// ReadFrom is what io.Copy uses: it reads into the store's own buffers and hashes on a second
// goroutine while the next buffer is received and written (copyPipelined), saving the digest
// state at each checkpoint from there.
func (w *writer) ReadFrom(r io.Reader) (int64, error) {
	if w.done {
		return 0, fmt.Errorf("write ingest %q: %w: writer is closed", w.ref, errdef.ErrInvalidState)
	}
	n, err := copyPipelined(context.Background(), w.f, w.offset, w.h, r, func(hashed int64) error {
		if hashed-w.saved >= w.s.checkpoint {
			return w.saveState(hashed)
		}
		return nil
	})
	w.offset += n
	var pe *os.PathError
	if errors.As(err, &pe) && pe.Op == "write" {
		err = fmt.Errorf("write ingest %q: %w", w.ref, err)
	}
	return n, err
}

// saveState writes the digest state, which covers the first offset bytes, atomically (write
// and rename). The data before that offset is already in the file (page cache), so a process
// kill leaves a state that matches the data; resuming truncates whatever follows.
func (w *writer) saveState(offset int64) error {
	m, ok := w.h.(encoding.BinaryMarshaler)
	if !ok {
		return nil
	}
	st, err := m.MarshalBinary()
	if err != nil {
		return fmt.Errorf("save ingest %q state: %w", w.ref, err)
	}
	b, _ := json.Marshal(ingestState{Ref: w.ref, Alg: w.alg, Offset: offset, State: st})
	tmp := w.statePath + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("save ingest %q state: %w", w.ref, err)
	}
	if err := os.Rename(tmp, w.statePath); err != nil {
		return fmt.Errorf("save ingest %q state: %w", w.ref, err)
	}
	w.saved = offset
	w.hasState = true
	return nil
}

func (w *writer) Offset() int64 { return w.offset }

func (w *writer) Digest() digest.Digest { return digest.NewDigest(w.alg, w.h) }

func (w *writer) Commit(ctx context.Context, size int64, expected digest.Digest) (err error) {
	if w.done {
		return fmt.Errorf("commit ingest %q: %w: writer is closed", w.ref, errdef.ErrInvalidState)
	}
	defer func() {
		if err != nil {
			w.discard()
		}
	}()
	if size > 0 && size != w.offset {
		return fmt.Errorf("commit ingest %q: %w: %d bytes written, expected %d", w.ref, errdef.ErrSizeMismatch, w.offset, size)
	}
	got := w.Digest()
	if expected != "" {
		if err := content.ValidateDigest(expected); err != nil {
			return fmt.Errorf("commit ingest %q: %w", w.ref, err)
		}
		if expected.Algorithm() != w.alg {
			if got, err = w.rehash(expected.Algorithm()); err != nil {
				return err
			}
		}
		if got != expected {
			return fmt.Errorf("commit ingest %q: %w: content hashes to %s, expected %s", w.ref, errdef.ErrDigestMismatch, got, expected)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if w.hasState {
		unix.Unlink(w.statePath)
	}
	if err := w.s.install(w.f, got); err != nil {
		return err
	}
	w.f.Close()
	w.done = true
	w.s.cleanIngestDir()
	return nil
}

func (w *writer) rehash(alg digest.Algorithm) (digest.Digest, error) {
	nh, err := hashFunc(alg)
	if err != nil {
		return "", err
	}
	h := nh()
	if _, err := io.Copy(h, io.NewSectionReader(w.f, 0, w.offset)); err != nil {
		return "", fmt.Errorf("commit ingest %q: rehash with %s: %w", w.ref, alg, err)
	}
	return digest.NewDigest(alg, h), nil
}

// Checkpoint saves what Close would save and keeps the writer open: one kept between the
// requests of an upload loses nothing to a kill that Close would have kept.
func (w *writer) Checkpoint() error {
	if w.done {
		return fmt.Errorf("checkpoint ingest %q: %w: writer is closed", w.ref, errdef.ErrInvalidState)
	}
	if (w.hasState || w.offset >= w.s.checkpoint) && w.saved != w.offset {
		return w.saveState(w.offset)
	}
	return nil
}

func (w *writer) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	var err error
	// An ingest that never reached a checkpoint has no state file: reopening it rehashes its
	// data (less than one checkpoint interval), which is cheaper than saving a state each time.
	if w.hasState || w.offset >= w.s.checkpoint {
		err = w.saveState(w.offset)
	}
	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close ingest %q: %w", w.ref, cerr)
	}
	return err
}

func (w *writer) Cancel(ctx context.Context) error {
	if w.done {
		return nil
	}
	w.discard()
	return nil
}

// discard removes the ingest while still holding its lock, then releases it.
func (w *writer) discard() {
	if w.done {
		return
	}
	w.done = true
	os.Remove(w.dataPath)
	os.Remove(w.statePath)
	os.Remove(w.statePath + ".tmp")
	w.f.Close()
	w.s.cleanIngestDir()
}

// RemoveStaleIngests removes what interrupted writes left in the ingest directory and last
// changed before cutoff: resumable ingests (see WriterAlg) that no Writer holds — a held one
// is in use, whatever its age — with their saved state, and the temporary files of Push calls
// that a killed process left. It returns how many ingests and temporaries it removed (with
// dryRun, would remove). The default ingest directory is opened beneath the root without
// following symlinks. A Writer opening an ingest while it is removed finds it gone and starts
// afresh, as after Cancel.
func (s *Store) RemoveStaleIngests(cutoff time.Time, dryRun bool) (int, error) {
	var dfd int
	var err error
	if s.ownIngest {
		dfd, err = s.openBeneath(DefaultIngestDir, unix.O_RDONLY|unix.O_DIRECTORY)
	} else {
		dfd, err = unix.Open(s.ingestDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	if errors.Is(err, unix.ENOENT) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("open ingest directory: %w", errUnsafe(err))
	}
	dir := os.NewFile(uintptr(dfd), s.ingestDir)
	defer dir.Close()
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return 0, fmt.Errorf("list ingest directory: %w", err)
	}
	old := func(name string) (unix.Stat_t, bool) {
		var st unix.Stat_t
		ok := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil &&
			st.Mode&unix.S_IFMT == unix.S_IFREG && time.Unix(st.Mtim.Unix()).Before(cutoff)
		return st, ok
	}
	remove := func(name string) error {
		if dryRun {
			return nil
		}
		if err := unix.Unlinkat(dfd, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("remove ingest %s: %w", filepath.Join(s.ingestDir, name), err)
		}
		return nil
	}
	n := 0
	for _, name := range names {
		switch {
		case strings.HasPrefix(name, "push-"): // a Push that never finished
			if _, ok := old(name); ok {
				if err := remove(name); err != nil {
					return n, err
				}
				n++
			}
		case strings.HasSuffix(name, ".data"):
			st, ok := old(name)
			if !ok {
				continue
			}
			fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
			if err != nil {
				continue
			}
			var fst unix.Stat_t
			// Held by a Writer, or not the file just looked at (committed or replaced): keep.
			if unix.Fstat(fd, &fst) != nil || fst.Ino != st.Ino || fst.Dev != st.Dev || unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) != nil {
				unix.Close(fd)
				continue
			}
			state := strings.TrimSuffix(name, ".data") + ".state"
			err = remove(state)
			if err == nil {
				err = remove(state + ".tmp")
			}
			if err == nil {
				err = remove(name)
			}
			unix.Close(fd)
			if err != nil {
				return n, err
			}
			n++
		case strings.HasSuffix(name, ".state"), strings.HasSuffix(name, ".state.tmp"): // without its data
			base := strings.TrimSuffix(strings.TrimSuffix(name, ".tmp"), ".state")
			var st unix.Stat_t
			if _, ok := old(name); ok && unix.Fstatat(dfd, base+".data", &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
				if err := remove(name); err != nil {
					return n, err
				}
			}
		}
	}
	if !dryRun {
		s.cleanIngestDir()
	}
	return n, nil
}
