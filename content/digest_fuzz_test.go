package content

import (
	"path/filepath"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
)

// FuzzValidateDigest checks that every digest ValidateDigest accepts is one go-digest accepts,
// is safe to turn into a path (no separator, no dot-dot) and has the exact length of its
// algorithm.
func FuzzValidateDigest(f *testing.F) {
	for _, s := range []string{
		"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
		"sha256:../../x", "sha256:E3B0", "md5:d41d8cd98f00b204e9800998ecf8427e", ":", "", "sha256:",
		"sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateDigest(digest.Digest(s)) != nil {
			return
		}
		d := digest.Digest(s)
		if err := d.Validate(); err != nil {
			t.Fatalf("accepted %q that go-digest refuses: %v", s, err)
		}
		if strings.ContainsAny(s, "/\\.\x00") {
			t.Fatalf("accepted %q, which holds a path character", s)
		}
		want := map[digest.Algorithm]int{digest.SHA256: 64, digest.SHA512: 128}[d.Algorithm()]
		if want == 0 || len(d.Encoded()) != want {
			t.Fatalf("accepted %q: algorithm %q with %d hex characters", s, d.Algorithm(), len(d.Encoded()))
		}
		p := filepath.Join("blobs", d.Algorithm().String(), d.Encoded())
		if filepath.Dir(filepath.Dir(p)) != "blobs" || filepath.Clean(p) != p {
			t.Fatalf("accepted %q: path %q leaves blobs/<alg>/", s, p)
		}
	})
}
