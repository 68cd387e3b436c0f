package copy

import (
	"context"
	"encoding/json"
	"fmt"

	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/image"
)

// Member is one image of an index made by Index: the manifest (or index) Ref names in Src.
type Member struct {
	Src Source
	Ref string
	// Name is what errors call the member (Ref when empty).
	Name string
	// Platform, when set, is written for the entry instead of the one its config gives.
	Platform *ocispec.Platform
}

// Index copies each member's graph to dst, whole, and stores an image index listing their
// roots in the order given, with the platform of each manifest read from its config (an index
// member is listed as a nested index, without a platform). The index is named dstRef (its
// digest when empty). It is what `buildah manifest create LIST IMAGE...` makes. Two members
// that resolve to the same platform are refused: a reader could not choose between them.
func Index(ctx context.Context, dst content.Target, dstRef string, members []Member, annotations map[string]string, opts Options) (ocispec.Descriptor, error) {
	if len(members) == 0 {
		return ocispec.Descriptor{}, fmt.Errorf("make an index: %w: no image given", errdef.ErrInvalidArgument)
	}
	idx := ocispec.Index{
		Versioned:   specs.Versioned{SchemaVersion: 2},
		MediaType:   ocispec.MediaTypeImageIndex,
		Annotations: annotations,
	}
	seen := map[string]string{}
	for _, m := range members {
		if m.Name == "" {
			m.Name = m.Ref
		}
		root, err := m.Src.Resolve(ctx, m.Ref)
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("make an index: %s: %w", m.Name, err)
		}
		if err := content.ValidateDescriptor(root); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("make an index: %s: %w", m.Name, err)
		}
		entry := ocispec.Descriptor{MediaType: root.MediaType, Digest: root.Digest, Size: root.Size, ArtifactType: root.ArtifactType}
		switch {
		case image.IsIndex(root.MediaType):
		case image.IsManifest(root.MediaType):
			p, err := manifestPlatform(ctx, m.Src, root)
			if err != nil {
				return ocispec.Descriptor{}, fmt.Errorf("make an index: %s: %w", m.Name, err)
			}
			if m.Platform != nil {
				p = *m.Platform
			}
			key := image.FormatPlatform(p)
			if prev, ok := seen[key]; ok {
				return ocispec.Descriptor{}, fmt.Errorf("make an index: %s and %s are both %s: %w", prev, m.Name, key, errdef.ErrInvalidArgument)
			}
			seen[key] = m.Name
			entry.Platform = &p
		default:
			return ocispec.Descriptor{}, fmt.Errorf("make an index: %s: %s is neither a manifest nor an index: %w", m.Name, root.MediaType, errdef.ErrInvalidArgument)
		}
		if err := CopyGraph(ctx, m.Src, dst, root, opts); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("make an index: %s: %w", m.Name, err)
		}
		idx.Manifests = append(idx.Manifests, entry)
	}
	b, err := json.Marshal(&idx)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	d, err := content.PushBytes(ctx, dst, ocispec.MediaTypeImageIndex, b)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("make an index: store it: %w", err)
	}
	if _, err := image.ParseIndex(d, b); err != nil { // what is stored must be valid
		return ocispec.Descriptor{}, err
	}
	ref := dstRef
	if ref == "" {
		ref = d.Digest.String()
	}
	if err := dst.Tag(ctx, d, ref); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("make an index: tag %s: %w", ref, err)
	}
	return d, nil
}

// manifestPlatform is the platform an image manifest's config declares.
func manifestPlatform(ctx context.Context, src content.Fetcher, d ocispec.Descriptor) (ocispec.Platform, error) {
	mb, err := content.ReadAll(ctx, src, d, 0)
	if err != nil {
		return ocispec.Platform{}, err
	}
	m, err := image.ParseManifest(d, mb)
	if err != nil {
		return ocispec.Platform{}, err
	}
	if !image.IsConfig(m.Config.MediaType) {
		return ocispec.Platform{}, fmt.Errorf("%s: config %s is not an image config: %w", d.Digest, m.Config.MediaType, errdef.ErrInvalidArgument)
	}
	cb, err := content.ReadAll(ctx, src, m.Config, 0)
	if err != nil {
		return ocispec.Platform{}, err
	}
	c, err := image.ParseConfig(m.Config, cb)
	if err != nil {
		return ocispec.Platform{}, err
	}
	return c.Platform, nil
}
