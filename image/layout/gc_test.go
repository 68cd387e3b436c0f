package layout

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/content/local"
	"github.com/wharfoci/wharf/errdef"
)

func TestGC(t *testing.T) {
	ctx := context.Background()
	l := newLayout(t)
	kept := testImage(t, l, "kept")       // tagged
	nested := testImage(t, l, "nested")   // reached through a tagged index
	untagged := testImage(t, l, "untag")  // an untagged entry
	dropped := testImage(t, l, "dropped") // tagged, then untagged
	orphan, _ := content.PushBytes(ctx, l, "application/octet-stream", []byte("orphan"))
	idx := pushJSON(t, l, ocispec.MediaTypeImageIndex, ocispec.Index{Versioned: specsV2, MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{nested}})
	// A referrer of the kept image, listed nowhere in index.json, and its own blob.
	sig, _ := content.PushBytes(ctx, l, "application/vnd.example.sig", []byte("signature"))
	empty, _ := content.PushBytes(ctx, l, ocispec.MediaTypeEmptyJSON, []byte("{}"))
	ref := pushJSON(t, l, ocispec.MediaTypeImageManifest, ocispec.Manifest{Versioned: specsV2, MediaType: ocispec.MediaTypeImageManifest,
		ArtifactType: "application/vnd.example.sig", Config: empty, Layers: []ocispec.Descriptor{sig}, Subject: &kept})
	// A referrer of the dropped image goes with it.
	sig2, _ := content.PushBytes(ctx, l, "application/vnd.example.sig", []byte("signature 2"))
	ref2 := pushJSON(t, l, ocispec.MediaTypeImageManifest, ocispec.Manifest{Versioned: specsV2, MediaType: ocispec.MediaTypeImageManifest,
		ArtifactType: "application/vnd.example.sig", Config: empty, Layers: []ocispec.Descriptor{sig2}, Subject: &dropped})

	for _, tg := range []struct {
		d   ocispec.Descriptor
		ref string
	}{{kept, "kept"}, {idx, "multi"}, {untagged, untagged.Digest.String()}, {dropped, "dropped"}} {
		if err := l.Tag(ctx, tg.d, tg.ref); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Untag(ctx, "dropped"); err != nil {
		t.Fatal(err)
	}
	// A stale ingest and a fresh one.
	ingest := filepath.Join(l.Root(), local.DefaultIngestDir)
	os.MkdirAll(ingest, 0o700)
	os.WriteFile(filepath.Join(ingest, "stale.data"), []byte("x"), 0o600)
	old := time.Now().Add(-48 * time.Hour)
	os.Chtimes(filepath.Join(ingest, "stale.data"), old, old)
	os.WriteFile(filepath.Join(ingest, "fresh.data"), []byte("x"), 0o600)

	// A live writer's ingest stays whatever its age.
	w, err := l.Writer(ctx, "live")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Cancel(ctx)
	w.Write([]byte("partial"))
	entries, _ := os.ReadDir(ingest)
	for _, e := range entries {
		if e.Name() != "stale.data" && e.Name() != "fresh.data" {
			os.Chtimes(filepath.Join(ingest, e.Name()), old, old)
		}
	}

	before := map[string]bool{}
	l.Walk(ctx, func(i content.Info) error { before[i.Digest.String()] = true; return nil })

	dry, err := l.GC(ctx, GCOptions{DryRun: true, IngestMaxAge: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	res, err := l.GC(ctx, GCOptions{IngestMaxAge: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if len(dry.Removed) != len(res.Removed) || dry.Ingests != 1 || res.Ingests != 1 {
		t.Errorf("dry run %d blobs %d ingests, run %d blobs %d ingests", len(dry.Removed), dry.Ingests, len(res.Removed), res.Ingests)
	}
	after := map[string]bool{}
	l.Walk(ctx, func(i content.Info) error { after[i.Digest.String()] = true; return nil })

	mustKeep := []ocispec.Descriptor{kept, nested, untagged, idx, ref, sig, empty}
	mustGo := []ocispec.Descriptor{dropped, orphan, ref2, sig2}
	for _, d := range mustKeep {
		if !after[d.Digest.String()] {
			t.Errorf("GC removed reachable %s %s", d.MediaType, d.Digest)
		}
	}
	for _, d := range mustGo {
		if after[d.Digest.String()] {
			t.Errorf("GC kept unreachable %s %s", d.MediaType, d.Digest)
		}
	}
	// Configs and layers of kept images stay: 4 images' worth minus the dropped one's 3 blobs.
	if got, want := len(before)-len(after), len(res.Removed); got != want {
		t.Errorf("%d blobs disappeared, GC reported %d", got, want)
	}
	if _, err := os.Stat(filepath.Join(ingest, "stale.data")); !os.IsNotExist(err) {
		t.Errorf("stale ingest kept: %v", err)
	}
	if _, err := os.Stat(filepath.Join(ingest, "fresh.data")); err != nil {
		t.Errorf("fresh ingest removed: %v", err)
	}
	live := 0
	entries, _ = os.ReadDir(ingest)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".data") && e.Name() != "fresh.data" {
			live++
		}
	}
	if live != 1 {
		t.Errorf("the live writer's ingest was removed (%d left)", live)
	}
	if n, err := w.Write([]byte(" more")); err != nil || w.Offset() != int64(len("partial more")) {
		t.Errorf("live writer broken by GC: %d %v offset %d", n, err, w.Offset())
	}
	if err := w.Close(); err != nil {
		t.Errorf("live writer close after GC: %v", err)
	}
	// Everything tagged still resolves and reads.
	for _, ref := range []string{"kept", "multi"} {
		d, err := l.Resolve(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := content.ReadAll(ctx, l, d, 0); err != nil {
			t.Fatal(err)
		}
	}
	// Referrers are listed from the layout.
	refs, err := l.Referrers(ctx, kept, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []string{"", "application/vnd.example.sig"} {
		refs, err = l.Referrers(ctx, kept, at)
		if err != nil || len(refs) != 1 || refs[0].Digest != ref.Digest || refs[0].ArtifactType != "application/vnd.example.sig" {
			t.Errorf("referrers(%q) = %+v, %v", at, refs, err)
		}
	}
	if refs, _ = l.Referrers(ctx, kept, "other"); len(refs) != 0 {
		t.Errorf("artifactType filter ignored: %+v", refs)
	}
	// A second GC finds nothing more; KeepNewerThan protects fresh unreachable blobs.
	orphan2, _ := content.PushBytes(ctx, l, "application/octet-stream", []byte("orphan 2"))
	res, err = l.GC(ctx, GCOptions{KeepNewerThan: time.Hour})
	if err != nil || len(res.Removed) != 0 {
		t.Fatalf("GC with grace: %v removed %d", err, len(res.Removed))
	}
	if ok, _ := l.Exists(ctx, orphan2); !ok {
		t.Fatal("fresh orphan removed despite KeepNewerThan")
	}
}

// Referrers scans once and keeps the answer; a referrer pushed through the layout, a Delete
// and a GC are seen by the next call.
func TestReferrersFollowWrites(t *testing.T) {
	ctx := context.Background()
	l := newLayout(t)
	subject := testImage(t, l, "subject")
	empty, _ := content.PushBytes(ctx, l, ocispec.MediaTypeEmptyJSON, []byte("{}"))
	sig := func(name string) ocispec.Descriptor {
		b, _ := content.PushBytes(ctx, l, "application/vnd.example.sig", []byte(name))
		s := subject
		s.Platform = nil
		return pushJSON(t, l, ocispec.MediaTypeImageManifest, ocispec.Manifest{Versioned: specsV2, MediaType: ocispec.MediaTypeImageManifest,
			ArtifactType: "application/vnd.example.sig", Config: empty, Layers: []ocispec.Descriptor{b}, Subject: &s})
	}
	count := func() int {
		t.Helper()
		refs, err := l.Referrers(ctx, subject, "")
		if err != nil {
			t.Fatal(err)
		}
		return len(refs)
	}
	if n := count(); n != 0 {
		t.Fatalf("%d referrers before any", n)
	}
	first := sig("one")
	if n := count(); n != 1 {
		t.Fatalf("%d referrers after pushing one", n)
	}
	sig("two")
	if n := count(); n != 2 {
		t.Fatalf("%d referrers after pushing two", n)
	}
	if err := l.Delete(ctx, first.Digest); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 1 {
		t.Fatalf("%d referrers after deleting one", n)
	}
}

// A Layout that has pushed blobs (a copy in progress, here or in another process) keeps GC
// from running through another Layout of the same directory; its own GC still runs; after
// Close the others may collect.
func TestGCWaitsForWriters(t *testing.T) {
	ctx := context.Background()
	writer := newLayout(t)
	other, err := Open(writer.Root())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	pushed, err := content.PushBytes(ctx, writer, "application/octet-stream", []byte("pushed, not tagged yet"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.GC(ctx, GCOptions{}); !errors.Is(err, errdef.ErrInvalidState) {
		t.Fatalf("GC beside a writer: %v, want ErrInvalidState", err)
	}
	if ok, _ := writer.Exists(ctx, pushed); !ok {
		t.Fatal("the writer's blob is gone")
	}
	if _, err := writer.GC(ctx, GCOptions{DryRun: true}); err != nil {
		t.Fatalf("the writer's own GC: %v", err)
	}
	// Still a writer after its own GC: pushing works and the others still wait.
	if _, err := content.PushBytes(ctx, writer, "application/octet-stream", []byte("again")); err != nil {
		t.Fatal(err)
	}
	if _, err := other.GC(ctx, GCOptions{}); !errors.Is(err, errdef.ErrInvalidState) {
		t.Fatalf("GC beside a writer after its own GC: %v", err)
	}
	writer.Close()
	res, err := other.GC(ctx, GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Removed) != 2 {
		t.Fatalf("removed %d blobs, want the 2 untagged ones", len(res.Removed))
	}
}
