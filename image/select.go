package image

import (
	"context"
	"errors"
	"fmt"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/errdef"
)

// MaxIndexDepth bounds how deep SelectManifest follows indexes nested in indexes.
const MaxIndexDepth = 8

// SelectManifest returns the descriptor of the image manifest for platform p reachable from
// desc; a nil p is the host's platform (DefaultPlatform). A manifest desc is returned as it is. For an index (OCI or Docker list), entries are
// tried in document order: a manifest entry whose platform matches p (see Match), or a nested
// index entry with a matching or no platform, searched in turn, at most MaxIndexDepth deep.
// When no entry's platform field matches, manifest entries without a platform (as umoci writes
// them) are tried by the os, architecture and variant of their image config. Every document is
// read with content.ReadAll (verified, capped) and validated with Parse.
//
// No match gives an error wrapping errdef.ErrNotFound that lists the platforms seen; a
// media type that is neither a manifest nor an index wraps errdef.ErrUnsupported.
func SelectManifest(ctx context.Context, f content.Fetcher, desc ocispec.Descriptor, platform *ocispec.Platform) (ocispec.Descriptor, error) {
	p := DefaultPlatform()
	if platform != nil {
		p = NormalizePlatform(*platform)
	}
	switch {
	case IsManifest(desc.MediaType):
		return desc, nil
	case !IsIndex(desc.MediaType):
		return ocispec.Descriptor{}, fmt.Errorf("select %s from %s: %w: media type %s is not a manifest or an index", FormatPlatform(p), desc.Digest, errdef.ErrUnsupported, desc.MediaType)
	}
	var seen []string
	d, ok, err := selectIn(ctx, f, desc, p, 0, &seen)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if !ok {
		have := "no platforms"
		if len(seen) > 0 {
			have = "platforms " + strings.Join(seen, ", ")
		}
		return ocispec.Descriptor{}, fmt.Errorf("select %s from index %s: %w: it has %s", FormatPlatform(p), desc.Digest, errdef.ErrNotFound, have)
	}
	return d, nil
}

func selectIn(ctx context.Context, f content.Fetcher, desc ocispec.Descriptor, p ocispec.Platform, depth int, seen *[]string) (ocispec.Descriptor, bool, error) {
	if depth >= MaxIndexDepth {
		return ocispec.Descriptor{}, false, fmt.Errorf("select %s from index %s: %w: indexes nested more than %d deep", FormatPlatform(p), desc.Digest, errdef.ErrInvalidArgument, MaxIndexDepth)
	}
	b, err := content.ReadAll(ctx, f, desc, 0)
	if err != nil {
		return ocispec.Descriptor{}, false, fmt.Errorf("read index %s: %w", desc.Digest, err)
	}
	x, err := ParseIndex(desc, b)
	if err != nil {
		return ocispec.Descriptor{}, false, err
	}
	var unknown []ocispec.Descriptor
	for _, m := range x.Manifests {
		if m.Platform != nil {
			*seen = append(*seen, FormatPlatform(NormalizePlatform(*m.Platform)))
		}
		switch {
		case IsManifest(m.MediaType):
			if m.Platform == nil {
				unknown = append(unknown, m)
			} else if Match(&p, m.Platform) {
				return m, true, nil
			}
		case IsIndex(m.MediaType):
			if m.Platform != nil && !Match(&p, m.Platform) {
				continue
			}
			d, ok, err := selectIn(ctx, f, m, p, depth+1, seen)
			if err != nil || ok {
				return d, ok, err
			}
		}
	}
	for _, m := range unknown {
		cp, err := manifestPlatform(ctx, f, m)
		if errors.Is(err, errdef.ErrUnsupported) {
			continue // an artifact: its config is not an image config
		}
		if err != nil {
			return ocispec.Descriptor{}, false, err
		}
		*seen = append(*seen, FormatPlatform(cp))
		if Match(&p, &cp) {
			return m, true, nil
		}
	}
	return ocispec.Descriptor{}, false, nil
}

// manifestPlatform reads the manifest m and its image config and returns the config's platform,
// normalised. A manifest whose config is not an image config wraps errdef.ErrUnsupported.
func manifestPlatform(ctx context.Context, f content.Fetcher, m ocispec.Descriptor) (ocispec.Platform, error) {
	b, err := content.ReadAll(ctx, f, m, 0)
	if err != nil {
		return ocispec.Platform{}, fmt.Errorf("read manifest %s: %w", m.Digest, err)
	}
	man, err := ParseManifest(m, b)
	if err != nil {
		return ocispec.Platform{}, err
	}
	if !IsConfig(man.Config.MediaType) {
		return ocispec.Platform{}, fmt.Errorf("manifest %s: %w: config media type %s", m.Digest, errdef.ErrUnsupported, man.Config.MediaType)
	}
	cb, err := content.ReadAll(ctx, f, man.Config, 0)
	if err != nil {
		return ocispec.Platform{}, fmt.Errorf("read config %s: %w", man.Config.Digest, err)
	}
	c, err := ParseConfig(man.Config, cb)
	if err != nil {
		return ocispec.Platform{}, err
	}
	return ConfigPlatform(c), nil
}

// ConfigPlatform returns the platform an image config declares (os, architecture, variant,
// os.version, os.features), normalised.
func ConfigPlatform(c *ocispec.Image) ocispec.Platform {
	return NormalizePlatform(c.Platform)
}
