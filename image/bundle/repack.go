package bundle

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/image"
	"github.com/wharfoci/wharf/image/layer"
	"github.com/wharfoci/wharf/internal/durable"
	"github.com/wharfoci/wharf/internal/rootfs"
)

// Store is where images are read and written: an image layout.
type Store interface {
	content.Storage
	content.Tagger
}

// RepackOptions control Repack.
type RepackOptions struct {
	// Compression of the new layer (default gzip).
	Compression image.Compression
	// SourceDateEpoch, when set, is the created time of the new config and history entry and
	// clamps every mtime in the layer.
	SourceDateEpoch *time.Time
	// CreatedBy is the history entry's created_by (default "wharf repack").
	CreatedBy string
}

// RepackResult describes a repacked image.
type RepackResult struct {
	Manifest, Config, Layer ocispec.Descriptor
	DiffID                  digest.Digest
	Changes                 int
}

// ReadMeta reads BUNDLE/wharf.json.
func ReadMeta(dir string) (*Meta, error) {
	b, err := os.ReadFile(filepath.Join(dir, MetaFile))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("read bundle %s: %w: no %s (not unpacked by wharf)", dir, errdef.ErrNotFound, MetaFile)
		}
		return nil, err
	}
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("read %s: %w: %v", filepath.Join(dir, MetaFile), errdef.ErrInvalidArgument, err)
	}
	return &m, nil
}

// Repack writes what changed in dir/rootfs since it was unpacked (or last repacked) as one
// new layer on top of the bundle's image, with a new config (diff_ids and history extended)
// and manifest stored in s and tagged tag. Changes are found from the snapshot taken at unpack
// time, without reading unchanged files. Afterwards the bundle records the new image, so the
// next repack writes only what changes from here.
func Repack(ctx context.Context, s Store, dir, tag string, opts RepackOptions) (*RepackResult, error) {
	meta, err := ReadMeta(dir)
	if err != nil {
		return nil, err
	}
	mb, err := content.ReadAll(ctx, s, meta.Manifest, 0)
	if err != nil {
		return nil, fmt.Errorf("read manifest %s of the bundle's image: %w", meta.Manifest.Digest, err)
	}
	m, err := image.ParseManifest(meta.Manifest, mb)
	if err != nil {
		return nil, err
	}
	cb, err := content.ReadAll(ctx, s, m.Config, 0)
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", m.Config.Digest, err)
	}
	var img ocispec.Image
	if _, err := image.ParseConfig(m.Config, cb); err != nil {
		return nil, err
	}
	json.Unmarshal(cb, &img)

	sf, err := os.Open(filepath.Join(dir, SnapshotFile))
	if err != nil {
		return nil, fmt.Errorf("read bundle snapshot: %w", err)
	}
	before, err := layer.ReadSnapshot(sf)
	sf.Close()
	if err != nil {
		return nil, err
	}
	root, err := rootfs.Open(filepath.Join(dir, "rootfs"))
	if err != nil {
		return nil, err
	}
	defer root.Close()
	changes, lower, err := layer.Changes(root, before)
	if err != nil {
		return nil, err
	}

	docker := image.IsDocker(meta.Manifest.MediaType)
	mt, err := layerMediaType(opts.Compression, docker)
	if err != nil {
		return nil, err
	}
	ld, diffID, err := writeLayer(ctx, s, mt, opts.Compression, func(w io.Writer) error {
		return layer.WriteChanges(ctx, root, changes, lower, w, layer.WriteOptions{
			SourceDateEpoch: opts.SourceDateEpoch, UIDMap: meta.UIDMap, GIDMap: meta.GIDMap,
		})
	})
	if err != nil {
		return nil, err
	}
	created := time.Now().UTC()
	if opts.SourceDateEpoch != nil {
		created = opts.SourceDateEpoch.UTC()
	}
	by := opts.CreatedBy
	if by == "" {
		by = "wharf repack"
	}
	img.RootFS.DiffIDs = append(img.RootFS.DiffIDs, diffID)
	img.History = append(img.History, ocispec.History{Created: &created, CreatedBy: by})
	img.Created = &created
	md, cd, err := pushImage(ctx, s, m, meta.Manifest.MediaType, &img, append(append([]ocispec.Descriptor{}, m.Layers...), ld), tag)
	if err != nil {
		return nil, err
	}
	// The bundle now stands for the new image: record it, and its current state.
	nm := *meta
	nm.Manifest, nm.Config = md, cd
	if err := writeSnapshotFile(root, dir); err != nil {
		return nil, err
	}
	if err := writeJSONAtomic(filepath.Join(dir, MetaFile), nm); err != nil {
		return nil, err
	}
	return &RepackResult{Manifest: md, Config: cd, Layer: ld, DiffID: diffID, Changes: len(changes)}, nil
}

func layerMediaType(c image.Compression, docker bool) (string, error) {
	switch {
	case c == image.Gzip && docker:
		return image.MediaTypeDockerLayerGzip, nil
	case c == image.Zstd && docker:
		return image.MediaTypeDockerLayerZstd, nil
	case c == image.Uncompressed && docker:
		return image.MediaTypeDockerLayer, nil
	case c == image.Gzip:
		return image.MediaTypeLayerGzip, nil
	case c == image.Zstd:
		return image.MediaTypeLayerZstd, nil
	case c == image.Uncompressed:
		return image.MediaTypeLayer, nil
	}
	return "", fmt.Errorf("repack: %w: compression %s", errdef.ErrUnsupported, c)
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// writeLayer streams the tar that gen writes through the compressor into s, hashing both the
// tar (diffID) and the blob on the way.
func writeLayer(ctx context.Context, s Store, mediaType string, comp image.Compression, gen func(io.Writer) error) (ocispec.Descriptor, digest.Digest, error) {
	tmp, err := os.CreateTemp("", "wharf-layer-*")
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	blobHash := sha256.New()
	blob := &countWriter{w: io.MultiWriter(tmp, blobHash)}
	var zw io.WriteCloser
	switch comp {
	case image.Gzip:
		zw = gzip.NewWriter(blob)
	case image.Zstd:
		z, err := zstd.NewWriter(blob, zstd.WithEncoderConcurrency(1))
		if err != nil {
			return ocispec.Descriptor{}, "", err
		}
		zw = z
	default:
		zw = nopWriteCloser{blob}
	}
	tarHash := sha256.New()
	if err := gen(io.MultiWriter(zw, tarHash)); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	if err := zw.Close(); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	d := ocispec.Descriptor{MediaType: mediaType, Digest: digest.NewDigest(digest.SHA256, blobHash), Size: blob.n}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	if err := s.Push(ctx, d, tmp); err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("store layer %s: %w", d.Digest, err)
	}
	return d, digest.NewDigest(digest.SHA256, tarHash), nil
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// pushImage stores config img and a manifest like m (of media type mt) with layers, and tags
// the manifest (when tag is not empty).
func pushImage(ctx context.Context, s Store, m *ocispec.Manifest, mt string, img *ocispec.Image, layers []ocispec.Descriptor, tag string) (ocispec.Descriptor, ocispec.Descriptor, error) {
	cb, err := json.Marshal(img)
	if err != nil {
		return ocispec.Descriptor{}, ocispec.Descriptor{}, err
	}
	cmt := m.Config.MediaType
	if cmt == "" {
		cmt = image.MediaTypeConfig
	}
	cd, err := content.PushBytes(ctx, s, cmt, cb)
	if err != nil {
		return ocispec.Descriptor{}, ocispec.Descriptor{}, fmt.Errorf("store config: %w", err)
	}
	nm := *m
	nm.Config = cd
	nm.Layers = layers
	if nm.MediaType == "" && !image.IsDocker(mt) {
		nm.MediaType = mt
	}
	mb, err := json.Marshal(nm)
	if err != nil {
		return ocispec.Descriptor{}, ocispec.Descriptor{}, err
	}
	md, err := content.PushBytes(ctx, s, mt, mb)
	if err != nil {
		return ocispec.Descriptor{}, ocispec.Descriptor{}, fmt.Errorf("store manifest: %w", err)
	}
	if _, err := image.ParseManifest(md, mb); err != nil {
		return ocispec.Descriptor{}, ocispec.Descriptor{}, err
	}
	if tag != "" {
		if err := s.Tag(ctx, md, tag); err != nil {
			return ocispec.Descriptor{}, ocispec.Descriptor{}, err
		}
	}
	return md, cd, nil
}

// writeSnapshotFile records root's state in dir's snapshot file, replacing it durably.
func writeSnapshotFile(root *rootfs.Root, dir string) error {
	return durable.WriteFileFunc(filepath.Join(dir, SnapshotFile), 0o600, func(f *os.File) error {
		return layer.WriteSnapshot(root, f)
	})
}

// writeJSONAtomic replaces p with v's indented JSON durably.
func writeJSONAtomic(p string, v any) error {
	b, err := json.MarshalIndent(v, "", "\t")
	if err != nil {
		return err
	}
	return durable.WriteFile(p, append(b, '\n'), 0o644)
}
