// Package durable holds wharf's one way of writing a small file that is acknowledged to
// someone: a registry's tags, links and referrers, a layout's index.json, stored credentials,
// the build cache's and the engine's records. When WriteFile returns nil the new content
// survives a crash or a power loss; until then a reader sees the old content or the new one,
// never a part or an empty file.
//
// The steps, in this order (the order is what makes it durable; TestOrder checks it):
//  1. create a temporary file beside the target (O_EXCL, a random name, no symlink followed),
//  2. write the data, 3. fsync the file, 4. close it,
//  5. rename it over the target (atomic on one file system),
//  6. fsync the directory, so that the rename itself is on disk.
//
// Any failure before 5 removes the temporary file and leaves the target as it was.
package durable

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Step names one step of a write, as the test hook sees it.
type Step string

const (
	StepCreate   Step = "create"
	StepWrite    Step = "write"
	StepSync     Step = "fsync"
	StepClose    Step = "close"
	StepRename   Step = "rename"
	StepSyncDir  Step = "fsync-dir"
	StepMkdir    Step = "mkdir"
	StepSyncMkd  Step = "fsync-parent"
	tempPrefix        = ".wharf-tmp-"
	beneathFlags      = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS
)

// hook, when set (by tests only), is called before each step with the name it acts on; an
// error it returns is that step's failure.
var hook func(step Step, name string) error

func do(step Step, name string) error {
	if hook == nil {
		return nil
	}
	return hook(step, name)
}

// WriteFile replaces path with data durably (see the package comment). The directory must
// exist (MkdirAll makes one durably). The file gets mode perm.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return WriteFileFunc(path, perm, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

// WriteAt replaces name, a file directly inside the directory dirfd (dir is only what errors
// call it), with data durably. Nothing is resolved outside dirfd and no symlink is followed:
// a symlink at name is replaced, not written through.
func WriteAt(dirfd int, dir, name string, data []byte, perm uint32) error {
	return WriteAtFunc(dirfd, dir, name, perm, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

// WriteFileFunc is WriteFile with the content written by fill (a copy of a stream, say).
func WriteFileFunc(path string, perm os.FileMode, fill func(*os.File) error) error {
	dir, name := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer d.Close()
	return WriteAtFunc(int(d.Fd()), dir, name, uint32(perm.Perm()), fill)
}

// WriteAtFunc is WriteAt with the content written by fill, which is given the temporary file.
func WriteAtFunc(dirfd int, dir, name string, perm uint32, fill func(*os.File) error) error {
	if name == "" || name == "." || name == ".." || filepath.Base(name) != name {
		return fmt.Errorf("write %q in %s: not a file name", name, dir)
	}
	target := filepath.Join(dir, name)
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return fmt.Errorf("write %s: %w", target, err)
	}
	tmp := tempPrefix + name + "-" + hex.EncodeToString(rnd[:])
	if err := do(StepCreate, tmp); err != nil {
		return fmt.Errorf("write %s: create temporary file: %w", target, err)
	}
	how := unix.OpenHow{Flags: unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC, Mode: uint64(perm), Resolve: beneathFlags}
	fd, err := openat2(dirfd, tmp, &how)
	if err != nil {
		return fmt.Errorf("write %s: create temporary file: %w", target, err)
	}
	f := os.NewFile(uintptr(fd), filepath.Join(dir, tmp))
	renamed := false
	defer func() {
		if !renamed {
			f.Close()
			_ = unix.Unlinkat(dirfd, tmp, 0)
		}
	}()
	if err := do(StepWrite, tmp); err != nil {
		return fmt.Errorf("write %s: %w", target, err)
	}
	if err := fill(f); err != nil {
		return fmt.Errorf("write %s: %w", target, err)
	}
	if err := do(StepSync, tmp); err != nil {
		return fmt.Errorf("write %s: fsync: %w", target, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: fsync: %w", target, err)
	}
	if err := do(StepClose, tmp); err != nil {
		return fmt.Errorf("write %s: close: %w", target, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: close: %w", target, err)
	}
	if err := do(StepRename, name); err != nil {
		return fmt.Errorf("write %s: rename into place: %w", target, err)
	}
	if err := unix.Renameat(dirfd, tmp, dirfd, name); err != nil {
		return fmt.Errorf("write %s: rename into place: %w", target, err)
	}
	renamed = true
	if err := SyncDir(dirfd, dir); err != nil {
		return fmt.Errorf("write %s: %w", target, err)
	}
	return nil
}

// SyncDir fsyncs the directory dirfd (named dir in errors): what was renamed, linked or
// created in it is then on disk.
func SyncDir(dirfd int, dir string) error {
	if err := do(StepSyncDir, dir); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	if err := unix.Fsync(dirfd); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

// MkdirAll creates path and any missing parents with mode perm, as os.MkdirAll does, and
// fsyncs the parent of every directory it created, so the new directories survive a crash
// with what is later written into them.
func MkdirAll(path string, perm os.FileMode) error {
	path = filepath.Clean(path)
	st, err := os.Stat(path)
	if err == nil {
		if !st.IsDir() {
			return fmt.Errorf("mkdir %s: %w", path, unix.ENOTDIR)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	parent := filepath.Dir(path)
	if parent != path {
		if err := MkdirAll(parent, perm); err != nil {
			return err
		}
	}
	if err := do(StepMkdir, path); err != nil {
		return fmt.Errorf("mkdir %s: %w", path, err)
	}
	if err := os.Mkdir(path, perm); err != nil {
		if errors.Is(err, fs.ErrExist) {
			if st, serr := os.Stat(path); serr == nil && st.IsDir() {
				return nil // made by someone else meanwhile: their fsync, not ours
			}
		}
		return err
	}
	if err := do(StepSyncMkd, parent); err != nil {
		return fmt.Errorf("fsync directory %s: %w", parent, err)
	}
	d, err := os.Open(parent)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := unix.Fsync(int(d.Fd())); err != nil {
		return fmt.Errorf("fsync directory %s: %w", parent, err)
	}
	return nil
}

// IsTemp reports whether name is one of WriteAt's temporary files (left behind only by a
// crash between create and rename): collectors remove them, listings skip them.
func IsTemp(name string) bool {
	return len(name) > len(tempPrefix) && name[:len(tempPrefix)] == tempPrefix
}

func openat2(dirfd int, name string, how *unix.OpenHow) (int, error) {
	for {
		fd, err := unix.Openat2(dirfd, name, how)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		return fd, err
	}
}
