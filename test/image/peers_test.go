//go:build integration

// Package image_test parses what the installed peers write today: every document reachable
// from layouts made by umoci (testutil.UmociImage) and wharf (the multi-platform index of
// hack/images.sh) and copied by skopeo, in OCI
// and in Docker schema 2 (skopeo's dir: transport), goes through image.Parse, Children,
// SelectManifest and ValidateImage. The unit tests hold a frozen copy of such documents
// (image/testdata/gen.sh); this test catches a peer that starts writing something new.
package image_test

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/image"

	"github.com/wharfoci/wharf/internal/testutil"
)

func need(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("WHARF_PEERS") == "1" {
			t.Fatalf("peer %s missing (WHARF_PEERS=1): %v", name, err)
		}
		t.Skipf("peer %s missing: %v", name, err)
	}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// dirFetcher reads blobs of an OCI layout (blobs/<alg>/<hex>) or of skopeo's dir: transport
// (<hex>, and <hex>.manifest.json for the instances of a list).
type dirFetcher string

func (d dirFetcher) Fetch(_ context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	if err := content.ValidateDigest(desc.Digest); err != nil {
		return nil, err
	}
	for _, p := range []string{
		filepath.Join(string(d), "blobs", desc.Digest.Algorithm().String(), desc.Digest.Encoded()),
		filepath.Join(string(d), desc.Digest.Encoded()),
		filepath.Join(string(d), desc.Digest.Encoded()+".manifest.json"),
	} {
		if f, err := os.Open(p); err == nil {
			return f, nil
		}
	}
	return nil, errdef.ErrNotFound
}

// walk parses every manifest, index and image config reachable from root and returns how many
// documents of each media type it saw.
func walk(t *testing.T, f content.Fetcher, root ocispec.Descriptor) map[string]int {
	t.Helper()
	ctx := context.Background()
	seen := map[digest.Digest]bool{}
	counts := map[string]int{}
	var visit func(d ocispec.Descriptor)
	visit = func(d ocispec.Descriptor) {
		if seen[d.Digest] || !image.IsDocument(d.MediaType) {
			return
		}
		seen[d.Digest] = true
		b, err := content.ReadAll(ctx, f, d, 0)
		if err != nil {
			t.Fatalf("read %s %s: %v", d.MediaType, d.Digest, err)
		}
		doc, err := image.Parse(d, b)
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		counts[d.MediaType]++
		if doc.Manifest != nil && image.IsConfig(doc.Manifest.Config.MediaType) {
			cb, err := content.ReadAll(ctx, f, doc.Manifest.Config, 0)
			if err != nil {
				t.Fatal(err)
			}
			c, err := image.ParseConfig(doc.Manifest.Config, cb)
			if err != nil {
				t.Fatal(err)
			}
			if err := image.ValidateImage(doc.Manifest, c); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range doc.Children() {
			visit(c)
		}
	}
	visit(root)
	return counts
}

func rootOf(t *testing.T, path, mt string) ocispec.Descriptor {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b)), Data: b}
}

func TestPeerDocuments(t *testing.T) {
	need(t, "umoci")
	need(t, "skopeo")
	dir := t.TempDir()
	bb, multi := testutil.UmociImage(t), testutil.Image(t, "multiarch")
	run(t, "skopeo", "copy", "-q", "oci:"+bb+":latest", "oci:"+filepath.Join(dir, "sk")+":latest")
	run(t, "skopeo", "copy", "-q", "--all", "oci:"+multi+":latest", "oci:"+filepath.Join(dir, "skmulti")+":latest")
	run(t, "skopeo", "copy", "-q", "--format", "v2s2", "oci:"+bb+":latest", "dir:"+filepath.Join(dir, "d2"))
	run(t, "skopeo", "copy", "-q", "--all", "--format", "v2s2", "oci:"+multi+":latest", "dir:"+filepath.Join(dir, "d2multi"))

	tests := []struct {
		name, dir, root, mt string
		want                map[string]int
		platforms           []string
	}{
		{"umoci busybox", bb, "index.json", image.MediaTypeIndex,
			map[string]int{image.MediaTypeIndex: 1, image.MediaTypeManifest: 1, image.MediaTypeConfig: 1}, nil},
		{"skopeo busybox", "sk", "index.json", image.MediaTypeIndex,
			map[string]int{image.MediaTypeIndex: 1, image.MediaTypeManifest: 1, image.MediaTypeConfig: 1}, nil},
		{"multiarch", multi, "index.json", image.MediaTypeIndex,
			map[string]int{image.MediaTypeIndex: 2, image.MediaTypeManifest: 2, image.MediaTypeConfig: 2}, []string{"linux/amd64", "linux/arm64"}},
		{"skopeo multiarch", "skmulti", "index.json", image.MediaTypeIndex,
			map[string]int{image.MediaTypeIndex: 2, image.MediaTypeManifest: 2, image.MediaTypeConfig: 2}, []string{"linux/amd64", "linux/arm64"}},
		{"docker schema 2", "d2", "manifest.json", image.MediaTypeDockerManifest,
			map[string]int{image.MediaTypeDockerManifest: 1, image.MediaTypeDockerConfig: 1}, nil},
		{"docker manifest list", "d2multi", "manifest.json", image.MediaTypeDockerManifestList,
			map[string]int{image.MediaTypeDockerManifestList: 1, image.MediaTypeDockerManifest: 2, image.MediaTypeDockerConfig: 2}, []string{"linux/amd64", "linux/arm64"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.dir
			if !filepath.IsAbs(d) {
				d = filepath.Join(dir, d)
			}
			f := dirFetcher(d)
			root := rootOf(t, filepath.Join(d, tc.root), tc.mt)
			got := walk(t, f, root)
			if a, b := mustJSON(got), mustJSON(tc.want); a != b {
				t.Fatalf("documents = %s, want %s", a, b)
			}
			for _, p := range tc.platforms {
				want, err := image.ParsePlatform(p)
				if err != nil {
					t.Fatal(err)
				}
				// index.json → the image index (or the list itself) → the platform's manifest.
				from := root
				if tc.root == "index.json" {
					x, err := image.ParseIndex(root, root.Data)
					if err != nil {
						t.Fatal(err)
					}
					from = x.Manifests[0]
				}
				d, err := image.SelectManifest(context.Background(), f, from, &want)
				if err != nil {
					t.Fatal(err)
				}
				if d.Platform == nil || !image.Match(&want, d.Platform) {
					t.Fatalf("selected %v for %s", d.Platform, p)
				}
			}
		})
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
