package image

import (
	"errors"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/errdef"
)

func TestValidateImage(t *testing.T) {
	layer := ocispec.Descriptor{MediaType: MediaTypeLayerGzip, Digest: digest.FromString("l"), Size: 1}
	cfg := ocispec.Descriptor{MediaType: MediaTypeConfig, Digest: digest.FromString("c"), Size: 1}
	ids := func(n int) *ocispec.Image {
		c := &ocispec.Image{RootFS: ocispec.RootFS{Type: "layers"}}
		for i := 0; i < n; i++ {
			c.RootFS.DiffIDs = append(c.RootFS.DiffIDs, digest.FromString("u"))
		}
		return c
	}
	tests := []struct {
		name string
		m    *ocispec.Manifest
		c    *ocispec.Image
		err  error
	}{
		{"one layer", &ocispec.Manifest{Config: cfg, Layers: []ocispec.Descriptor{layer}}, ids(1), nil},
		{"no layers", &ocispec.Manifest{Config: cfg}, ids(0), nil},
		{"docker", &ocispec.Manifest{Config: ocispec.Descriptor{MediaType: MediaTypeDockerConfig}, Layers: []ocispec.Descriptor{{MediaType: MediaTypeDockerForeignLayerGzip}}}, ids(1), nil},
		{"too few diff_ids", &ocispec.Manifest{Config: cfg, Layers: []ocispec.Descriptor{layer, layer}}, ids(1), errdef.ErrInvalidArgument},
		{"too many diff_ids", &ocispec.Manifest{Config: cfg, Layers: []ocispec.Descriptor{layer}}, ids(2), errdef.ErrInvalidArgument},
		{"artifact", &ocispec.Manifest{Config: ocispec.DescriptorEmptyJSON, Layers: []ocispec.Descriptor{layer}}, ids(1), errdef.ErrUnsupported},
		{"not a layer", &ocispec.Manifest{Config: cfg, Layers: []ocispec.Descriptor{{MediaType: "application/vnd.example+type"}}}, ids(1), errdef.ErrUnsupported},
		{"nil", nil, ids(0), errdef.ErrInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateImage(tc.m, tc.c)
			if tc.err == nil && err != nil || !errors.Is(err, tc.err) {
				t.Fatalf("ValidateImage = %v, want %v", err, tc.err)
			}
		})
	}
}
