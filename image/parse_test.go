package image

import (
	"errors"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/errdef"
)

const (
	cfgDigest   = "sha256:c00da89f682adc75307c4aa9902f789fc1a6dd87089c7b16991c1272d7afa8be"
	layerDigest = "sha256:dfa435e8d752bc7f03b46b2f5563a471f8bf3ecf9cc0d61649b16eb3dd6245b1"
	emptyDigest = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
)

// descFor returns the descriptor of b with media type mt.
func descFor(mt string, b []byte) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}
}

func TestParseInline(t *testing.T) {
	good := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + cfgDigest + `","size":499},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"` + layerDigest + `","size":1088638}]}`
	tests := []struct {
		name   string
		mt     string // descriptor media type
		doc    string
		want   error  // nil: valid
		field  string // expected in the message
		noDesc bool   // parse without a digest
	}{
		{name: "manifest", mt: MediaTypeManifest, doc: good},
		{name: "manifest detected", doc: good},
		{name: "manifest as index", mt: MediaTypeIndex, doc: good, want: errdef.ErrInvalidArgument, field: "mediaType"},
		{name: "layer media type", mt: MediaTypeLayerGzip, doc: good, want: errdef.ErrUnsupported},
		{name: "ambiguous", mt: MediaTypeManifest, doc: strings.Replace(good, `"layers"`, `"manifests":[],"layers"`, 1), want: errdef.ErrInvalidArgument, field: "manifests"},
		{name: "ambiguous detected", doc: strings.Replace(good, `"layers"`, `"manifests":[],"layers"`, 1), want: errdef.ErrInvalidArgument},
		{name: "duplicate key", mt: MediaTypeManifest, doc: strings.Replace(good, `"schemaVersion":2`, `"schemaVersion":2,"schemaVersion":2`, 1), want: errdef.ErrInvalidArgument, field: "duplicate key"},
		{name: "case variant key", mt: MediaTypeManifest, doc: strings.Replace(good, `"schemaVersion":2`, `"schemaVersion":2,"SchemaVersion":2`, 1), want: errdef.ErrInvalidArgument, field: "differ only in case"},
		{name: "negative size", mt: MediaTypeManifest, doc: strings.Replace(good, `"size":499`, `"size":-1`, 1), want: errdef.ErrInvalidArgument},
		{name: "path digest", mt: MediaTypeManifest, doc: strings.Replace(good, cfgDigest, "sha256:../../x", 1), want: errdef.ErrInvalidArgument},
		{name: "uppercase digest", mt: MediaTypeManifest, doc: strings.Replace(good, cfgDigest, strings.ToUpper(cfgDigest[7:]), 1), want: errdef.ErrInvalidArgument},
		{name: "null", mt: MediaTypeManifest, doc: `null`, want: errdef.ErrInvalidArgument},
		{name: "array", mt: MediaTypeManifest, doc: `[]`, want: errdef.ErrInvalidArgument},
		{name: "trailing data", mt: MediaTypeManifest, doc: good + `{}`, want: errdef.ErrInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := []byte(tc.doc)
			d := descFor(tc.mt, b)
			if tc.noDesc {
				d = ocispec.Descriptor{MediaType: tc.mt}
			}
			_, err := Parse(d, b)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Parse = %v, want %v", err, tc.want)
			}
			if tc.field != "" && !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("Parse = %v, want it to name %q", err, tc.field)
			}
		})
	}
}

func TestParseUnsupported(t *testing.T) {
	for _, mt := range []string{MediaTypeLayerGzip, MediaTypeEmptyJSON, MediaTypeDockerSchema1SignedManifest, "application/vnd.example+type"} {
		t.Run(mt, func(t *testing.T) {
			b := []byte(`{"schemaVersion":1}`)
			_, err := Parse(descFor(mt, b), b)
			if !errors.Is(err, errdef.ErrUnsupported) || errors.Is(err, errdef.ErrInvalidArgument) {
				t.Fatalf("Parse = %v, want ErrUnsupported only", err)
			}
			var ie *Error
			if !errors.As(err, &ie) || ie.Digest != digest.FromBytes(b) {
				t.Fatalf("Parse = %#v, want an *Error naming the digest", err)
			}
			kids, err := Children(descFor(mt, b), b)
			if mt == MediaTypeDockerSchema1SignedManifest {
				if !errors.Is(err, errdef.ErrUnsupported) {
					t.Fatalf("Children of schema 1 = %v", err)
				}
			} else if kids != nil || err != nil {
				t.Fatalf("Children of a leaf = %v, %v", kids, err)
			}
		})
	}
	// A document whose own mediaType is unsupported, parsed without a descriptor media type.
	b := []byte(`{"schemaVersion":1,"mediaType":"application/vnd.docker.distribution.manifest.v1+json"}`)
	if _, err := Parse(ocispec.Descriptor{}, b); !errors.Is(err, errdef.ErrUnsupported) {
		t.Fatalf("Parse(schema 1) = %v", err)
	}
}

func TestDescriptorChecks(t *testing.T) {
	ok := ocispec.Descriptor{MediaType: MediaTypeLayerGzip, Digest: layerDigest, Size: 3}
	tests := []struct {
		name string
		edit func(d *ocispec.Descriptor)
		want error
	}{
		{"valid", func(d *ocispec.Descriptor) {}, nil},
		{"empty media type", func(d *ocispec.Descriptor) { d.MediaType = "" }, errdef.ErrInvalidArgument},
		{"media type with space", func(d *ocispec.Descriptor) { d.MediaType = "a/b c" }, errdef.ErrInvalidArgument},
		{"media type 128 long", func(d *ocispec.Descriptor) { d.MediaType = "a/" + strings.Repeat("b", 128) }, errdef.ErrInvalidArgument},
		{"negative size", func(d *ocispec.Descriptor) { d.Size = -1 }, errdef.ErrInvalidSize},
		{"path digest", func(d *ocispec.Descriptor) { d.Digest = "sha256:../../x" }, errdef.ErrInvalidDigest},
		{"data mismatch", func(d *ocispec.Descriptor) { d.Data = []byte("abc") }, errdef.ErrDigestMismatch},
		{"empty descriptor", func(d *ocispec.Descriptor) { *d = ocispec.DescriptorEmptyJSON }, nil},
		{"empty descriptor, wrong size", func(d *ocispec.Descriptor) { *d = ocispec.DescriptorEmptyJSON; d.Data = nil; d.Size = 3 }, errdef.ErrInvalidArgument},
		{"platform without os", func(d *ocispec.Descriptor) { d.Platform = &ocispec.Platform{Architecture: "amd64"} }, errdef.ErrInvalidArgument},
		{"empty annotation key", func(d *ocispec.Descriptor) { d.Annotations = map[string]string{"": "v"} }, errdef.ErrInvalidArgument},
		{"empty annotation value", func(d *ocispec.Descriptor) { d.Annotations = map[string]string{"k": ""} }, nil},
		{"relative url", func(d *ocispec.Descriptor) { d.URLs = []string{"/x"} }, errdef.ErrInvalidArgument},
		{"bad artifactType", func(d *ocispec.Descriptor) { d.ArtifactType = "x" }, errdef.ErrInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := ok
			tc.edit(&d)
			err := ValidateDescriptor(d)
			if tc.want == nil && err != nil || !errors.Is(err, tc.want) {
				t.Fatalf("ValidateDescriptor = %v, want %v", err, tc.want)
			}
			if tc.want != nil && !errors.Is(err, errdef.ErrInvalidArgument) {
				t.Fatalf("ValidateDescriptor = %v, want it to wrap ErrInvalidArgument too", err)
			}
		})
	}
}

func TestParseTooLarge(t *testing.T) {
	b := make([]byte, content.MaxDocumentSize+1)
	_, err := ParseIndex(ocispec.Descriptor{MediaType: MediaTypeIndex}, b)
	if !errors.Is(err, errdef.ErrTooLarge) || !errors.Is(err, errdef.ErrInvalidArgument) {
		t.Fatalf("ParseIndex = %v, want ErrTooLarge", err)
	}
}
