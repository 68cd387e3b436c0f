package image

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/errdef"
)

// mapFetcher is a Fetcher over a map, enough for these tests.
type mapFetcher map[digest.Digest][]byte

func (m mapFetcher) Fetch(_ context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	b, ok := m[d.Digest]
	if !ok {
		return nil, errdef.ErrNotFound
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (m mapFetcher) put(t *testing.T, mt string, v any) ocispec.Descriptor {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	d := descFor(mt, b)
	m[d.Digest] = b
	return d
}

// image stores a one-layer image for os/arch[/variant] and returns its manifest descriptor
// (without a platform).
func (m mapFetcher) image(t *testing.T, os, arch, variant string) ocispec.Descriptor {
	t.Helper()
	layer := []byte(os + arch + variant)
	cfg := m.put(t, MediaTypeConfig, ocispec.Image{
		Platform: ocispec.Platform{OS: os, Architecture: arch, Variant: variant},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromBytes(layer)}},
	})
	return m.put(t, MediaTypeManifest, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: MediaTypeManifest, Config: cfg,
		Layers: []ocispec.Descriptor{{MediaType: MediaTypeLayerGzip, Digest: digest.FromBytes(layer), Size: int64(len(layer))}},
	})
}

func (m mapFetcher) index(t *testing.T, entries ...ocispec.Descriptor) ocispec.Descriptor {
	t.Helper()
	if entries == nil {
		entries = []ocispec.Descriptor{}
	}
	return m.put(t, MediaTypeIndex, ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: MediaTypeIndex, Manifests: entries})
}

func withPlatform(d ocispec.Descriptor, p string) ocispec.Descriptor {
	parts := strings.Split(p, "/")
	d.Platform = &ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		d.Platform.Variant = parts[2]
	}
	return d
}

func TestSelectManifest(t *testing.T) {
	f := mapFetcher{}
	amd := f.image(t, "linux", "amd64", "")
	arm64 := f.image(t, "linux", "arm64", "")
	armv6 := f.image(t, "linux", "arm", "v6")
	armv7 := f.image(t, "linux", "arm", "v7")
	artifact := f.put(t, MediaTypeManifest, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: MediaTypeManifest, ArtifactType: "application/vnd.example+type",
		Config: ocispec.DescriptorEmptyJSON, Layers: []ocispec.Descriptor{ocispec.DescriptorEmptyJSON},
	})
	flat := f.index(t, withPlatform(amd, "linux/amd64"), withPlatform(arm64, "linux/arm64"),
		withPlatform(armv6, "linux/arm/v6"), withPlatform(armv7, "linux/arm/v7"))
	inner := f.index(t, withPlatform(arm64, "linux/arm64/v8"))
	nested := f.index(t, withPlatform(amd, "linux/amd64"), inner)
	deep := nested
	for i := 0; i < 3; i++ {
		deep = f.index(t, deep)
	}
	tooDeep := nested
	for i := 0; i < MaxIndexDepth; i++ {
		tooDeep = f.index(t, tooDeep)
	}
	noPlatforms := f.index(t, artifact, amd, arm64) // as umoci writes them: configs decide
	filtered := f.index(t, withPlatform(inner, "linux/amd64"), withPlatform(amd, "linux/amd64"))

	tests := []struct {
		name     string
		from     ocispec.Descriptor
		platform string
		want     ocispec.Descriptor
		err      error
	}{
		{"flat amd64", flat, "linux/amd64", amd, nil},
		{"flat arm64", flat, "linux/aarch64", arm64, nil},
		{"flat arm default v7", flat, "linux/arm", armv7, nil},
		{"flat arm v6", flat, "linux/arm/v6", armv6, nil},
		{"flat missing", flat, "linux/s390x", ocispec.Descriptor{}, errdef.ErrNotFound},
		{"nested index", nested, "linux/arm64", arm64, nil},
		{"nested index, first level", nested, "linux/amd64", amd, nil},
		{"deeply nested", deep, "linux/arm64", arm64, nil},
		{"too deep", tooDeep, "linux/arm64", ocispec.Descriptor{}, errdef.ErrInvalidArgument},
		{"entries without platform", noPlatforms, "linux/arm64", arm64, nil},
		{"entries without platform, missing", noPlatforms, "linux/arm", ocispec.Descriptor{}, errdef.ErrNotFound},
		{"nested index with other platform is skipped", filtered, "linux/arm64", ocispec.Descriptor{}, errdef.ErrNotFound},
		{"manifest is itself", amd, "linux/arm64", amd, nil},
		{"layer", ocispec.Descriptor{MediaType: MediaTypeLayerGzip, Digest: amd.Digest, Size: amd.Size}, "linux/amd64", ocispec.Descriptor{}, errdef.ErrUnsupported},
		{"missing blob", ocispec.Descriptor{MediaType: MediaTypeIndex, Digest: digest.FromString("x"), Size: 1}, "linux/amd64", ocispec.Descriptor{}, errdef.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePlatform(tc.platform)
			if err != nil {
				t.Fatal(err)
			}
			got, err := SelectManifest(context.Background(), f, tc.from, &p)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("SelectManifest = %v, %v; want %v", got.Digest, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("SelectManifest: %v", err)
			}
			if got.Digest != tc.want.Digest {
				t.Fatalf("SelectManifest = %s, want %s", got.Digest, tc.want.Digest)
			}
		})
	}
	t.Run("nil is the host's platform", func(t *testing.T) {
		host := DefaultPlatform()
		want, err := SelectManifest(context.Background(), f, flat, &host)
		if err != nil {
			t.Skipf("no manifest for this host's platform %s in the test index", FormatPlatform(host))
		}
		got, err := SelectManifest(context.Background(), f, flat, nil)
		if err != nil || got.Digest != want.Digest {
			t.Fatalf("SelectManifest(nil) = %s, %v; want %s", got.Digest, err, want.Digest)
		}
	})
	t.Run("error lists platforms", func(t *testing.T) {
		_, err := SelectManifest(context.Background(), f, flat, &ocispec.Platform{OS: "linux", Architecture: "s390x"})
		if err == nil || !strings.Contains(err.Error(), "linux/amd64, linux/arm64/v8, linux/arm/v6, linux/arm/v7") {
			t.Fatalf("SelectManifest = %v", err)
		}
	})
}

// TestSelectManifestFixture selects from the real nested index written by make-multiarch.sh.
func TestSelectManifestFixture(t *testing.T) {
	f := mapFetcher{}
	var idx ocispec.Descriptor
	for _, name := range []string{"multiarch.oci-index.json", "multiarch-amd64.oci-manifest.json", "multiarch-arm64.oci-manifest.json", "multiarch-amd64.oci-config.json", "multiarch-arm64.oci-config.json"} {
		b, err := os.ReadFile("testdata/valid/" + name)
		if err != nil {
			t.Fatal(err)
		}
		d := descFor(mediaTypeOf(t, name), b)
		f[d.Digest] = b
		if name == "multiarch.oci-index.json" {
			idx = d
		}
	}
	for _, p := range []string{"linux/amd64", "linux/arm64"} {
		t.Run(p, func(t *testing.T) {
			want, _ := ParsePlatform(p)
			d, err := SelectManifest(context.Background(), f, idx, &want)
			if err != nil {
				t.Fatal(err)
			}
			b := f[d.Digest]
			m, err := ParseManifest(d, b)
			if err != nil {
				t.Fatal(err)
			}
			c, err := ParseConfig(m.Config, f[m.Config.Digest])
			if err != nil {
				t.Fatal(err)
			}
			if got := ConfigPlatform(c); !Match(&want, &got) {
				t.Fatalf("selected an image for %s", FormatPlatform(got))
			}
			if err := ValidateImage(m, c); err != nil {
				t.Fatal(err)
			}
		})
	}
}
