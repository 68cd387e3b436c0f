package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/content/contenttest"
	"github.com/wharfoci/wharf/distribution/client"
	"github.com/wharfoci/wharf/distribution/server/servertest"
	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/image"
	imagecopy "github.com/wharfoci/wharf/image/copy"
	"github.com/wharfoci/wharf/image/layout"
)

func newRepo(t *testing.T, host, name string, opts client.Options) *client.Repository {
	t.Helper()
	c, err := client.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Repository(host, name)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// The client is a content store: it passes the conformance suite against wharf's registry,
// uploading monolithically and in chunks.
func TestContentConformance(t *testing.T) {
	host := servertest.Start(t)
	n := 0
	for _, tc := range []struct {
		name  string
		chunk int64
	}{{"monolithic", 0}, {"chunked", 64 << 10}} {
		contenttest.Suite(t, tc.name, func(t *testing.T) contenttest.Store {
			n++
			return newRepo(t, host, fmt.Sprintf("conf/%s%d", tc.name, n), client.Options{ChunkSize: tc.chunk})
		})
	}
}

// buildImage writes a small multi-platform image (index → 2 manifests) and a referrer into a
// new layout, tagged "latest".
func buildImage(t *testing.T) (*layout.Layout, ocispec.Descriptor) {
	t.Helper()
	ctx := context.Background()
	l, err := layout.Init(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	push := func(mt string, b []byte) ocispec.Descriptor {
		d, err := content.PushBytes(ctx, l, mt, b)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	var manifests []ocispec.Descriptor
	for _, arch := range []string{"amd64", "arm64"} {
		layer := push(image.MediaTypeLayer, contenttest.Data("layer-"+arch, 300_000))
		cfg, _ := json.Marshal(ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: arch},
			RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{layer.Digest}}})
		cd := push(image.MediaTypeConfig, cfg)
		m := ocispec.Manifest{MediaType: image.MediaTypeManifest, Config: cd, Layers: []ocispec.Descriptor{layer}}
		m.SchemaVersion = 2
		mb, _ := json.Marshal(m)
		md := push(image.MediaTypeManifest, mb)
		md.Platform = &ocispec.Platform{OS: "linux", Architecture: arch}
		manifests = append(manifests, md)
	}
	idx := ocispec.Index{MediaType: image.MediaTypeIndex, Manifests: manifests}
	idx.SchemaVersion = 2
	ib, _ := json.Marshal(idx)
	root := push(image.MediaTypeIndex, ib)
	// a signature-like referrer of the index
	empty := push(image.MediaTypeEmptyJSON, []byte("{}"))
	sig := push("application/octet-stream", []byte("signature"))
	ref := ocispec.Manifest{MediaType: image.MediaTypeManifest, ArtifactType: "application/vnd.example.sig", Config: empty,
		Layers: []ocispec.Descriptor{sig}, Subject: &root}
	ref.SchemaVersion = 2
	rb, _ := json.Marshal(ref)
	push(image.MediaTypeManifest, rb)
	if err := l.Tag(ctx, root, "latest"); err != nil {
		t.Fatal(err)
	}
	return l, root
}

// layout → registry → layout keeps every digest, with and without chunks, platforms and
// referrers.
func TestCopyRoundTrip(t *testing.T) {
	host := servertest.Start(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		chunk int64
	}{{"monolithic", 0}, {"chunked", 100_000}} {
		t.Run(tc.name, func(t *testing.T) {
			src, root := buildImage(t)
			repo := newRepo(t, host, "roundtrip/"+tc.name, client.Options{ChunkSize: tc.chunk})
			got, err := imagecopy.Copy(ctx, src, "latest", repo, "v1", imagecopy.Options{AllPlatforms: true, Referrers: true})
			if err != nil {
				t.Fatal(err)
			}
			if got.Digest != root.Digest {
				t.Fatalf("pushed %s, want %s", got.Digest, root.Digest)
			}
			d, err := repo.Resolve(ctx, "v1")
			if err != nil || d.Digest != root.Digest || d.MediaType != image.MediaTypeIndex {
				t.Fatalf("resolve v1 = %+v, %v", d, err)
			}
			refs, err := repo.Referrers(ctx, root, "")
			if err != nil || len(refs) != 1 {
				t.Fatalf("referrers = %v, %v", refs, err)
			}
			dst, err := layout.Init(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer dst.Close()
			got, err = imagecopy.Copy(ctx, repo, "v1", dst, "latest", imagecopy.Options{AllPlatforms: true, Referrers: true})
			if err != nil || got.Digest != root.Digest {
				t.Fatalf("pull = %s, %v", got.Digest, err)
			}
			if _, err := dst.Validate(ctx, []ocispec.Descriptor{root}, layout.ValidateOptions{}); err != nil {
				t.Fatalf("validate pulled layout: %v", err)
			}
			lrefs, err := dst.Referrers(ctx, root, "")
			if err != nil || len(lrefs) != 1 {
				t.Fatalf("pulled referrers = %v, %v", lrefs, err)
			}
			// a second push skips everything
			var skipped int
			_, err = imagecopy.Copy(ctx, src, "latest", repo, "v2", imagecopy.Options{AllPlatforms: true,
				OnCopySkipped: func(context.Context, ocispec.Descriptor) error { skipped++; return nil }})
			if err != nil || skipped != 1 {
				t.Fatalf("second push: %d skipped (want the root), %v", skipped, err)
			}
			var tags []string
			err = repo.TagPages(ctx, 1, "", func(page []string) error { tags = append(tags, page...); return nil })
			if err != nil || strings.Join(tags, ",") != "v1,v2" {
				t.Fatalf("tags (pages of 1) = %v, %v", tags, err)
			}
		})
	}
}

// A blob of another repository of the same registry is mounted, not uploaded again.
func TestMount(t *testing.T) {
	host := servertest.Start(t)
	ctx := context.Background()
	a := newRepo(t, host, "mount/a", client.Options{})
	b := newRepo(t, host, "mount/b", client.Options{})
	blob := contenttest.Data("mounted", 10_000)
	d := contenttest.Blob(digest.SHA256, blob)
	if err := a.Push(ctx, d, bytes.NewReader(blob)); err != nil {
		t.Fatal(err)
	}
	if err := b.Mount(ctx, d, "mount/a"); err != nil {
		t.Fatalf("mount: %v", err)
	}
	if ok, err := b.Exists(ctx, d); !ok || err != nil {
		t.Fatalf("mounted blob exists = %v, %v", ok, err)
	}
	c := newRepo(t, host, "mount/c", client.Options{})
	if err := c.Mount(ctx, d, ""); err != nil {
		t.Fatalf("anonymous mount: %v", err)
	}
	if ok, err := c.Exists(ctx, d); !ok || err != nil {
		t.Fatalf("anonymously mounted blob exists = %v, %v", ok, err)
	}
	missing := contenttest.Blob(digest.SHA256, []byte("nowhere"))
	if err := b.Mount(ctx, missing, "mount/a"); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("mount of a missing blob: %v, want not found", err)
	}
}

func TestCatalog(t *testing.T) {
	host := servertest.Start(t)
	ctx := context.Background()
	for _, name := range []string{"cat/b", "cat/a", "cat/c"} {
		src, _ := buildImage(t)
		if _, err := imagecopy.Copy(ctx, src, "latest", newRepo(t, host, name, client.Options{}), "v1", imagecopy.Options{AllPlatforms: true}); err != nil {
			t.Fatal(err)
		}
	}
	c, _ := client.New(client.Options{})
	repos, err := c.Catalog(ctx, host, 2)
	if err != nil || strings.Join(repos, ",") != "cat/a,cat/b,cat/c" {
		t.Fatalf("catalog (pages of 2) = %v, %v", repos, err)
	}
}

// Stores skip their own hashing for readers that content.NewVerifyReader made for the same
// descriptor (content.Verifies): wrong content must still never be stored.
func TestVerifiedReadersStillRefuseBadContent(t *testing.T) {
	ctx := context.Background()
	l, err := layout.Init(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	host := servertest.Start(t)
	good := contenttest.Data("good", 300_000)
	d := contenttest.Blob(digest.SHA256, good)
	for _, tc := range []struct {
		name string
		body []byte
		want error
	}{
		{"digest", append(bytes.Clone(good[:len(good)-1]), 'x'), errdef.ErrDigestMismatch},
		{"short", good[:1000], errdef.ErrSizeMismatch},
		{"long", append(bytes.Clone(good), 'x'), errdef.ErrSizeMismatch},
	} {
		stores := map[string]content.Storage{"layout": l, "registry": newRepo(t, host, "verified/"+tc.name, client.Options{})}
		for name, s := range stores {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				r := content.NewVerifyReader(bytes.NewReader(tc.body), d)
				if !content.Verifies(r, d) {
					t.Fatal("Verifies is false for a fresh verify reader")
				}
				if err := s.Push(ctx, d, r); !errors.Is(err, tc.want) {
					t.Fatalf("push: %v, want %v", err, tc.want)
				}
				if ok, _ := s.Exists(ctx, d); ok {
					t.Fatal("bad content was stored")
				}
			})
		}
	}
}
