package copy_test

import (
	"context"
	"sync"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/image/copy"
)

// progressLog records the reports of a copy, in order, per digest.
type progressLog struct {
	mu     sync.Mutex
	states map[digest.Digest][]copy.State
}

func (p *progressLog) report(ev copy.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ev.State == copy.Transferring {
		return
	}
	if p.states == nil {
		p.states = map[digest.Digest][]copy.State{}
	}
	p.states[ev.Descriptor.Digest] = append(p.states[ev.Descriptor.Digest], ev.State)
}

// A copy announces every descriptor it will visit (Expected) once, before it finishes it, and
// nothing below a document the destination already has: what a progress bar's total needs,
// without walking the graph a second time.
func TestCopyReportsExpected(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		ref     string
		opts    copy.Options
		preload string // copied to the destination first (all platforms)
		want    []digest.Digest
		not     []digest.Digest
	}{
		{name: "one platform", ref: "multi", opts: copy.Options{Platform: &ocispec.Platform{OS: "linux", Architecture: "s390x"}}},
		{name: "every platform", ref: "multi", opts: copy.Options{AllPlatforms: true}},
		{name: "below a present document", ref: "multi", opts: copy.Options{AllPlatforms: true}, preload: "single"},
		{name: "referrers", ref: "multi", opts: copy.Options{AllPlatforms: true, Referrers: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			dst := newLayout(t, "dst")
			if tc.preload != "" {
				if _, err := copy.Copy(ctx, f.l, tc.preload, dst, "pre", copy.Options{}); err != nil {
					t.Fatal(err)
				}
			}
			var log progressLog
			opts := tc.opts
			opts.Progress = log.report
			if _, err := copy.Copy(ctx, f.l, tc.ref, dst, "x", opts); err != nil {
				t.Fatal(err)
			}
			var want, not []digest.Digest
			switch tc.name {
			case "one platform":
				want, not = f.blobs[f.s390x.Digest], append([]digest.Digest{f.outer.Digest}, f.blobs[f.amd64.Digest][:3]...)
			case "every platform":
				want = append(append(append([]digest.Digest{f.outer.Digest, f.nested.Digest}, f.blobs[f.amd64.Digest]...), f.blobs[f.arm64.Digest]...), f.blobs[f.s390x.Digest]...)
				not = f.blobs[f.referrer.Digest]
			case "below a present document":
				// arm64's manifest is there: it is expected and skipped, its config and own layer never.
				want = []digest.Digest{f.outer.Digest, f.nested.Digest, f.arm64.Digest}
				not = f.blobs[f.arm64.Digest][1:3]
			case "referrers":
				want = append([]digest.Digest{f.outer.Digest}, f.blobs[f.referrer.Digest]...)
			}
			for _, d := range want {
				s := log.states[d]
				if len(s) != 2 || s[0] != copy.Expected || s[1] == copy.Expected {
					t.Errorf("%s: reports %v, want Expected then one end", d, s)
				}
			}
			for _, d := range not {
				if s := log.states[d]; len(s) != 0 {
					t.Errorf("%s: reports %v, want none", d, s)
				}
			}
			for d, s := range log.states {
				if s[0] != copy.Expected || len(s) != 2 {
					t.Errorf("%s: reports %v, want Expected then one end", d, s)
				}
			}
		})
	}
}

// resolveCounter counts the resolves of a source.
type resolveCounter struct {
	copy.Source
	mu sync.Mutex
	n  int
}

func (r *resolveCounter) Resolve(ctx context.Context, ref string) (ocispec.Descriptor, error) {
	r.mu.Lock()
	r.n++
	r.mu.Unlock()
	return r.Source.Resolve(ctx, ref)
}

// CopyRoot copies from a root the caller resolved, without resolving it again (one request
// less from a registry); Copy resolves once.
func TestCopyRoot(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	src := &resolveCounter{Source: f.l}
	root, err := src.Resolve(ctx, "multi")
	if err != nil {
		t.Fatal(err)
	}
	dst := newLayout(t, "dst")
	got, err := copy.CopyRoot(ctx, src, root, dst, "a", copy.Options{Platform: &ocispec.Platform{OS: "linux", Architecture: "arm64"}})
	if err != nil || got.Digest != f.arm64.Digest || src.n != 1 {
		t.Fatalf("CopyRoot = %s, %v after %d resolves; want %s after 1", got.Digest, err, src.n, f.arm64.Digest)
	}
	if d, err := dst.Resolve(ctx, "a"); err != nil || d.Digest != f.arm64.Digest {
		t.Fatalf("tag a = %s, %v", d.Digest, err)
	}
	src.n = 0
	if _, err := copy.Copy(ctx, src, "multi", dst, "b", copy.Options{AllPlatforms: true}); err != nil || src.n != 1 {
		t.Fatalf("Copy: %v after %d resolves; want 1", err, src.n)
	}
	if _, err := copy.CopyRoot(ctx, src, root, dst, "c", copy.Options{AllPlatforms: true, Platform: &ocispec.Platform{OS: "linux", Architecture: "arm64"}}); err == nil {
		t.Fatal("CopyRoot with a platform and all platforms: no error")
	}
}
