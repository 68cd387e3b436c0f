package image

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/errdef"
)

// Seed corpora: testdata/fuzz/<target>/ (written by testdata/gen.sh from the valid and hostile
// fixtures) plus the f.Add calls below.

// checkParseResult is what every fuzz input must satisfy: an error is classified, and a
// document that parses yields children that each pass ValidateDescriptor.
func checkParseResult(t *testing.T, doc *Document, err error) {
	if err != nil {
		if !errors.Is(err, errdef.ErrInvalidArgument) && !errors.Is(err, errdef.ErrUnsupported) {
			t.Fatalf("unclassified error: %v", err)
		}
		return
	}
	for _, c := range doc.Children() {
		if err := ValidateDescriptor(c); err != nil {
			t.Fatalf("child of an accepted document: %v", err)
		}
	}
	if s := doc.Subject(); s != nil {
		if err := ValidateDescriptor(*s); err != nil {
			t.Fatalf("subject of an accepted document: %v", err)
		}
	}
}

func addFixtures(f *testing.F, patterns ...string) {
	for _, p := range patterns {
		files, _ := filepath.Glob(p)
		for _, file := range files {
			if b, err := os.ReadFile(file); err == nil {
				f.Add(b)
			}
		}
	}
}

func FuzzParseManifest(f *testing.F) {
	addFixtures(f, "testdata/spec/*manifest.json")
	f.Add([]byte(`{"schemaVersion":2,"config":{},"layers":[],"manifests":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, mt := range []string{MediaTypeManifest, MediaTypeDockerManifest, ""} {
			d, err := parse(ocispec.Descriptor{MediaType: mt}, b, kindManifest)
			checkParseResult(t, d, err)
			if err == nil && d.Manifest == nil {
				t.Fatal("ParseManifest accepted a document that is not a manifest")
			}
			if err == nil && d.Manifest.SchemaVersion != 2 {
				t.Fatal("accepted schemaVersion != 2")
			}
		}
	})
}

func FuzzParseIndex(f *testing.F) {
	addFixtures(f, "testdata/spec/*index.json")
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"mediaType":"a/b","digest":"sha256:../x","size":-1}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, mt := range []string{MediaTypeIndex, MediaTypeDockerManifestList, ""} {
			d, err := parse(ocispec.Descriptor{MediaType: mt}, b, kindIndex)
			checkParseResult(t, d, err)
			if err == nil && d.Index == nil {
				t.Fatal("ParseIndex accepted a document that is not an index")
			}
		}
	})
}

// FuzzParse drives the generic entry point, kind detection included.
func FuzzParse(f *testing.F) {
	addFixtures(f, "testdata/spec/*.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Parse(ocispec.Descriptor{}, b)
		checkParseResult(t, d, err)
		if err == nil {
			n := 0
			for _, set := range []bool{d.Manifest != nil, d.Index != nil, d.Config != nil} {
				if set {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("Document has %d kinds set", n)
			}
		}
	})
}

func FuzzParsePlatform(f *testing.F) {
	for _, s := range []string{"linux/amd64", "linux/arm/v7", "linux/aarch64", "darwin/arm64/v8", "windows/amd64", "linux/arm64/8", "x/y/z/w", "linux//", "LINUX/X86_64"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePlatform(s)
		if err != nil {
			if !errors.Is(err, errdef.ErrInvalidArgument) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		// Normalised output re-parses to itself, and matches itself.
		formatted := FormatPlatform(p)
		q, err := ParsePlatform(formatted)
		if err != nil || FormatPlatform(q) != formatted {
			t.Fatalf("%q → %q → %q, %v", s, formatted, FormatPlatform(q), err)
		}
		if !Match(&p, &q) {
			t.Fatalf("%s does not match itself", formatted)
		}
	})
}
