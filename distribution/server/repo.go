package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/internal/durable"
)

// Repository links. Names, tags, digests and upload ids are validated before they reach these
// functions, so every path below is built from safe components.

func (g *Registry) repoDir(name string) string { return filepath.Join(g.repos, name) }

func (g *Registry) blobLink(name string, d digest.Digest) string {
	return filepath.Join(g.repos, name, "_blobs", d.Algorithm().String(), d.Encoded())
}

func (g *Registry) manifestLink(name string, d digest.Digest) string {
	return filepath.Join(g.repos, name, "_manifests", d.Algorithm().String(), d.Encoded())
}

func (g *Registry) tagPath(name, tag string) string {
	return filepath.Join(g.repos, name, "_tags", tag)
}

func (g *Registry) referrersDir(name string, subject digest.Digest) string {
	return filepath.Join(g.repos, name, "_referrers", subject.Algorithm().String(), subject.Encoded())
}

// linkBlob makes the CAS blob d (or, with from set, the blob as linked in another repository)
// visible in repository name: a hard link, so that HEAD and GET are one open or stat.
func (g *Registry) linkBlob(name string, d digest.Digest, src string) error {
	if src == "" {
		p, err := g.store.BlobPath(d)
		if err != nil {
			return err
		}
		src = p
	}
	dst := g.blobLink(name, d)
	for attempt := 0; ; attempt++ {
		err := unix.Linkat(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, 0)
		switch {
		case err == nil:
			// the link is acknowledged to the client: make the new directory entry durable
			if err := syncDir(filepath.Dir(dst)); err != nil {
				return fmt.Errorf("link blob %s into %s: %w", d, name, err)
			}
			return nil
		case errors.Is(err, unix.EEXIST):
			return nil
		case errors.Is(err, unix.EMLINK):
			// The file system's hard-link limit (65000 on ext4): give this repository a copy.
			return copyFile(src, dst)
		case errors.Is(err, unix.ENOENT) && attempt == 0:
			if _, serr := os.Lstat(src); serr != nil {
				return fmt.Errorf("link blob %s into %s: %w", d, name, errdef.ErrNotFound)
			}
			if err := durable.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return fmt.Errorf("link blob %s into %s: %w", d, name, err)
			}
		default:
			return fmt.Errorf("link blob %s into %s: %w", d, name, err)
		}
	}
}

// copyFile copies src to dst durably (internal/durable).
func copyFile(src, dst string) error {
	in, err := os.OpenFile(src, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	return durable.WriteFileFunc(dst, 0o444, func(out *os.File) error {
		_, err := io.Copy(out, in)
		return err
	})
}

// statBlob returns the size of blob d in repository name (errdef.ErrNotFound when it is not
// linked there).
func (g *Registry) statBlob(name string, d digest.Digest) (int64, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(unix.AT_FDCWD, g.blobLink(name, d), &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return 0, errdef.ErrNotFound
		}
		return 0, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return 0, errdef.ErrUnsafePath
	}
	return st.Size, nil
}

// openBlob opens blob d of repository name.
func (g *Registry) openBlob(name string, d digest.Digest) (*os.File, int64, error) {
	f, err := os.OpenFile(g.blobLink(name, d), os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
			return nil, 0, errdef.ErrNotFound
		}
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, errdef.ErrUnsafePath
	}
	return f, st.Size(), nil
}

// writeAtomic replaces path with b durably (internal/durable), creating its directories.
func writeAtomic(path string, b []byte) error {
	err := durable.WriteFile(path, b, 0o644)
	if errors.Is(err, fs.ErrNotExist) {
		if err = durable.MkdirAll(filepath.Dir(path), 0o755); err == nil {
			err = durable.WriteFile(path, b, 0o644)
		}
	}
	return err
}

// removeDurably removes path and fsyncs its directory: a delete acknowledged to a client
// stays deleted after a crash.
func removeDurably(path string) error {
	if err := os.Remove(path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// syncDir makes what was linked or renamed into dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return durable.SyncDir(int(d.Fd()), dir)
}

func randomID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// manifestMeta is what a repository records about one of its manifests.
type manifestMeta struct {
	Digest    digest.Digest
	MediaType string
	Size      int64
}

// lookupManifest resolves ref (a tag or a validated digest) in repository name.
func (g *Registry) lookupManifest(name, ref string, isDigest bool) (manifestMeta, error) {
	var d digest.Digest
	if isDigest {
		d = digest.Digest(ref)
	} else {
		b, err := os.ReadFile(g.tagPath(name, ref))
		if err != nil {
			return manifestMeta{}, errdef.ErrNotFound
		}
		d = digest.Digest(strings.TrimSpace(string(b)))
		if g.validDigest(d) != nil {
			return manifestMeta{}, errdef.ErrNotFound
		}
	}
	mt, err := os.ReadFile(g.manifestLink(name, d))
	if err != nil {
		return manifestMeta{}, errdef.ErrNotFound
	}
	info, err := g.store.Info(context.Background(), d)
	if err != nil {
		return manifestMeta{}, errdef.ErrNotFound
	}
	return manifestMeta{Digest: d, MediaType: string(mt), Size: info.Size}, nil
}

// listDir returns the sorted names in dir, skipping temporary files; a missing dir is empty.
func listDir(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
			return nil, nil
		}
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	names = slices.DeleteFunc(names, func(n string) bool { return strings.HasPrefix(n, ".") })
	slices.Sort(names)
	return names, nil
}

// referrers returns the descriptors of the manifests in name whose subject is subject.
func (g *Registry) referrers(name string, subject digest.Digest, artifactType string) ([]ocispec.Descriptor, error) {
	dir := g.referrersDir(name, subject)
	entries, err := listDir(dir)
	if err != nil {
		return nil, err
	}
	out := []ocispec.Descriptor{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e))
		if err != nil {
			continue
		}
		var d ocispec.Descriptor
		if json.Unmarshal(b, &d) != nil || g.validDigest(d.Digest) != nil {
			continue
		}
		if _, err := os.Lstat(g.manifestLink(name, d.Digest)); err != nil {
			continue // deleted (or its push did not finish)
		}
		if artifactType != "" && d.ArtifactType != artifactType {
			continue
		}
		out = append(out, d)
	}
	return out, nil
}

func referrerEntry(d digest.Digest) string {
	return d.Algorithm().String() + "-" + d.Encoded()
}

// catalog lists the repositories under root in lexical order: a directory is a repository when
// it holds one of the _blobs, _manifests or _tags directories.
func (g *Registry) catalog() ([]string, error) {
	var out []string
	err := filepath.WalkDir(g.repos, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		base := d.Name()
		if strings.HasPrefix(base, "_") {
			if base == "_manifests" || base == "_tags" || base == "_blobs" {
				rel, _ := filepath.Rel(g.repos, filepath.Dir(p))
				if n := len(out); n == 0 || out[n-1] != rel {
					out = append(out, rel)
				}
			}
			return filepath.SkipDir
		}
		return nil
	})
	slices.Sort(out)
	return slices.Compact(out), err
}

func isNotDir(err error) bool { return errors.Is(err, unix.ENOTDIR) }

var specsVersioned = specs.Versioned{SchemaVersion: 2}
