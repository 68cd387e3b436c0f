package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// gcFixture: repository a/app holds v1 (config, l1) with a referrer, an untagged manifest
// (config, l2) with its own referrer, and a stray blob; b/other holds v1 (config, l2).
type gcFixture struct {
	base                          string
	cfg, l1, l2, stray, sig, sig2 digest.Digest
	m1, m2, m3, ref1, ref2        digest.Digest
}

func putManifest(t *testing.T, base, repo, ref string, m ocispec.Manifest) ocispec.Descriptor {
	t.Helper()
	m.SchemaVersion, m.MediaType = 2, ocispec.MediaTypeImageManifest
	b, _ := json.Marshal(m)
	d := digest.FromBytes(b)
	if ref == "" {
		ref = string(d)
	}
	resp := do(t, "PUT", base+"/v2/"+repo+"/manifests/"+ref, b, "Content-Type", ocispec.MediaTypeImageManifest)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("put manifest %s:%s: %d", repo, ref, resp.StatusCode)
	}
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d, Size: int64(len(b))}
}

func newGCFixture(t *testing.T, base string) *gcFixture {
	f := &gcFixture{base: base}
	desc := func(mt string, d digest.Digest, b []byte) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(b))}
	}
	cfgB, l1B, l2B := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`), []byte("layer one"), []byte("layer two")
	sigB, sig2B, emptyB := []byte("signature"), []byte("signature two"), []byte("{}")
	for _, repo := range []string{"a/app", "b/other"} {
		f.cfg = pushBlob(t, base, repo, cfgB)
	}
	f.l1 = pushBlob(t, base, "a/app", l1B)
	f.l2 = pushBlob(t, base, "a/app", l2B)
	pushBlob(t, base, "b/other", l2B)
	f.stray = pushBlob(t, base, "a/app", []byte("pushed, never referenced"))
	f.sig = pushBlob(t, base, "a/app", sigB)
	f.sig2 = pushBlob(t, base, "a/app", sig2B)
	empty := pushBlob(t, base, "a/app", emptyB)
	cfg := desc(ocispec.MediaTypeImageConfig, f.cfg, cfgB)
	m1 := putManifest(t, base, "a/app", "v1", ocispec.Manifest{Config: cfg, Layers: []ocispec.Descriptor{desc(ocispec.MediaTypeImageLayer, f.l1, l1B)}})
	m2 := putManifest(t, base, "a/app", "v2", ocispec.Manifest{Config: cfg, Layers: []ocispec.Descriptor{desc(ocispec.MediaTypeImageLayer, f.l2, l2B)}})
	f.m1, f.m2 = m1.Digest, m2.Digest
	if resp := do(t, "DELETE", base+"/v2/a/app/manifests/v2", nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("delete tag v2: %d", resp.StatusCode)
	}
	f.m3 = putManifest(t, base, "b/other", "v1", ocispec.Manifest{Config: cfg, Layers: []ocispec.Descriptor{desc(ocispec.MediaTypeImageLayer, f.l2, l2B)},
		Annotations: map[string]string{"repo": "b/other"}}).Digest
	art := func(subject ocispec.Descriptor, blob digest.Digest, b []byte) digest.Digest {
		return putManifest(t, base, "a/app", "", ocispec.Manifest{ArtifactType: "application/vnd.example.sig",
			Config: desc(ocispec.MediaTypeEmptyJSON, empty, emptyB), Layers: []ocispec.Descriptor{desc("application/vnd.example.sig", blob, b)}, Subject: &subject}).Digest
	}
	f.ref1, f.ref2 = art(m1, f.sig, sigB), art(m2, f.sig2, sig2B)
	return f
}

func status(t *testing.T, url string) int {
	t.Helper()
	return do(t, "HEAD", url, nil).StatusCode
}

func TestRegistryGC(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name          string
		opts          GCOptions
		goneBlobs     func(f *gcFixture) []digest.Digest // from the store (via b/other or a/app)
		goneManifests func(f *gcFixture) []digest.Digest // from a/app
	}{
		{"dry run", GCOptions{DryRun: true}, func(*gcFixture) []digest.Digest { return nil }, func(*gcFixture) []digest.Digest { return nil }},
		{"default", GCOptions{}, func(f *gcFixture) []digest.Digest { return []digest.Digest{f.stray} }, func(*gcFixture) []digest.Digest { return nil }},
		{"delete untagged", GCOptions{DeleteUntagged: true}, func(f *gcFixture) []digest.Digest { return []digest.Digest{f.stray, f.m2, f.ref2, f.sig2} },
			func(f *gcFixture) []digest.Digest { return []digest.Digest{f.m2, f.ref2} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, g := newTestServer(t)
			f := newGCFixture(t, srv.URL)
			res, err := g.GC(ctx, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%+v", res)
			if want := len(tc.goneManifests(f)); res.Manifests != want {
				t.Errorf("removed %d manifests, want %d", res.Manifests, want)
			}
			gone := map[digest.Digest]bool{}
			for _, d := range tc.goneBlobs(f) {
				gone[d] = true
				if _, err := g.store.Info(ctx, d); err == nil && !tc.opts.DryRun {
					t.Errorf("%s still stored", d)
				}
			}
			if want := len(tc.goneBlobs(f)); res.Blobs != want && !tc.opts.DryRun {
				t.Errorf("removed %d blobs, want %d", res.Blobs, want)
			}
			if tc.opts.DryRun && res.Blobs != 1 {
				t.Errorf("dry run would remove %d blobs, want 1 (the stray one)", res.Blobs)
			}
			for _, d := range []digest.Digest{f.cfg, f.l1, f.l2, f.m1, f.m3, f.ref1, f.sig} {
				if _, err := g.store.Info(ctx, d); err != nil {
					t.Errorf("referenced blob %s removed: %v", d, err)
				}
			}
			// What stays is served; what went is not.
			for _, c := range []struct {
				url  string
				want int
			}{
				{"/v2/a/app/manifests/v1", 200},
				{"/v2/a/app/blobs/" + string(f.l1), 200},
				{"/v2/a/app/blobs/" + string(f.cfg), 200},
				{"/v2/b/other/manifests/v1", 200},
				{"/v2/b/other/blobs/" + string(f.l2), 200},
				{"/v2/a/app/blobs/" + string(f.stray), map[bool]int{true: 200, false: 404}[tc.opts.DryRun]},
				{"/v2/a/app/manifests/" + string(f.ref1), 200},
				{"/v2/a/app/manifests/" + string(f.m2), map[bool]int{true: 404, false: 200}[tc.opts.DeleteUntagged]},
				{"/v2/a/app/manifests/" + string(f.ref2), map[bool]int{true: 404, false: 200}[tc.opts.DeleteUntagged]},
				{"/v2/a/app/blobs/" + string(f.l2), map[bool]int{true: 404, false: 200}[tc.opts.DeleteUntagged]},
			} {
				if got := status(t, srv.URL+c.url); got != c.want {
					t.Errorf("HEAD %s: %d, want %d", c.url, got, c.want)
				}
			}
		})
	}
}

// What the referrers API lists follows: the untagged image's referrer goes with it.
func TestRegistryGCReferrers(t *testing.T) {
	srv, g := newTestServer(t)
	f := newGCFixture(t, srv.URL)
	if _, err := g.GC(context.Background(), GCOptions{DeleteUntagged: true}); err != nil {
		t.Fatal(err)
	}
	for subject, want := range map[digest.Digest]int{f.m1: 1, f.m2: 0} {
		var idx ocispec.Index
		resp := do(t, "GET", fmt.Sprintf("%s/v2/a/app/referrers/%s", srv.URL, subject), nil)
		if err := json.NewDecoder(resp.Body).Decode(&idx); err != nil || len(idx.Manifests) != want {
			t.Errorf("referrers of %s: %d (%v), want %d", subject, len(idx.Manifests), err, want)
		}
	}
}

// A kept manifest that cannot be read stops the collection before anything is removed.
func TestRegistryGCUnreadableManifest(t *testing.T) {
	ctx := context.Background()
	srv, g := newTestServer(t)
	f := newGCFixture(t, srv.URL)
	p, err := g.store.BlobPath(f.m1)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("not the manifest"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := g.GC(ctx, GCOptions{}); err == nil || !strings.Contains(err.Error(), "nothing removed") {
		t.Fatalf("GC over a corrupt manifest: %v", err)
	}
	if _, err := g.store.Info(ctx, f.stray); err != nil {
		t.Fatalf("stray blob removed by a failed collection: %v", err)
	}
}
