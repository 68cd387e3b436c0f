package image

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/errdef"
)

// mediaTypeOf maps a fixture's file name suffix to the media type it is parsed with.
func mediaTypeOf(t *testing.T, name string) string {
	t.Helper()
	for suffix, mt := range map[string]string{
		".oci-manifest.json":    MediaTypeManifest,
		".oci-index.json":       MediaTypeIndex,
		".oci-config.json":      MediaTypeConfig,
		".docker-manifest.json": MediaTypeDockerManifest,
		".docker-list.json":     MediaTypeDockerManifestList,
		".docker-config.json":   MediaTypeDockerConfig,
	} {
		if strings.HasSuffix(name, suffix) {
			return mt
		}
	}
	t.Fatalf("fixture %s: unknown suffix", name)
	return ""
}

func readFixture(t *testing.T, path string) ([]byte, ocispec.Descriptor) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b, descFor(mediaTypeOf(t, filepath.Base(path)), b)
}

// TestParseValidFixtures parses every document written by umoci and skopeo (testdata/valid,
// made by testdata/gen.sh) and the spec examples and edge cases (testdata/spec): each must pass
// with the descriptor it would be fetched by, and with no media type at all (detection).
func TestParseValidFixtures(t *testing.T) {
	files, _ := filepath.Glob("testdata/valid/*.json")
	spec, _ := filepath.Glob("testdata/spec/*.json")
	files = append(files, spec...)
	if len(files) < 20 {
		t.Fatalf("only %d fixtures: run image/testdata/gen.sh", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, d := readFixture(t, f)
			doc, err := Parse(d, b)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if doc.MediaType() != d.MediaType {
				t.Errorf("MediaType = %s, want %s", doc.MediaType(), d.MediaType)
			}
			switch {
			case IsManifest(d.MediaType):
				m, err := ParseManifest(d, b)
				if err != nil {
					t.Fatalf("ParseManifest: %v", err)
				}
				kids, err := Children(d, b)
				if err != nil || len(kids) != 1+len(m.Layers) || kids[0].Digest != m.Config.Digest {
					t.Fatalf("Children = %v, %v", kids, err)
				}
			case IsIndex(d.MediaType):
				x, err := ParseIndex(d, b)
				if err != nil {
					t.Fatalf("ParseIndex: %v", err)
				}
				kids, err := Children(d, b)
				if err != nil || len(kids) != len(x.Manifests) {
					t.Fatalf("Children = %v, %v", kids, err)
				}
			case IsConfig(d.MediaType):
				if _, err := ParseConfig(d, b); err != nil {
					t.Fatalf("ParseConfig: %v", err)
				}
				if kids, err := Children(d, b); err != nil || kids != nil {
					t.Fatalf("Children of a config = %v, %v", kids, err)
				}
			}
			// Without a media type the kind is detected (Docker documents carry theirs).
			if IsConfig(d.MediaType) {
				return
			}
			doc, err = Parse(ocispec.Descriptor{}, b)
			if err != nil {
				t.Fatalf("Parse without a descriptor: %v", err)
			}
			if kindOf(doc.MediaType()) != kindOf(d.MediaType) {
				t.Fatalf("detected %s, want the kind of %s", doc.MediaType(), d.MediaType)
			}
		})
	}
}

func TestLayoutHeaderFixtures(t *testing.T) {
	files, _ := filepath.Glob("testdata/valid/*.oci-layout")
	if len(files) == 0 {
		t.Fatal("no oci-layout fixture: run image/testdata/gen.sh")
	}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if err := ValidateLayoutHeader(b); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	for name, doc := range map[string]string{
		"no version": `{}`, "version number": `{"imageLayoutVersion":1}`, "not json": `{`,
	} {
		t.Run(name, func(t *testing.T) {
			if err := ValidateLayoutHeader([]byte(doc)); !errors.Is(err, errdef.ErrInvalidArgument) {
				t.Fatalf("ValidateLayoutHeader(%s) = %v", doc, err)
			}
		})
	}
}

// TestParseHostileFixtures: every document in testdata/hostile is refused with the expected
// sentinel and a message naming the field at fault. Each file must be listed here.
func TestParseHostileFixtures(t *testing.T) {
	tests := map[string]struct {
		want error
		msg  string
	}{
		"ambiguous.oci-manifest.json":                  {errdef.ErrInvalidArgument, "manifests: a manifest with a manifests field is ambiguous"},
		"ambiguous.oci-index.json":                     {errdef.ErrInvalidArgument, "layers: an index with a layers field is ambiguous"},
		"ambiguous-config.oci-index.json":              {errdef.ErrInvalidArgument, "config: an index with a config field"},
		"wrong-mediatype.oci-manifest.json":            {errdef.ErrInvalidArgument, "mediaType: document says application/vnd.oci.image.index.v1+json"},
		"wrong-mediatype.oci-index.json":               {errdef.ErrInvalidArgument, "mediaType: document says"},
		"docker-mediatype.oci-manifest.json":           {errdef.ErrInvalidArgument, "mediaType: document says application/vnd.docker"},
		"docker-oci-mediatype.docker-manifest.json":    {errdef.ErrInvalidArgument, "mediaType: document says application/vnd.oci"},
		"docker-no-mediatype.docker-manifest.json":     {errdef.ErrInvalidArgument, "mediaType: missing"},
		"docker-list-no-platform.docker-list.json":     {errdef.ErrInvalidArgument, "manifests[0].platform: missing"},
		"size-negative.oci-manifest.json":              {errdef.ErrInvalidSize, "config: sha256:c00da89f682adc75307c4aa9902f789fc1a6dd87089c7b16991c1272d7afa8be: invalid size: size -1 is negative"},
		"digest-path.oci-manifest.json":                {errdef.ErrInvalidDigest, `layers[0]: "sha256:../../x"`},
		"digest-path.oci-index.json":                   {errdef.ErrInvalidDigest, `manifests[0]: "sha256:../../../etc/passwd": invalid digest`},
		"digest-uppercase.oci-manifest.json":           {errdef.ErrInvalidDigest, "layers[0]"},
		"digest-md5.oci-manifest.json":                 {errdef.ErrInvalidDigest, "md5"},
		"digest-short.oci-manifest.json":               {errdef.ErrInvalidDigest, "needs 64 hex characters"},
		"data-digest.oci-manifest.json":                {errdef.ErrDigestMismatch, "config: sha256:"},
		"data-size.oci-manifest.json":                  {errdef.ErrSizeMismatch, "data field"},
		"data-base64.oci-manifest.json":                {errdef.ErrInvalidArgument, "illegal base64"},
		"artifact-no-artifacttype.oci-manifest.json":   {errdef.ErrInvalidArgument, "artifactType: must be set when config is the empty descriptor"},
		"empty-descriptor-lies.oci-manifest.json":      {errdef.ErrInvalidArgument, "config: media type application/vnd.oci.empty.v1+json must describe the blob {}"},
		"artifacttype-invalid.oci-manifest.json":       {errdef.ErrInvalidArgument, `artifactType: "not a media type" is not a media type`},
		"schema-version-1.oci-manifest.json":           {errdef.ErrInvalidArgument, "schemaVersion: 1, must be 2"},
		"schema-version-missing.oci-index.json":        {errdef.ErrInvalidArgument, "schemaVersion: 0, must be 2"},
		"annotation-empty-key.oci-manifest.json":       {errdef.ErrInvalidArgument, "annotations: empty key"},
		"annotation-empty-key-layer.oci-manifest.json": {errdef.ErrInvalidArgument, "layers[0].annotations: empty key"},
		"duplicate-key.oci-manifest.json":              {errdef.ErrInvalidArgument, `duplicate key "schemaVersion"`},
		"duplicate-annotation.oci-index.json":          {errdef.ErrInvalidArgument, `duplicate key "a"`},
		"case-key.oci-index.json":                      {errdef.ErrInvalidArgument, `key "Manifests" must be spelled "manifests"`},
		"case-mediatype.oci-manifest.json":             {errdef.ErrInvalidArgument, "mediaType"},
		"case-only-key.oci-manifest.json":              {errdef.ErrInvalidArgument, `key "Digest" must be spelled "digest"`},
		"mediatype-null.oci-manifest.json":             {errdef.ErrInvalidArgument, "mediaType: not a non-empty string"},
		"config-no-mediatype.oci-manifest.json":        {errdef.ErrInvalidArgument, `config.mediaType: "" is not a media type`},
		"layers-null.oci-manifest.json":                {errdef.ErrInvalidArgument, "schema image-manifest-schema.json: /layers: expected array, but got null"},
		"layers-missing.oci-manifest.json":             {errdef.ErrInvalidArgument, "layers: missing"},
		"manifests-missing.oci-index.json":             {errdef.ErrInvalidArgument, "manifests: missing"},
		"urls-relative.oci-manifest.json":              {errdef.ErrInvalidArgument, `layers[0].urls[0]: "relative/path" is not an absolute URL`},
		"subject-bad.oci-manifest.json":                {errdef.ErrInvalidDigest, "subject"},
		"platform-no-os.oci-index.json":                {errdef.ErrInvalidArgument, "manifests[0].platform.os: missing"},
		"entry-mediatype-invalid.oci-index.json":       {errdef.ErrInvalidArgument, `manifests[0].mediaType: "not/a media type" is not a media type`},
		"not-object.oci-manifest.json":                 {errdef.ErrInvalidArgument, "malformed JSON"},
		"null.oci-index.json":                          {errdef.ErrInvalidArgument, "not a JSON object"},
		"trailing.oci-manifest.json":                   {errdef.ErrInvalidArgument, "malformed JSON"},
		"truncated.oci-manifest.json":                  {errdef.ErrInvalidArgument, "malformed JSON"},
		"deep.oci-manifest.json":                       {errdef.ErrInvalidArgument, "nested deeper than"},
		"diffid-path.oci-config.json":                  {errdef.ErrInvalidDigest, "rootfs.diff_ids[0]"},
		"rootfs-type.oci-config.json":                  {errdef.ErrInvalidArgument, `rootfs.type: "tar", must be "layers"`},
		"env.oci-config.json":                          {errdef.ErrInvalidArgument, `config.Env[0]: "NOEQUALS" is not KEY=value`},
		"no-os.oci-config.json":                        {errdef.ErrInvalidArgument, "os: missing"},
		"os-empty.docker-config.json":                  {errdef.ErrInvalidArgument, "os: missing"},
		"polyglot.oci-config.json":                     {errdef.ErrInvalidArgument, "an image config that claims to be application/vnd.oci.image.manifest.v1+json"},
		"created.oci-config.json":                      {errdef.ErrInvalidArgument, `parsing time "yesterday"`},
	}
	files, _ := filepath.Glob("testdata/hostile/*.json")
	if len(files) != len(tests) {
		t.Errorf("%d hostile fixtures, %d expectations", len(files), len(tests))
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			tc, ok := tests[name]
			if !ok {
				t.Fatalf("no expectation for %s", name)
			}
			b, d := readFixture(t, f)
			_, err := Parse(d, b)
			if err == nil {
				t.Fatal("Parse accepted a hostile document")
			}
			if !errors.Is(err, tc.want) || !errors.Is(err, errdef.ErrInvalidArgument) {
				t.Errorf("Parse = %v, want %v and ErrInvalidArgument", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("Parse = %v, want it to contain %q", err, tc.msg)
			}
			if !strings.Contains(err.Error(), string(d.Digest)) {
				t.Errorf("Parse = %v, want it to name the document digest", err)
			}
			// The same bytes must fail when the kind is detected (the docker-* files are valid
			// documents of another media type).
			if _, err := Parse(ocispec.Descriptor{}, b); err == nil && !IsConfig(d.MediaType) && !strings.HasPrefix(name, "docker-") {
				t.Errorf("Parse without a descriptor accepted it")
			}
		})
	}
}
