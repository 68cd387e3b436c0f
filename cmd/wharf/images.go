package main

import (
	"context"
	"errors"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/wharfoci/wharf/image"
	"github.com/wharfoci/wharf/imageref"
)

// Helpers that turn command-line image names into library values. Every failure to parse a
// name is a usage error (exit 2).

// parseImage parses an image name argument.
func parseImage(arg string) (imageref.Reference, error) {
	r, err := imageref.Parse(arg)
	return r, asUsage(err)
}

// parseWhole parses an argument that names a whole layout or archive: no tag or digest.
func parseWhole(arg string) (imageref.Reference, error) {
	r, err := parseImage(arg)
	if err != nil {
		return r, err
	}
	if r.Ref() != "" {
		return r, usageErrorf("%s: name the whole layout, without tag or digest: %s:%s", arg, r.Transport, r.Path)
	}
	return r, nil
}

// openWhole opens the whole layout or archive arg names (no tag or digest); with create, a
// missing one is made. The caller closes the handle.
func openWhole(ctx context.Context, arg string, create bool) (*imageref.Handle, error) {
	r, err := parseWhole(arg)
	if err != nil {
		return nil, err
	}
	return openRef(ctx, r, create)
}

// openRef opens the layout or archive r names; with create, a missing one is made.
func openRef(ctx context.Context, r imageref.Reference, create bool) (*imageref.Handle, error) {
	return imageref.Open(ctx, r, imageref.OpenOptions{Create: create})
}

// openImage opens the layout of the image name arg and resolves the root descriptor it names
// (an index.json entry). The caller closes the handle.
func openImage(ctx context.Context, arg string) (*imageref.Handle, ocispec.Descriptor, error) {
	r, err := parseImage(arg)
	if err != nil {
		return nil, ocispec.Descriptor{}, err
	}
	h, err := openRef(ctx, r, false)
	if err != nil {
		return nil, ocispec.Descriptor{}, err
	}
	d, err := h.ResolveImage(ctx)
	if err != nil {
		h.Close()
		var amb *imageref.AmbiguousError
		if errors.As(err, &amb) && len(amb.Tags) > 0 {
			err = asUsage(err)
		}
		return nil, ocispec.Descriptor{}, err
	}
	return h, d, nil
}

// shortDigest is the first 12 characters of a digest's encoded part, for lines read by people.
func shortDigest(d fmt.Stringer) string {
	s := d.String()
	for i := 0; i < len(s); i++ {
		if s[i] == ':' && len(s) >= i+13 {
			return s[i+1 : i+13]
		}
	}
	return s
}

// manifestFlags are the flags of the commands that start from one platform's manifest of an
// image (unpack, run): --platform and the registry flags.
type manifestFlags struct {
	platform func() (*ocispec.Platform, error)
	rf       *registryFlags
}

// addManifestFlags adds them; what is the verb in --platform's help ("unpack", "run").
func addManifestFlags(cmd *cobra.Command, what string) *manifestFlags {
	return &manifestFlags{
		platform: platformFlag(cmd, "the platform to "+what+" from an index (default: this machine's)"),
		rf:       addRegistryFlags(cmd, false),
	}
}

// open opens the image named arg (a layout, an archive or a registry image) and selects the
// manifest for --platform (this machine's when unset) out of it, walking nested indexes. The
// caller closes the handle.
func (mf *manifestFlags) open(ctx context.Context, arg string) (*imageref.Handle, ocispec.Descriptor, error) {
	p, err := mf.platform()
	if err != nil {
		return nil, ocispec.Descriptor{}, err
	}
	h, d, err := openAnyImage(ctx, arg, mf.rf)
	if err != nil {
		return nil, ocispec.Descriptor{}, err
	}
	md, err := image.SelectManifest(ctx, h.Target(), d, p)
	if err != nil {
		h.Close()
		return nil, ocispec.Descriptor{}, err
	}
	return h, md, nil
}

// withImage opens the image named arg (a layout, an archive or a registry image), resolves
// its root and calls fn with them; the handle is closed when fn returns.
func withImage(ctx context.Context, arg string, rf *registryFlags, fn func(context.Context, *imageref.Handle, ocispec.Descriptor) error) error {
	h, root, err := openAnyImage(ctx, arg, rf)
	if err != nil {
		return err
	}
	defer h.Close()
	return fn(ctx, h, root)
}
