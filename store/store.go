// Package store is wharf's local image store, the one `wharf build` and the engine share
// (default /var/lib/wharf, the global --root):
//
//	ROOT/images/     an OCI image layout: every blob as it was pulled or built (so a push after
//	                 a pull is byte-exact), index.json naming each image by its full reference
//	                 (docker.io/library/busybox:latest, localhost/app:v1)
//	ROOT/snapshots/  the layers unpacked, one committed snapshot per layer, named by its chain
//	                 ID (package snapshot), shared read-only by every container and build step
//
// Images are unpacked once: a second container of an image, or a build step on it, prepares a
// snapshot on the image's top chain ID and unpacks nothing.
package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/distribution/reference"
	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/image"
	imagecopy "github.com/wharfoci/wharf/image/copy"
	"github.com/wharfoci/wharf/image/layer"
	"github.com/wharfoci/wharf/image/layout"
	"github.com/wharfoci/wharf/internal/rootfs"
	"github.com/wharfoci/wharf/snapshot"
)

// DefaultRoot is where the store lives unless --root says otherwise (podman's is
// /var/lib/containers/storage).
const DefaultRoot = "/var/lib/wharf"

// Store is an open image store. It is safe for concurrent use, and several processes may use
// one root at once.
type Store struct {
	root      string
	Images    *layout.Layout
	Snapshots *snapshot.Snapshotter
}

// Options of Open.
type Options struct {
	// Driver forces the snapshot driver of a new store (snapshot.Options).
	Driver snapshot.Driver
}

// Open opens the store at root, creating it when missing.
func Open(ctx context.Context, root string, opts Options) (*Store, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("open store %s: %w", root, err)
	}
	imgs := filepath.Join(root, "images")
	l, err := layout.Open(imgs)
	if errors.Is(err, errdef.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
		l, err = layout.Init(imgs)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", root, err)
	}
	sn, err := snapshot.New(ctx, filepath.Join(root, "snapshots"), snapshot.Options{Driver: opts.Driver})
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("open store %s: %w", root, err)
	}
	return &Store{root: root, Images: l, Snapshots: sn}, nil
}

// Close releases the store.
func (s *Store) Close() error { return s.Images.Close() }

// Root is the store's directory.
func (s *Store) Root() string { return s.root }

// NormalizeName returns the full reference a store name stands for, as podman names images:
// a name without a registry is local ("app" → localhost/app:latest) when local is true, else
// docker's ("busybox" → docker.io/library/busybox:latest). A name by digest keeps it.
func NormalizeName(name string, local bool) (string, error) {
	first, _, hasSlash := strings.Cut(name, "/")
	domain := hasSlash && (strings.ContainsAny(first, ".:") || first == "localhost")
	if local && !domain {
		name = "localhost/" + name
	}
	r, err := reference.ParseNormalized(name)
	if err != nil {
		return "", fmt.Errorf("image name %q: %w", name, err)
	}
	return r.String(), nil
}

// Image is one named image of the store.
type Image struct {
	Name       string
	Descriptor ocispec.Descriptor
}

// List returns the store's named images, by name.
func (s *Store) List(ctx context.Context) ([]Image, error) {
	es, err := s.Images.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []Image
	for _, e := range es {
		if e.Name == "" || e.Name == e.Descriptor.Digest.String() {
			continue
		}
		out = append(out, Image{Name: e.Name, Descriptor: e.Descriptor})
	}
	return out, nil
}

// Resolve returns the manifest or index a full name (NormalizeName) or digest names.
func (s *Store) Resolve(ctx context.Context, name string) (ocispec.Descriptor, error) {
	d, err := s.Images.Resolve(ctx, name)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("image %s: %w", name, err)
	}
	return d, nil
}

// Tag names d (stored already) name; an existing name moves.
func (s *Store) Tag(ctx context.Context, d ocispec.Descriptor, name string) error {
	return s.Images.Tag(ctx, d, name)
}

// Import copies the image ref names in src into the store, blobs as they are, and names it
// name (its digest when empty). It returns the root stored (the platform's manifest when opts
// select one out of an index).
func (s *Store) Import(ctx context.Context, src imagecopy.Source, ref, name string, opts imagecopy.Options) (ocispec.Descriptor, error) {
	return imagecopy.Copy(ctx, src, ref, s.Images, name, opts)
}

// ChainIDs returns the chain IDs of diffIDs (image-spec config.md): the names of the
// committed snapshots of an image's layers, bottom first.
func ChainIDs(diffIDs []digest.Digest) []digest.Digest {
	out := make([]digest.Digest, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		out[i] = digest.FromString(out[i-1].String() + " " + d.String())
	}
	return out
}

// Manifest reads the image manifest d and its config from the store.
func (s *Store) Manifest(ctx context.Context, d ocispec.Descriptor) (*ocispec.Manifest, *ocispec.Image, error) {
	mb, err := content.ReadAll(ctx, s.Images, d, 0)
	if err != nil {
		return nil, nil, err
	}
	m, err := image.ParseManifest(d, mb)
	if err != nil {
		return nil, nil, err
	}
	cb, err := content.ReadAll(ctx, s.Images, m.Config, 0)
	if err != nil {
		return nil, nil, err
	}
	c, err := image.ParseConfig(m.Config, cb)
	if err != nil {
		return nil, nil, err
	}
	if err := image.ValidateImage(m, c); err != nil {
		return nil, nil, err
	}
	return m, c, nil
}

// Unpack makes sure every layer of the image manifest d has its committed snapshot, and
// returns the top one's name ("" for an image without layers). Layers already unpacked (by
// any image sharing them) are not unpacked again; a failure leaves no snapshot behind.
func (s *Store) Unpack(ctx context.Context, d ocispec.Descriptor) (string, error) {
	m, c, err := s.Manifest(ctx, d)
	if err != nil {
		return "", err
	}
	chain := ChainIDs(c.RootFS.DiffIDs)
	parent := ""
	for i, l := range m.Layers {
		name := chain[i].String()
		if _, err := s.Snapshots.Stat(ctx, name); err == nil {
			parent = name
			continue
		}
		if err := s.unpackLayer(ctx, l, c.RootFS.DiffIDs[i], name, parent); err != nil {
			return "", fmt.Errorf("unpack %s: layer %d (%s): %w", d.Digest, i+1, l.Digest, err)
		}
		parent = name
	}
	return parent, nil
}

func (s *Store) unpackLayer(ctx context.Context, l ocispec.Descriptor, diffID digest.Digest, name, parent string) (err error) {
	key := "extract-" + randomID() + "-" + name
	mounts, err := s.Snapshots.Prepare(ctx, key, parent)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			s.Snapshots.Remove(context.WithoutCancel(ctx), key)
		}
	}()
	if err := s.WithMounts(mounts, func(dir string) error { return applyLayer(ctx, s.Images, l, diffID, dir) }); err != nil {
		return err
	}
	if err := s.Snapshots.Commit(ctx, name, key); err != nil {
		if errors.Is(err, errdef.ErrAlreadyExists) {
			// another process unpacked the same layer meanwhile: theirs serves
			s.Snapshots.Remove(context.WithoutCancel(ctx), key)
			return nil
		}
		return err
	}
	return nil
}

func applyLayer(ctx context.Context, f content.Fetcher, l ocispec.Descriptor, diffID digest.Digest, dir string) error {
	root, err := rootfs.Open(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	rc, err := f.Fetch(ctx, l)
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = layer.Apply(ctx, root, content.NewVerifyReader(rc, l), l.MediaType, layer.Options{DiffID: diffID})
	return err
}

// WithMounts mounts mounts on a new directory under the store's mounts/, calls fn with it,
// and unmounts.
func (s *Store) WithMounts(mounts []snapshot.Mount, fn func(dir string) error) error {
	base := filepath.Join(s.root, "mounts")
	if err := os.MkdirAll(base, 0o700); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(base, "m-")
	if err != nil {
		return err
	}
	defer os.Remove(dir)
	if err := snapshot.MountAll(mounts, dir); err != nil {
		snapshot.Unmount(dir)
		return err
	}
	err = fn(dir)
	if uerr := snapshot.Unmount(dir); err == nil {
		err = uerr
	}
	return err
}

func randomID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
