package image

import (
	"context"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/content"
)

// Loaded is one image manifest and its config, as Load read them.
type Loaded struct {
	// Descriptor is the manifest's.
	Descriptor ocispec.Descriptor
	Manifest   *ocispec.Manifest
	// ConfigBytes is the config as stored and Config the parsed config; both are nil when the
	// manifest's config is not an image config (an artifact).
	ConfigBytes []byte
	Config      *ocispec.Image
}

// Load reads the image manifest desc (SelectManifest finds one in an index) and, when its
// config is an image config (IsConfig), that config. Both are read with content.ReadAll
// (verified against their descriptors, capped) and validated (ParseManifest: desc must be a
// manifest; ParseConfig). Whether they form a runnable image is ValidateImage's question.
func Load(ctx context.Context, f content.Fetcher, desc ocispec.Descriptor) (*Loaded, error) {
	mb, err := content.ReadAll(ctx, f, desc, 0)
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", desc.Digest, err)
	}
	m, err := ParseManifest(desc, mb)
	if err != nil {
		return nil, err
	}
	l := &Loaded{Descriptor: desc, Manifest: m}
	if !IsConfig(m.Config.MediaType) {
		return l, nil
	}
	if l.ConfigBytes, err = content.ReadAll(ctx, f, m.Config, 0); err != nil {
		return nil, fmt.Errorf("read config %s: %w", m.Config.Digest, err)
	}
	if l.Config, err = ParseConfig(m.Config, l.ConfigBytes); err != nil {
		return nil, err
	}
	return l, nil
}
