package copy_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/image/copy"
	"github.com/wharfoci/wharf/image/layout"
)

var v2 = specs.Versioned{SchemaVersion: 2}

type fixture struct {
	l        *layout.Layout
	amd64    ocispec.Descriptor // manifest in the nested index
	arm64    ocispec.Descriptor // manifest in the nested index
	s390x    ocispec.Descriptor // manifest in the outer index
	nested   ocispec.Descriptor
	outer    ocispec.Descriptor // tagged "multi"
	blobs    map[digest.Digest][]digest.Digest
	referrer ocispec.Descriptor // subject: amd64
}

func newLayout(t *testing.T, name string) *layout.Layout {
	t.Helper()
	l, err := layout.Init(filepath.Join(t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func push(t *testing.T, s content.Pusher, mt string, b []byte) ocispec.Descriptor {
	t.Helper()
	d, err := content.PushBytes(context.Background(), s, mt, b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func pushJSON(t *testing.T, s content.Pusher, mt string, v any) ocispec.Descriptor {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return push(t, s, mt, b)
}

// image pushes a two-layer image for arch and returns its manifest descriptor (with platform)
// and the digests of its config and layers.
func image(t *testing.T, s content.Pusher, arch string) (ocispec.Descriptor, []digest.Digest) {
	l1 := push(t, s, ocispec.MediaTypeImageLayerGzip, []byte("layer one "+arch+string(make([]byte, 100_000))))
	l2 := push(t, s, ocispec.MediaTypeImageLayerGzip, []byte("shared layer"))
	p := ocispec.Platform{OS: "linux", Architecture: arch}
	cfg := pushJSON(t, s, ocispec.MediaTypeImageConfig, ocispec.Image{Platform: p,
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{l1.Digest, l2.Digest}}})
	m := pushJSON(t, s, ocispec.MediaTypeImageManifest, ocispec.Manifest{Versioned: v2, MediaType: ocispec.MediaTypeImageManifest,
		Config: cfg, Layers: []ocispec.Descriptor{l1, l2}})
	m.Platform = &p
	return m, []digest.Digest{m.Digest, cfg.Digest, l1.Digest, l2.Digest}
}

// newFixture builds: "multi" → outer index → [nested index → [amd64, arm64], s390x], plus a
// signature whose subject is the amd64 manifest, and "single" → the arm64 manifest.
func newFixture(t *testing.T) *fixture {
	ctx := context.Background()
	f := &fixture{l: newLayout(t, "src"), blobs: map[digest.Digest][]digest.Digest{}}
	var ds []digest.Digest
	f.amd64, ds = image(t, f.l, "amd64")
	f.blobs[f.amd64.Digest] = ds
	f.arm64, ds = image(t, f.l, "arm64")
	f.blobs[f.arm64.Digest] = ds
	f.s390x, ds = image(t, f.l, "s390x")
	f.blobs[f.s390x.Digest] = ds
	f.nested = pushJSON(t, f.l, ocispec.MediaTypeImageIndex, ocispec.Index{Versioned: v2, MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{f.amd64, f.arm64}})
	f.outer = pushJSON(t, f.l, ocispec.MediaTypeImageIndex, ocispec.Index{Versioned: v2, MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{f.nested, f.s390x}})
	if err := f.l.Tag(ctx, f.outer, "multi"); err != nil {
		t.Fatal(err)
	}
	if err := f.l.Tag(ctx, f.arm64, "single"); err != nil {
		t.Fatal(err)
	}
	sig := push(t, f.l, "application/vnd.example.signature", []byte("signed"))
	empty := push(t, f.l, ocispec.MediaTypeEmptyJSON, []byte("{}"))
	subject := f.amd64
	subject.Platform = nil
	f.referrer = pushJSON(t, f.l, ocispec.MediaTypeImageManifest, ocispec.Manifest{Versioned: v2, MediaType: ocispec.MediaTypeImageManifest,
		ArtifactType: "application/vnd.example.signature", Config: ocispec.DescriptorEmptyJSON, Layers: []ocispec.Descriptor{sig}, Subject: &subject})
	f.blobs[f.referrer.Digest] = []digest.Digest{f.referrer.Digest, sig.Digest, empty.Digest}
	return f
}

func has(t *testing.T, s content.ReadOnlyStorage, d digest.Digest) bool {
	t.Helper()
	ok, err := s.Exists(context.Background(), ocispec.Descriptor{Digest: d})
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func assertHas(t *testing.T, s content.ReadOnlyStorage, want bool, ds ...digest.Digest) {
	t.Helper()
	for _, d := range ds {
		if got := has(t, s, d); got != want {
			t.Errorf("destination has %s: %v, want %v", d, got, want)
		}
	}
}

func TestCopyPlatforms(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	arm := ocispec.Platform{OS: "linux", Architecture: "arm64"}
	s390x := ocispec.Platform{OS: "linux", Architecture: "s390x"}
	cases := []struct {
		name     string
		ref      string
		opts     copy.Options
		root     ocispec.Descriptor
		has, not []digest.Digest
	}{
		{name: "platform from nested index", ref: "multi", opts: copy.Options{Platform: &arm}, root: f.arm64,
			has: f.blobs[f.arm64.Digest], not: append(f.blobs[f.amd64.Digest][:3:3], f.outer.Digest, f.nested.Digest, f.s390x.Digest)},
		{name: "platform from outer index", ref: "multi", opts: copy.Options{Platform: &s390x}, root: f.s390x,
			has: f.blobs[f.s390x.Digest], not: []digest.Digest{f.outer.Digest, f.nested.Digest, f.arm64.Digest, f.amd64.Digest}},
		{name: "all platforms", ref: "multi", opts: copy.Options{AllPlatforms: true}, root: f.outer,
			has: append(append(append([]digest.Digest{f.outer.Digest, f.nested.Digest}, f.blobs[f.amd64.Digest]...), f.blobs[f.arm64.Digest]...), f.blobs[f.s390x.Digest]...),
			not: []digest.Digest{f.referrer.Digest}},
		{name: "manifest reference ignores platform", ref: "single", opts: copy.Options{Platform: &s390x}, root: f.arm64,
			has: f.blobs[f.arm64.Digest]},
		{name: "by digest", ref: f.nested.Digest.String(), opts: copy.Options{AllPlatforms: true}, root: f.nested,
			has: append(append([]digest.Digest{f.nested.Digest}, f.blobs[f.amd64.Digest]...), f.blobs[f.arm64.Digest]...),
			not: []digest.Digest{f.outer.Digest, f.s390x.Digest}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dst := newLayout(t, "dst")
			got, err := copy.Copy(ctx, f.l, tc.ref, dst, "copied", tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got.Digest != tc.root.Digest {
				t.Fatalf("copied root %s, want %s", got.Digest, tc.root.Digest)
			}
			assertHas(t, dst, true, tc.has...)
			assertHas(t, dst, false, tc.not...)
			r, err := dst.Resolve(ctx, "copied")
			if err != nil || r.Digest != tc.root.Digest || r.MediaType != tc.root.MediaType {
				t.Fatalf("destination tag resolves to %+v, %v", r, err)
			}
		})
	}
	t.Run("default is the host platform", func(t *testing.T) {
		dst := newLayout(t, "dst")
		got, err := copy.Copy(ctx, f.l, "multi", dst, "", copy.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Platform == nil || got.Platform.OS != "linux" {
			t.Fatalf("copied %+v", got)
		}
		list, _ := dst.List(ctx)
		if len(list) != 1 || list[0].Name != "" || list[0].Descriptor.Digest != got.Digest {
			t.Fatalf("an empty destination reference gives one untagged entry, got %+v", list)
		}
	})
	t.Run("unknown platform", func(t *testing.T) {
		dst := newLayout(t, "dst")
		_, err := copy.Copy(ctx, f.l, "multi", dst, "x", copy.Options{Platform: &ocispec.Platform{OS: "linux", Architecture: "riscv64"}})
		if !errors.Is(err, errdef.ErrNotFound) {
			t.Fatalf("copy of a missing platform: %v", err)
		}
		if list, _ := dst.List(ctx); len(list) != 0 {
			t.Fatalf("destination tagged after failure: %+v", list)
		}
	})
	t.Run("platform and all", func(t *testing.T) {
		_, err := copy.Copy(ctx, f.l, "multi", newLayout(t, "dst"), "x", copy.Options{Platform: &arm, AllPlatforms: true})
		if !errors.Is(err, errdef.ErrInvalidArgument) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestCopySkipsWhatExists(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	dst := newLayout(t, "dst")
	var copied, skipped atomic.Int32
	opts := copy.Options{AllPlatforms: true,
		PostCopy:      func(context.Context, ocispec.Descriptor) error { copied.Add(1); return nil },
		OnCopySkipped: func(context.Context, ocispec.Descriptor) error { skipped.Add(1); return nil },
	}
	if _, err := copy.Copy(ctx, f.l, "multi", dst, "a", opts); err != nil {
		t.Fatal(err)
	}
	// 3 images × (manifest, config, own layer) + 1 shared layer + 2 indexes.
	if copied.Load() != 12 || skipped.Load() != 0 {
		t.Fatalf("first copy: %d copied, %d skipped", copied.Load(), skipped.Load())
	}
	copied.Store(0)
	if _, err := copy.Copy(ctx, f.l, "multi", dst, "b", opts); err != nil {
		t.Fatal(err)
	}
	if copied.Load() != 0 || skipped.Load() != 1 {
		t.Fatalf("second copy: %d copied, %d skipped (want the root only)", copied.Load(), skipped.Load())
	}
	if _, err := dst.Resolve(ctx, "b"); err != nil {
		t.Fatal(err)
	}
}

func TestCopyReferrers(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	amd := ocispec.Platform{OS: "linux", Architecture: "amd64"}
	for _, withReferrers := range []bool{false, true} {
		dst := newLayout(t, "dst")
		if _, err := copy.Copy(ctx, f.l, "multi", dst, "a", copy.Options{Platform: &amd, Referrers: withReferrers}); err != nil {
			t.Fatal(err)
		}
		assertHas(t, dst, withReferrers, f.blobs[f.referrer.Digest]...)
		refs, err := dst.Referrers(ctx, f.amd64, "")
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{false: 0, true: 1}[withReferrers]; len(refs) != want {
			t.Fatalf("referrers=%v: destination lists %d referrers", withReferrers, len(refs))
		}
		// The referrer survives a GC of the destination.
		if _, err := dst.GC(ctx, layout.GCOptions{}); err != nil {
			t.Fatal(err)
		}
		assertHas(t, dst, withReferrers, f.blobs[f.referrer.Digest]...)
	}
}

// corrupt wraps a store and serves wrong bytes for one digest.
type corrupt struct {
	*layout.Layout
	bad digest.Digest
}

func (c corrupt) Fetch(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	rc, err := c.Layout.Fetch(ctx, d)
	if err != nil || d.Digest != c.bad {
		return rc, err
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	b[0] ^= 0xff
	return io.NopCloser(bytesReader(b)), nil
}

func TestCopyVerifies(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	for _, bad := range []struct {
		name string
		d    digest.Digest
	}{{"layer", f.blobs[f.arm64.Digest][2]}, {"config", f.blobs[f.arm64.Digest][1]}, {"manifest", f.arm64.Digest}} {
		t.Run(bad.name, func(t *testing.T) {
			dst := newLayout(t, "dst")
			_, err := copy.Copy(ctx, corrupt{f.l, bad.d}, "single", dst, "x", copy.Options{})
			if !errors.Is(err, errdef.ErrDigestMismatch) {
				t.Fatalf("copy of corrupt %s: %v", bad.name, err)
			}
			assertHas(t, dst, false, bad.d, f.arm64.Digest)
			if list, _ := dst.List(ctx); len(list) != 0 {
				t.Fatalf("tagged after failure: %+v", list)
			}
		})
	}
}

// counting wraps a store and records the most fetches in flight at once.
type counting struct {
	*layout.Layout
	mu        sync.Mutex
	now, peak int
}

type countingReader struct {
	io.ReadCloser
	c    *counting
	once sync.Once
}

func (r *countingReader) Close() error {
	r.once.Do(func() { r.c.mu.Lock(); r.c.now--; r.c.mu.Unlock() })
	return r.ReadCloser.Close()
}

func (c *counting) Fetch(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	rc, err := c.Layout.Fetch(ctx, d)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.now++
	c.peak = max(c.peak, c.now)
	c.mu.Unlock()
	return &countingReader{ReadCloser: rc, c: c}, nil
}

func TestCopyConcurrencyAndProgress(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	for _, n := range []int{1, 2} {
		src := &counting{Layout: f.l}
		dst := newLayout(t, "dst")
		var mu sync.Mutex
		final := map[digest.Digest]int64{}
		var transfers int
		opts := copy.Options{AllPlatforms: true, Concurrency: n, Progress: func(p copy.Progress) {
			mu.Lock()
			defer mu.Unlock()
			if p.Done > p.Descriptor.Size {
				t.Errorf("progress %d over size %d", p.Done, p.Descriptor.Size)
			}
			if p.State == copy.Transferring && p.Done > 0 {
				transfers++
			}
			if p.State == copy.Copied {
				final[p.Descriptor.Digest] = p.Done
			}
		}}
		if _, err := copy.Copy(ctx, src, "multi", dst, "a", opts); err != nil {
			t.Fatal(err)
		}
		if src.peak > n {
			t.Errorf("concurrency %d: %d fetches at once", n, src.peak)
		}
		if len(final) != 12 || transfers == 0 {
			t.Errorf("concurrency %d: %d descriptors reported copied, %d byte reports", n, len(final), transfers)
		}
	}
}

func TestCopyHooks(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	dst := newLayout(t, "dst")
	layer := f.blobs[f.arm64.Digest][2]
	_, err := copy.Copy(ctx, f.l, "single", dst, "a", copy.Options{PreCopy: func(_ context.Context, d ocispec.Descriptor) error {
		if d.Digest == layer {
			return copy.ErrSkipDesc
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	assertHas(t, dst, false, layer)
	assertHas(t, dst, true, f.arm64.Digest)

	boom := errors.New("boom")
	_, err = copy.Copy(ctx, f.l, "single", newLayout(t, "dst2"), "a", copy.Options{PostCopy: func(context.Context, ocispec.Descriptor) error { return boom }})
	if !errors.Is(err, boom) {
		t.Fatalf("PostCopy error lost: %v", err)
	}
}

// mounter is a destination that can mount blobs "from another repository" (here: a second
// layout) instead of receiving them.
type mounter struct {
	*layout.Layout
	from    *layout.Layout
	mounted atomic.Int32
}

func (m *mounter) Mount(ctx context.Context, d ocispec.Descriptor, repo string) error {
	if repo != "other" {
		return errdef.ErrNotFound
	}
	rc, err := m.from.Fetch(ctx, d)
	if err != nil {
		return err
	}
	defer rc.Close()
	m.mounted.Add(1)
	return m.Layout.Push(ctx, d, rc)
}

func TestCopyMount(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	dst := &mounter{Layout: newLayout(t, "dst"), from: f.l}
	var onMounted atomic.Int32
	_, err := copy.Copy(ctx, f.l, "single", dst, "a", copy.Options{
		MountFrom: func(context.Context, ocispec.Descriptor) ([]string, error) { return []string{"nope", "other"}, nil },
		OnMounted: func(context.Context, ocispec.Descriptor) error { onMounted.Add(1); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	// Config and two layers are blobs; the manifest is pushed.
	if dst.mounted.Load() != 3 || onMounted.Load() != 3 {
		t.Fatalf("mounted %d, OnMounted %d; want 3", dst.mounted.Load(), onMounted.Load())
	}
}

func TestCopyArchives(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	file := filepath.Join(t.TempDir(), "img.tar")
	a, err := layout.OpenArchive(ctx, file, layout.ArchiveOptions{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := copy.Copy(ctx, f.l, "multi", a, "v1", copy.Options{AllPlatforms: true}); err != nil {
		t.Fatal(err)
	}
	if err := a.Save(ctx); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if st, err := os.Stat(file); err != nil || st.Size() == 0 {
		t.Fatalf("archive not written: %v", err)
	}
	a, err = layout.OpenArchive(ctx, file, layout.ArchiveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	dst := newLayout(t, "dst")
	arm := ocispec.Platform{OS: "linux", Architecture: "arm64"}
	got, err := copy.Copy(ctx, a, "v1", dst, "arm", copy.Options{Platform: &arm})
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != f.arm64.Digest {
		t.Fatalf("copied %s, want %s", got.Digest, f.arm64.Digest)
	}
	assertHas(t, dst, true, f.blobs[f.arm64.Digest]...)
}

// tagPusher records how the root reaches a layout destination: PushTag, Push or Tag.
type tagPusher struct {
	*layout.Layout
	mu                     sync.Mutex
	pushTags, pushes, tags []string
}

func (p *tagPusher) PushTag(ctx context.Context, d ocispec.Descriptor, r io.Reader, ref string) error {
	p.mu.Lock()
	p.pushTags = append(p.pushTags, d.Digest.String()+" "+ref)
	p.mu.Unlock()
	if err := p.Layout.Push(ctx, d, r); err != nil {
		return err
	}
	return p.Layout.Tag(ctx, d, ref)
}

func (p *tagPusher) Push(ctx context.Context, d ocispec.Descriptor, r io.Reader) error {
	p.mu.Lock()
	p.pushes = append(p.pushes, d.Digest.String())
	p.mu.Unlock()
	return p.Layout.Push(ctx, d, r)
}

func (p *tagPusher) Tag(ctx context.Context, d ocispec.Descriptor, ref string) error {
	p.mu.Lock()
	p.tags = append(p.tags, d.Digest.String()+" "+ref)
	p.mu.Unlock()
	return p.Layout.Tag(ctx, d, ref)
}

// A destination that can push and tag in one step gets the root once, as the tag; one that
// already holds the root gets it once too, as the tag, read from the source (Tag would read
// it from the destination first: a request more on a registry); a digest reference is not a
// tag.
func TestCopyPushesRootAsTag(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	for _, tc := range []struct {
		name, ref            string
		preload              bool
		pushTags, rootPushes int
		tags                 int
	}{
		{name: "tag", ref: "v1", pushTags: 1},
		{name: "already there", ref: "v1", preload: true, pushTags: 1},
		{name: "by digest", ref: "", rootPushes: 1, tags: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := &tagPusher{Layout: newLayout(t, "dst")}
			if tc.preload {
				if _, err := copy.Copy(ctx, f.l, "single", dst.Layout, "", copy.Options{}); err != nil {
					t.Fatal(err)
				}
			}
			root, err := copy.Copy(ctx, f.l, "single", dst, tc.ref, copy.Options{})
			if err != nil {
				t.Fatal(err)
			}
			rootPushes := 0
			for _, p := range dst.pushes {
				if p == root.Digest.String() {
					rootPushes++
				}
			}
			if len(dst.pushTags) != tc.pushTags || rootPushes != tc.rootPushes || len(dst.tags) != tc.tags {
				t.Fatalf("PushTag %v, root pushed %d times, Tag %v", dst.pushTags, rootPushes, dst.tags)
			}
			want := tc.ref
			if want == "" {
				want = root.Digest.String()
			}
			if got, err := dst.Resolve(ctx, want); err != nil || got.Digest != root.Digest {
				t.Fatalf("resolve %s: %v, %v", want, got.Digest, err)
			}
		})
	}
}
