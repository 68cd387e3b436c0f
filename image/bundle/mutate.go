package bundle

import (
	"context"
	"fmt"
	"runtime"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/image"
)

// NewImage stores an image with no layers for platform (default: this machine's) in s and
// tags it. created (default: now) is the config's created time.
func NewImage(ctx context.Context, s Store, tag string, platform *ocispec.Platform, created *time.Time) (ocispec.Descriptor, error) {
	p := image.DefaultPlatform()
	if platform != nil {
		p = *platform
	}
	if p.OS == "" {
		p.OS, p.Architecture = runtime.GOOS, runtime.GOARCH
	}
	t := time.Now().UTC()
	if created != nil {
		t = created.UTC()
	}
	img := &ocispec.Image{Created: &t, Platform: p, RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{}}}
	m := &ocispec.Manifest{MediaType: image.MediaTypeManifest, Config: ocispec.Descriptor{MediaType: image.MediaTypeConfig}}
	m.SchemaVersion = 2
	md, _, err := pushImage(ctx, s, m, image.MediaTypeManifest, img, []ocispec.Descriptor{}, tag)
	return md, err
}

// Mutate stores a new config made by fn from the config of the image manifest desc, and a
// new manifest pointing at it, and tags the manifest with tag (or, when tag is empty, adds it untagged to the index). The old manifest stays stored,
// reachable by its digest. A history entry (empty_layer) records createdBy.
func Mutate(ctx context.Context, s Store, desc ocispec.Descriptor, tag, createdBy string, created *time.Time, fn func(*ocispec.Image) error) (ocispec.Descriptor, error) {
	if !image.IsManifest(desc.MediaType) {
		return ocispec.Descriptor{}, fmt.Errorf("configure %s: %w: %s is not an image manifest (select one platform's manifest)", desc.Digest, errdef.ErrUnsupported, desc.MediaType)
	}
	l, err := image.Load(ctx, s, desc)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if l.Config == nil {
		return ocispec.Descriptor{}, fmt.Errorf("configure %s: %w: config %s is not an image config", desc.Digest, errdef.ErrUnsupported, l.Manifest.Config.MediaType)
	}
	m, img := l.Manifest, *l.Config
	if err := fn(&img); err != nil {
		return ocispec.Descriptor{}, err
	}
	t := time.Now().UTC()
	if created != nil {
		t = created.UTC()
	}
	img.Created = &t
	img.History = append(img.History, ocispec.History{Created: &t, CreatedBy: createdBy, EmptyLayer: true})
	md, _, err := pushImage(ctx, s, m, desc.MediaType, &img, m.Layers, tag)
	if err == nil && tag == "" {
		err = s.Tag(ctx, md, md.Digest.String()) // an untagged index.json entry keeps it from gc
	}
	return md, err
}
