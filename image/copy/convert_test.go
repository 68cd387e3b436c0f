package copy_test

import (
	"context"
	"errors"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/errdef"
	wimage "github.com/wharfoci/wharf/image"
	"github.com/wharfoci/wharf/image/copy"
)

// Converting to Docker schema 2 rewrites every manifest and index (children first) with
// Docker media types, keeps configs' and layers' bytes, and copies into a valid image;
// converting back gives the OCI documents again; an OCI image converted to OCI is itself.
func TestConvert(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	root := f.nested // the outer index lists it without a platform: no docker manifest list
	docker, err := copy.Convert(ctx, f.l, root, wimage.FormatDocker)
	if err != nil {
		t.Fatal(err)
	}
	droot := docker.Root()
	if droot.MediaType != wimage.MediaTypeDockerManifestList || droot.Digest == root.Digest {
		t.Fatalf("converted root %s %s", droot.MediaType, droot.Digest)
	}
	// two manifests, then the index
	if ch := docker.Changes(); len(ch) != 3 || ch[len(ch)-1].From.Digest != root.Digest || ch[len(ch)-1].To.Digest != droot.Digest {
		t.Fatalf("changes %+v", ch)
	}
	if d, err := docker.Resolve(ctx, droot.Digest.String()); err != nil || d.Digest != droot.Digest {
		t.Fatalf("resolve the converted root: %v, %v", d.Digest, err)
	}
	dst := newLayout(t, "dst")
	if _, err := copy.CopyRoot(ctx, docker, droot, dst, "docker", copy.Options{AllPlatforms: true}); err != nil {
		t.Fatal(err)
	}
	md, err := wimage.SelectManifest(ctx, dst, droot, &ocispec.Platform{OS: "linux", Architecture: "arm64"})
	if err != nil {
		t.Fatal(err)
	}
	img, err := wimage.Load(ctx, dst, md)
	if err != nil {
		t.Fatal(err)
	}
	if img.Manifest.MediaType != wimage.MediaTypeDockerManifest || img.Manifest.Config.MediaType != wimage.MediaTypeDockerConfig ||
		img.Manifest.Layers[0].MediaType != wimage.MediaTypeDockerLayerGzip || img.Manifest.Config.Digest != f.blobs[f.arm64.Digest][1] {
		t.Fatalf("converted manifest %+v", img.Manifest)
	}
	if err := wimage.ValidateImage(img.Manifest, img.Config); err != nil {
		t.Fatal(err)
	}

	back, err := copy.Convert(ctx, dst, droot, wimage.FormatOCI)
	if err != nil {
		t.Fatal(err)
	}
	if back.Root().Digest != root.Digest || back.Root().MediaType != ocispec.MediaTypeImageIndex {
		t.Fatalf("converted back: %s %s, want %s", back.Root().MediaType, back.Root().Digest, root.Digest)
	}
	same, err := copy.Convert(ctx, f.l, root, wimage.FormatOCI)
	if err != nil || same.Root().Digest != root.Digest || len(same.Changes()) != 0 {
		t.Fatalf("OCI to OCI: %v, %d changes, %v", same.Root().Digest, len(same.Changes()), err)
	}
	if b, err := content.ReadAll(ctx, same, root, 0); err != nil || len(b) != int(root.Size) {
		t.Fatalf("read through an unchanged conversion: %d bytes, %v", len(b), err)
	}
}

func TestConvertRefusals(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	for _, tc := range []struct {
		name string
		root ocispec.Descriptor
		err  error
	}{
		{"a subject has no docker form", f.referrer, errdef.ErrUnsupported},
		{"missing document", ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("missing"), Size: 3}, errdef.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := copy.Convert(ctx, f.l, tc.root, wimage.FormatDocker); !errors.Is(err, tc.err) {
				t.Fatalf("Convert = %v, want %v", err, tc.err)
			}
		})
	}
}
