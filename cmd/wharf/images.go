package main

import (
	"context"
	"errors"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

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

// openManifest opens the image named arg (a layout, an archive, or with rf a registry) and
// selects the manifest for platform p (nil: this machine's) out of it, walking nested indexes:
// what unpack and run start from.
func openManifest(ctx context.Context, arg string, p *ocispec.Platform, rf *registryFlags) (*imageref.Handle, ocispec.Descriptor, error) {
	h, d, err := openAnyImage(ctx, arg, rf)
	if err != nil {
		return nil, ocispec.Descriptor{}, err
	}
	want := image.DefaultPlatform()
	if p != nil {
		want = *p
	}
	md, err := image.SelectManifest(ctx, h.Target(), d, want)
	if err != nil {
		h.Close()
		return nil, ocispec.Descriptor{}, err
	}
	return h, md, nil
}
