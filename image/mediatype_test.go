package image

import (
	"errors"
	"testing"

	"github.com/wharfoci/wharf/errdef"
)

func TestMediaTypeClasses(t *testing.T) {
	tests := []struct {
		mt                             string
		manifest, index, config, layer bool
		compression                    Compression
		nonDist                        bool
	}{
		{mt: MediaTypeManifest, manifest: true},
		{mt: MediaTypeDockerManifest, manifest: true},
		{mt: MediaTypeIndex, index: true},
		{mt: MediaTypeDockerManifestList, index: true},
		{mt: MediaTypeConfig, config: true},
		{mt: MediaTypeDockerConfig, config: true},
		{mt: MediaTypeEmptyJSON},
		{mt: MediaTypeLayer, layer: true, compression: Uncompressed},
		{mt: MediaTypeLayerGzip, layer: true, compression: Gzip},
		{mt: MediaTypeLayerZstd, layer: true, compression: Zstd},
		{mt: MediaTypeLayerNonDistributable, layer: true, nonDist: true},
		{mt: MediaTypeLayerNonDistributableGzip, layer: true, compression: Gzip, nonDist: true},
		{mt: MediaTypeLayerNonDistributableZstd, layer: true, compression: Zstd, nonDist: true},
		{mt: MediaTypeDockerLayer, layer: true},
		{mt: MediaTypeDockerLayerGzip, layer: true, compression: Gzip},
		{mt: MediaTypeDockerLayerZstd, layer: true, compression: Zstd},
		{mt: MediaTypeDockerForeignLayer, layer: true, nonDist: true},
		{mt: MediaTypeDockerForeignLayerGzip, layer: true, compression: Gzip, nonDist: true},
		{mt: MediaTypeDockerSchema1SignedManifest},
		{mt: "application/vnd.example+type"},
		{mt: ""},
	}
	for _, tc := range tests {
		t.Run(tc.mt, func(t *testing.T) {
			if IsManifest(tc.mt) != tc.manifest || IsIndex(tc.mt) != tc.index || IsConfig(tc.mt) != tc.config || IsLayer(tc.mt) != tc.layer {
				t.Fatalf("IsManifest/IsIndex/IsConfig/IsLayer = %v %v %v %v", IsManifest(tc.mt), IsIndex(tc.mt), IsConfig(tc.mt), IsLayer(tc.mt))
			}
			c, ok := LayerCompression(tc.mt)
			if ok != tc.layer || c != tc.compression {
				t.Fatalf("LayerCompression = %v, %v", c, ok)
			}
			if IsNonDistributable(tc.mt) != tc.nonDist {
				t.Fatalf("IsNonDistributable = %v", !tc.nonDist)
			}
		})
	}
}

func TestConvertMediaType(t *testing.T) {
	tests := []struct {
		name string
		mt   string
		to   Format
		want string
		err  error
	}{
		{"manifest to docker", MediaTypeManifest, FormatDocker, MediaTypeDockerManifest, nil},
		{"index to docker", MediaTypeIndex, FormatDocker, MediaTypeDockerManifestList, nil},
		{"config to docker", MediaTypeConfig, FormatDocker, MediaTypeDockerConfig, nil},
		{"gzip layer to docker", MediaTypeLayerGzip, FormatDocker, MediaTypeDockerLayerGzip, nil},
		{"non-distributable to foreign", MediaTypeLayerNonDistributableGzip, FormatDocker, MediaTypeDockerForeignLayerGzip, nil},
		{"zstd to docker", MediaTypeLayerZstd, FormatDocker, "", errdef.ErrUnsupported},
		{"empty to docker", MediaTypeEmptyJSON, FormatDocker, "", errdef.ErrUnsupported},
		{"docker stays docker", MediaTypeDockerManifest, FormatDocker, MediaTypeDockerManifest, nil},
		{"artifact unchanged", "application/vnd.example+type", FormatDocker, "application/vnd.example+type", nil},
		{"docker manifest to oci", MediaTypeDockerManifest, FormatOCI, MediaTypeManifest, nil},
		{"docker list to oci", MediaTypeDockerManifestList, FormatOCI, MediaTypeIndex, nil},
		{"docker config to oci", MediaTypeDockerConfig, FormatOCI, MediaTypeConfig, nil},
		{"docker layer to oci", MediaTypeDockerLayerGzip, FormatOCI, MediaTypeLayerGzip, nil},
		{"foreign to oci", MediaTypeDockerForeignLayerGzip, FormatOCI, MediaTypeLayerNonDistributableGzip, nil},
		{"schema1 to oci", MediaTypeDockerSchema1SignedManifest, FormatOCI, "", errdef.ErrUnsupported},
		{"oci stays oci", MediaTypeLayerZstd, FormatOCI, MediaTypeLayerZstd, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ConvertMediaType(tc.mt, tc.to)
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Fatalf("ConvertMediaType(%s, %v) = %q, %v; want %q, %v", tc.mt, tc.to, got, err, tc.want, tc.err)
			}
			if tc.err != nil {
				return
			}
			// A conversion of a known type round-trips.
			back, err := ConvertMediaType(got, 1-tc.to)
			if _, known := ociToDocker[tc.mt]; known && tc.to == FormatDocker && (err != nil || back != tc.mt) {
				t.Fatalf("round trip of %s = %q, %v", tc.mt, back, err)
			}
		})
	}
	for _, s := range []string{"oci", "OCI", "docker", "v2s2"} {
		if _, err := ParseFormat(s); err != nil {
			t.Errorf("ParseFormat(%q): %v", s, err)
		}
	}
	if _, err := ParseFormat("v2s1"); !errors.Is(err, errdef.ErrInvalidArgument) {
		t.Errorf("ParseFormat(v2s1) = %v", err)
	}
}
