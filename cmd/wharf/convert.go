package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/image"
	imagecopy "github.com/wharfoci/wharf/image/copy"
	"github.com/wharfoci/wharf/imageref"
)

// converter is a copy source that presents an image's manifests and indexes converted to
// another format (copy --format). Configs and layers keep their bytes; only the documents that
// name them change, and with them their digests.
type converter struct {
	src    imagecopy.Source
	format image.Format
	root   ocispec.Descriptor

	mu      sync.Mutex
	docs    map[digest.Digest][]byte
	mapped  map[digest.Digest]ocispec.Descriptor
	changes [][2]ocispec.Descriptor
}

func newConverter(ctx context.Context, src imagecopy.Source, root ocispec.Descriptor, format string, _ imagecopy.Options) (*converter, error) {
	f, err := image.ParseFormat(format)
	if err != nil {
		return nil, asUsage(err)
	}
	c := &converter{src: src, format: f, docs: map[digest.Digest][]byte{}, mapped: map[digest.Digest]ocispec.Descriptor{}}
	if c.root, err = c.convert(ctx, root, 0); err != nil {
		return nil, fmt.Errorf("convert to %s: %w", f, err)
	}
	return c, nil
}

func (c *converter) mediaType(mt string) (string, error) { return image.ConvertMediaType(mt, c.format) }

// convert returns d as it is in the target format (its documents converted, children first).
func (c *converter) convert(ctx context.Context, d ocispec.Descriptor, depth int) (ocispec.Descriptor, error) {
	if nd, ok := c.mapped[d.Digest]; ok {
		out := d
		out.MediaType, out.Digest, out.Size = nd.MediaType, nd.Digest, nd.Size
		return out, nil
	}
	if depth > image.MaxIndexDepth {
		return d, fmt.Errorf("%s: %w: indexes nested too deep", d.Digest, errdef.ErrInvalidArgument)
	}
	b, err := content.ReadAll(ctx, c.src, d, 0)
	if err != nil {
		return d, err
	}
	var nb []byte
	switch {
	case image.IsIndex(d.MediaType):
		idx, err := image.ParseIndex(d, b)
		if err != nil {
			return d, err
		}
		out := *idx
		out.Manifests = nil
		for _, m := range idx.Manifests {
			nm, err := c.convert(ctx, m, depth+1)
			if err != nil {
				return d, err
			}
			out.Manifests = append(out.Manifests, nm)
		}
		if out.MediaType, err = c.mediaType(d.MediaType); err != nil {
			return d, err
		}
		nb, err = json.Marshal(out)
		if err != nil {
			return d, err
		}
	case image.IsManifest(d.MediaType):
		m, err := image.ParseManifest(d, b)
		if err != nil {
			return d, err
		}
		out := *m
		if out.MediaType, err = c.mediaType(d.MediaType); err != nil {
			return d, err
		}
		if c.format == image.FormatDocker && (m.Subject != nil || m.ArtifactType != "") {
			return d, fmt.Errorf("manifest %s: %w: docker schema 2 has no subject or artifactType", d.Digest, errdef.ErrUnsupported)
		}
		if out.Config.MediaType, err = c.mediaType(m.Config.MediaType); err != nil {
			return d, err
		}
		out.Layers = nil
		for _, l := range m.Layers {
			if l.MediaType, err = c.mediaType(l.MediaType); err != nil {
				return d, err
			}
			out.Layers = append(out.Layers, l)
		}
		nb, err = json.Marshal(out)
		if err != nil {
			return d, err
		}
	default:
		return d, nil
	}
	nd := d
	nd.MediaType, _ = c.mediaType(d.MediaType)
	if nd.MediaType == d.MediaType && !changedChildren(b, nb) {
		c.mapped[d.Digest] = d
		return d, nil
	}
	nd.Digest, nd.Size = digest.FromBytes(nb), int64(len(nb))
	nd.Data = nil
	c.docs[nd.Digest] = nb
	c.mapped[d.Digest] = nd
	c.changes = append(c.changes, [2]ocispec.Descriptor{d, nd})
	return nd, nil
}

// changedChildren reports whether a re-encoded document differs from the original in what it
// references (the media types and digests of its descriptors).
func changedChildren(orig, conv []byte) bool {
	var a, b struct {
		Config    *ocispec.Descriptor  `json:"config"`
		Layers    []ocispec.Descriptor `json:"layers"`
		Manifests []ocispec.Descriptor `json:"manifests"`
	}
	json.Unmarshal(orig, &a)
	json.Unmarshal(conv, &b)
	ab, _ := json.Marshal(a)
	bb, _ := json.Marshal(b)
	return !bytes.Equal(ab, bb)
}

func (c *converter) Fetch(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	c.mu.Lock()
	b, ok := c.docs[d.Digest]
	c.mu.Unlock()
	if ok {
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	return c.src.Fetch(ctx, d)
}

func (c *converter) Exists(ctx context.Context, d ocispec.Descriptor) (bool, error) {
	c.mu.Lock()
	_, ok := c.docs[d.Digest]
	c.mu.Unlock()
	if ok {
		return true, nil
	}
	return c.src.Exists(ctx, d)
}

func (c *converter) Resolve(ctx context.Context, ref string) (ocispec.Descriptor, error) {
	if ref == c.root.Digest.String() {
		return c.root, nil
	}
	return c.src.Resolve(ctx, ref)
}

// report prints each document whose digest the conversion changed.
func (c *converter) report(opts *globalOptions, cmd *cobra.Command) {
	for _, ch := range c.changes {
		opts.infof(cmd, "converted %-8s %s → %s (%s)", image.KindName(ch[0].MediaType), ch[0].Digest, ch[1].Digest, ch[1].MediaType)
	}
}

// mountFrom lets a registry-to-registry copy on one registry mount blobs instead of copying
// them.
func mountFrom(src, dst *imageref.Handle, o *imagecopy.Options) {
	if src.Repo == nil || dst.Repo == nil || src.Repo.Domain != dst.Repo.Domain || src.Repo.Name == dst.Repo.Name {
		return
	}
	from := src.Repo.Name
	o.MountFrom = func(context.Context, ocispec.Descriptor) ([]string, error) { return []string{from}, nil }
}
