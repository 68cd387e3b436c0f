package image

import (
	"errors"
	"fmt"
	"strconv"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/errdef"
)

// ValidateImage checks that manifest m and image config c (both already validated by
// ParseManifest and ParseConfig) form one runnable image: m's config is an image config (OCI or
// Docker), every layer has a layer media type wharf can apply (see IsLayer), and the config
// lists exactly one rootfs.diff_ids entry per layer, in the same order (the diff_ids
// themselves, digests of the uncompressed layers, can only be checked by reading the layers).
// An artifact (config of another media type; c may then be nil) wraps errdef.ErrUnsupported;
// every other failure is an *Error wrapping errdef.ErrInvalidArgument.
func ValidateImage(m *ocispec.Manifest, c *ocispec.Image) error {
	if m == nil {
		return &Error{Kind: "image", Err: errors.New("missing manifest or config")}
	}
	fail := func(field string, err error) error {
		return &Error{Kind: "image", Digest: m.Config.Digest, Field: field, Err: err}
	}
	if !IsConfig(m.Config.MediaType) {
		return fail("config.mediaType", fmt.Errorf("%w: %s is not an image config (an artifact is not a runnable image)", errdef.ErrUnsupported, m.Config.MediaType))
	}
	if c == nil {
		return &Error{Kind: "image", Err: errors.New("missing manifest or config")}
	}
	for i, l := range m.Layers {
		if !IsLayer(l.MediaType) {
			return fail("layers["+strconv.Itoa(i)+"].mediaType", fmt.Errorf("%w: %s is not a layer media type", errdef.ErrUnsupported, l.MediaType))
		}
	}
	if n, want := len(c.RootFS.DiffIDs), len(m.Layers); n != want {
		return fail("rootfs.diff_ids", fmt.Errorf("%d entries for %d layers", n, want))
	}
	return nil
}
