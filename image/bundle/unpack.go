package bundle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/image"
	"github.com/wharfoci/wharf/image/layer"
	"github.com/wharfoci/wharf/internal/rootfs"
)

// Files of a bundle besides rootfs/ and config.json.
const (
	// MetaFile records the image the bundle was unpacked from (Meta, JSON).
	MetaFile = "wharf.json"
	// SnapshotFile records every path of rootfs at unpack time (layer.WriteSnapshot).
	SnapshotFile = "wharf.snapshot"
	// VolumesDir holds the host side of Config.Volumes mounts.
	VolumesDir = "volumes"
)

// Meta is what a bundle remembers of its image.
type Meta struct {
	Manifest ocispec.Descriptor `json:"manifest"`
	Config   ocispec.Descriptor `json:"config"`
	// UIDMap and GIDMap are the shifts applied at unpack (repack shifts back).
	UIDMap []specs.LinuxIDMapping `json:"uidMap,omitempty"`
	GIDMap []specs.LinuxIDMapping `json:"gidMap,omitempty"`
}

// Options control Unpack.
type Options struct {
	UIDMap, GIDMap []specs.LinuxIDMapping
	Limits         layer.Limits
	// Progress, when set, is called before each layer is applied.
	Progress func(i, n int, d ocispec.Descriptor)
}

// Result describes an unpacked bundle.
type Result struct {
	Manifest, Config ocispec.Descriptor
	Layers           []layer.Stats
}

// Unpack unpacks the image manifest desc read from f into a new bundle directory dir (which
// must not exist): dir/rootfs, dir/config.json, dir/wharf.json and dir/wharf.snapshot. Layer
// blobs are verified against their descriptors and their uncompressed streams against the
// config's diff_ids. The bundle is built in a temporary sibling (0700) and renamed into place
// when complete; on failure nothing is left.
func Unpack(ctx context.Context, f content.Fetcher, desc ocispec.Descriptor, dir string, opts Options) (*Result, error) {
	dir = filepath.Clean(dir)
	if _, err := os.Lstat(dir); err == nil {
		return nil, fmt.Errorf("unpack to %s: %w", dir, errdef.ErrAlreadyExists)
	}
	img, err := readRunnable(ctx, f, desc)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(abs), "."+filepath.Base(abs)+".unpack-")
	if err != nil {
		return nil, fmt.Errorf("create bundle: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	root, err := makeRootfs(tmp)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	res := &Result{Manifest: desc, Config: img.Manifest.Config}
	if res.Layers, err = applyLayers(ctx, f, root, img, opts); err != nil {
		return nil, err
	}
	if err := writeBundleFiles(tmp, abs, root, img, opts); err != nil {
		return nil, err
	}
	if err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, abs, unix.RENAME_NOREPLACE); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("unpack to %s: %w", dir, errdef.ErrAlreadyExists)
		}
		return nil, fmt.Errorf("rename bundle into place: %w", err)
	}
	ok = true
	return res, nil
}

// readRunnable reads the manifest desc and its config, which must form a runnable image
// (image.ValidateImage).
func readRunnable(ctx context.Context, f content.Fetcher, desc ocispec.Descriptor) (*image.Loaded, error) {
	img, err := image.Load(ctx, f, desc)
	if err != nil {
		return nil, err
	}
	if err := image.ValidateImage(img.Manifest, img.Config); err != nil {
		return nil, err
	}
	return img, nil
}

// makeRootfs creates bundle/rootfs (0755) and opens it confined (internal/rootfs).
func makeRootfs(bundle string) (*rootfs.Root, error) {
	p := filepath.Join(bundle, "rootfs")
	if err := os.Mkdir(p, 0755); err != nil {
		return nil, err
	}
	os.Chmod(p, 0755)
	return rootfs.Open(p)
}

// applyLayers applies the image's layers to root in order, each against its diff_id.
func applyLayers(ctx context.Context, f content.Fetcher, root *rootfs.Root, img *image.Loaded, opts Options) ([]layer.Stats, error) {
	var stats []layer.Stats
	for i, l := range img.Manifest.Layers {
		if opts.Progress != nil {
			opts.Progress(i, len(img.Manifest.Layers), l)
		}
		st, err := applyOne(ctx, f, root, l, img.Config.RootFS.DiffIDs[i], opts)
		if err != nil {
			return nil, fmt.Errorf("unpack layer %d (%s): %w", i+1, l.Digest, err)
		}
		stats = append(stats, st)
	}
	return stats, nil
}

// writeBundleFiles writes config.json (the image's config converted, its volumes' host
// directories under tmp/volumes, named as they will be under abs), wharf.json and
// wharf.snapshot into the bundle being built in tmp.
func writeBundleFiles(tmp, abs string, root *rootfs.Root, img *image.Loaded, opts Options) error {
	spec, err := RuntimeConfig(img.Config, root, ConfigOptions{UIDMap: opts.UIDMap, GIDMap: opts.GIDMap,
		VolumeSource: func(i int, dest string) (string, error) {
			d := filepath.Join(tmp, VolumesDir, strconv.Itoa(i))
			if err := os.MkdirAll(d, 0755); err != nil {
				return "", err
			}
			return filepath.Join(abs, VolumesDir, strconv.Itoa(i)), nil
		}})
	if err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(tmp, "config.json"), spec); err != nil {
		return err
	}
	meta := Meta{Manifest: img.Descriptor, Config: img.Manifest.Config, UIDMap: opts.UIDMap, GIDMap: opts.GIDMap}
	if err := writeJSON(filepath.Join(tmp, MetaFile), meta); err != nil {
		return err
	}
	sf, err := os.OpenFile(filepath.Join(tmp, SnapshotFile), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0600)
	if err != nil {
		return err
	}
	err = layer.WriteSnapshot(root, sf)
	if cerr := sf.Close(); err == nil {
		err = cerr
	}
	return err
}

func applyOne(ctx context.Context, f content.Fetcher, root *rootfs.Root, l ocispec.Descriptor, diffID digest.Digest, opts Options) (layer.Stats, error) {
	if err := content.ValidateDescriptor(l); err != nil {
		return layer.Stats{}, err
	}
	rc, err := f.Fetch(ctx, l)
	if err != nil {
		return layer.Stats{}, err
	}
	defer rc.Close()
	vr := content.NewVerifyReader(rc, l)
	st, err := layer.Apply(ctx, root, vr, l.MediaType, layer.Options{
		Limits: opts.Limits, DiffID: diffID, UIDMap: opts.UIDMap, GIDMap: opts.GIDMap,
	})
	if err != nil {
		return st, err
	}
	// The decompressor may stop at the end of its stream: read the blob to its end so that
	// its digest and size are checked.
	if _, err := io.Copy(io.Discard, vr); err != nil {
		return st, err
	}
	return st, nil
}

func writeJSON(p string, v any) error {
	b, err := json.MarshalIndent(v, "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(p, append(b, '\n'), 0644)
}
