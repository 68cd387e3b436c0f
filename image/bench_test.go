package image

import (
	"os"
	"testing"
)

// BenchmarkParseManifest parses and validates a real manifest (umoci's busybox): digest, key
// scan, semantic checks and the image-spec schema. image-spec's own schema.Validator takes
// about 4 ms and 2 MB per call because it compiles the schemas each time.
func BenchmarkParseManifest(b *testing.B) {
	buf, err := os.ReadFile("testdata/valid/umoci-busybox.oci-manifest.json")
	if err != nil {
		b.Fatal(err)
	}
	d := descFor(MediaTypeManifest, buf)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseManifest(d, buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseIndex(b *testing.B) {
	buf, err := os.ReadFile("testdata/valid/multiarch.oci-index.json")
	if err != nil {
		b.Fatal(err)
	}
	d := descFor(MediaTypeIndex, buf)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseIndex(d, buf); err != nil {
			b.Fatal(err)
		}
	}
}
