package copy_test

import (
	"context"
	"errors"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/errdef"
	wimage "github.com/wharfoci/wharf/image"
	"github.com/wharfoci/wharf/image/copy"
)

// TestIndex: the members' graphs are copied, the index lists their roots in order with the
// platforms their configs declare, and it is tagged; a nested index keeps no platform.
func TestIndex(t *testing.T) {
	ctx := context.Background()
	src := newLayout(t, "src")
	amd, amdBlobs := image(t, src, "amd64")
	arm, armBlobs := image(t, src, "arm64")
	for _, m := range []ocispec.Descriptor{amd, arm} {
		m.Platform = nil
		if err := src.Tag(ctx, m, m.Digest.String()); err != nil {
			t.Fatal(err)
		}
	}
	dst := newLayout(t, "dst")
	d, err := copy.Index(ctx, dst, "multi", []copy.Member{{Src: src, Ref: amd.Digest.String()}, {Src: src, Ref: arm.Digest.String()}},
		map[string]string{"org.opencontainers.image.description": "two"}, copy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := dst.Resolve(ctx, "multi")
	if err != nil || got.Digest != d.Digest {
		t.Fatalf("multi resolves to %v (%v), want %s", got.Digest, err, d.Digest)
	}
	b, err := content.ReadAll(ctx, dst, d, 0)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := wimage.ParseIndex(d, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 2 || idx.Manifests[0].Digest != amd.Digest || idx.Manifests[1].Digest != arm.Digest {
		t.Fatalf("manifests = %+v", idx.Manifests)
	}
	for i, arch := range []string{"amd64", "arm64"} {
		if p := idx.Manifests[i].Platform; p == nil || p.OS != "linux" || p.Architecture != arch {
			t.Errorf("entry %d platform = %+v, want linux/%s", i, p, arch)
		}
	}
	if idx.Annotations["org.opencontainers.image.description"] != "two" {
		t.Errorf("annotations = %v", idx.Annotations)
	}
	for _, dg := range append(amdBlobs, armBlobs...) {
		if ok, err := dst.Exists(ctx, ocispec.Descriptor{Digest: dg, Size: -1}); err == nil && !ok {
			t.Errorf("blob %s not copied", dg)
		}
	}

	// an index as a member: nested, no platform
	d2, err := copy.Index(ctx, dst, "outer", []copy.Member{{Src: dst, Ref: "multi"}}, nil, copy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = content.ReadAll(ctx, dst, d2, 0)
	outer, err := wimage.ParseIndex(d2, b)
	if err != nil || len(outer.Manifests) != 1 || outer.Manifests[0].Platform != nil || outer.Manifests[0].MediaType != ocispec.MediaTypeImageIndex {
		t.Fatalf("outer = %+v (%v)", outer, err)
	}
}

func TestIndexRefusals(t *testing.T) {
	ctx := context.Background()
	src := newLayout(t, "src")
	amd, _ := image(t, src, "amd64")
	amd.Platform = nil
	if err := src.Tag(ctx, amd, "a"); err != nil {
		t.Fatal(err)
	}
	dst := newLayout(t, "dst")
	for _, tc := range []struct {
		name    string
		members []copy.Member
		want    error
	}{
		{"none", nil, errdef.ErrInvalidArgument},
		{"same platform twice", []copy.Member{{Src: src, Ref: "a"}, {Src: src, Ref: "a"}}, errdef.ErrInvalidArgument},
		{"unknown", []copy.Member{{Src: src, Ref: "nosuch"}}, errdef.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := copy.Index(ctx, dst, "x", tc.members, nil, copy.Options{}); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if _, err := dst.Resolve(ctx, "x"); !errors.Is(err, errdef.ErrNotFound) {
				t.Fatalf("x was tagged: %v", err)
			}
		})
	}
}
