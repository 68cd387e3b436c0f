package artifact

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/image/layout"
)

func newLayout(t *testing.T) *layout.Layout {
	t.Helper()
	l, err := layout.Init(filepath.Join(t.TempDir(), "layout"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func readManifest(t *testing.T, l *layout.Layout, d ocispec.Descriptor) ocispec.Manifest {
	t.Helper()
	b, err := content.ReadAll(context.Background(), l, d, 0)
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestParseFile(t *testing.T) {
	for in, want := range map[string]File{
		"a.txt":                      {Path: "a.txt"},
		"a.txt:text/plain":           {Path: "a.txt", MediaType: "text/plain"},
		"c:/x:application/json":      {Path: "c:/x", MediaType: "application/json"},
		"dir/with:colon":             {Path: "dir/with:colon"},
		"sbom:application/spdx+json": {Path: "sbom", MediaType: "application/spdx+json"},
	} {
		if got := ParseFile(in); got != want {
			t.Errorf("ParseFile(%q) = %+v, want %+v", in, got, want)
		}
	}
}

func TestPushPullRoundTrip(t *testing.T) {
	ctx := context.Background()
	l := newLayout(t)
	src := t.TempDir()
	a := writeFile(t, src, "a.txt", "hello\n")
	b := writeFile(t, src, "sbom.json", `{"sbom":1}`)
	created := time.Unix(0, 0)
	d, err := Push(ctx, l, []File{{Path: a}, {Path: b, MediaType: "application/spdx+json"}},
		Options{ArtifactType: "application/vnd.example.sbom", Annotations: map[string]string{"k": "v"}, Created: created}, "sbom")
	if err != nil {
		t.Fatal(err)
	}
	if d.ArtifactType != "application/vnd.example.sbom" || d.MediaType != ocispec.MediaTypeImageManifest {
		t.Fatalf("descriptor %+v", d)
	}
	m := readManifest(t, l, d)
	if m.Config.Digest != ocispec.DescriptorEmptyJSON.Digest || len(m.Layers) != 2 ||
		m.Layers[0].MediaType != DefaultFileMediaType || m.Layers[0].Annotations[ocispec.AnnotationTitle] != "a.txt" ||
		m.Layers[1].MediaType != "application/spdx+json" || m.Annotations["k"] != "v" ||
		m.Annotations[ocispec.AnnotationCreated] != "1970-01-01T00:00:00Z" {
		t.Fatalf("manifest %+v", m)
	}
	// the same files and options give the same digest (created is fixed)
	d2, err := Push(ctx, l, []File{{Path: a}, {Path: b, MediaType: "application/spdx+json"}},
		Options{ArtifactType: "application/vnd.example.sbom", Annotations: map[string]string{"k": "v"}, Created: created}, "")
	if err != nil || d2.Digest != d.Digest {
		t.Fatalf("second push: %v, %s want %s", err, d2.Digest, d.Digest)
	}
	got, err := l.Resolve(ctx, "sbom")
	if err != nil || got.Digest != d.Digest {
		t.Fatalf("tag sbom: %v %v", got, err)
	}
	out := filepath.Join(t.TempDir(), "out")
	files, err := Pull(ctx, l, d, out)
	if err != nil || len(files) != 2 {
		t.Fatalf("pull: %v %v", files, err)
	}
	for name, want := range map[string]string{"a.txt": "hello\n", "sbom.json": `{"sbom":1}`} {
		if b, err := os.ReadFile(filepath.Join(out, name)); err != nil || string(b) != want {
			t.Fatalf("%s: %q %v", name, b, err)
		}
	}
	// pulling again replaces the files
	if _, err := Pull(ctx, l, d, out); err != nil {
		t.Fatal(err)
	}
}

func TestPushDefaultsAndAttach(t *testing.T) {
	ctx := context.Background()
	l := newLayout(t)
	subject, err := Push(ctx, l, nil, Options{}, "base")
	if err != nil {
		t.Fatal(err)
	}
	m := readManifest(t, l, subject)
	if m.ArtifactType != DefaultArtifactType || len(m.Layers) != 1 || m.Layers[0].Digest != ocispec.DescriptorEmptyJSON.Digest {
		t.Fatalf("an artifact without files: %+v", m)
	}
	src := t.TempDir()
	sig := writeFile(t, src, "sig", "signed")
	ref, err := Push(ctx, l, []File{{Path: sig}}, Options{ArtifactType: "application/vnd.example.sig",
		Subject: &ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}, ListUntagged: true}, "")
	if err != nil {
		t.Fatal(err)
	}
	refs, err := Referrers(ctx, l, subject, "")
	if err != nil || len(refs) != 1 || refs[0].Digest != ref.Digest || refs[0].ArtifactType != "application/vnd.example.sig" {
		t.Fatalf("referrers %+v %v", refs, err)
	}
	if refs, err := Referrers(ctx, l, subject, "application/other"); err != nil || len(refs) != 0 {
		t.Fatalf("referrers of another type %+v %v", refs, err)
	}
	// listed untagged in index.json, so that it survives gc and oras sees it
	entries, err := l.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range entries {
		found = found || (e.Descriptor.Digest == ref.Digest && e.Name == "")
	}
	if !found {
		t.Fatalf("attached artifact not listed untagged in index.json: %+v", entries)
	}
}

func TestPushRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	l := newLayout(t)
	src := t.TempDir()
	a := writeFile(t, src, "a.txt", "a")
	sub := filepath.Join(src, "sub")
	os.Mkdir(sub, 0o755)
	b := writeFile(t, sub, "a.txt", "b")
	for name, tc := range map[string]struct {
		files []File
		o     Options
		want  string
	}{
		"bad artifact type": {nil, Options{ArtifactType: "not a type"}, "not a media type"},
		"bad media type":    {[]File{{Path: a, MediaType: "text"}}, Options{}, "not a media type"},
		"a directory":       {[]File{{Path: sub}}, Options{}, "not a regular file"},
		"missing file":      {[]File{{Path: filepath.Join(src, "nope")}}, Options{}, "no such file"},
		"same title twice":  {[]File{{Path: a}, {Path: b}}, Options{}, "both would be named"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Push(ctx, l, tc.files, tc.o, "x"); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("push: %v, want %q", err, tc.want)
			}
			if _, err := l.Resolve(ctx, "x"); !errors.Is(err, errdef.ErrNotFound) {
				t.Fatalf("a refused push tagged something: %v", err)
			}
		})
	}
}

// pushManifest stores a hand-made manifest whose layers carry the given titles (each layer's
// content is its title; the title "-" means no title annotation), for the hostile pull cases.
func pushManifest(t *testing.T, l *layout.Layout, titles ...string) ocispec.Descriptor {
	t.Helper()
	ctx := context.Background()
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		ArtifactType: "application/vnd.example", Config: ocispec.DescriptorEmptyJSON}
	if err := l.Push(ctx, ocispec.DescriptorEmptyJSON, strings.NewReader("{}")); err != nil {
		t.Fatal(err)
	}
	for _, title := range titles {
		body := "content of " + title
		d := ocispec.Descriptor{MediaType: DefaultFileMediaType, Digest: digest.FromString(body), Size: int64(len(body)),
			Annotations: map[string]string{ocispec.AnnotationTitle: title}}
		if title == "-" {
			d.Annotations = nil
		}
		if err := l.Push(ctx, d, strings.NewReader(body)); err != nil {
			t.Fatal(err)
		}
		m.Layers = append(m.Layers, d)
	}
	b, _ := json.Marshal(m)
	d := ocispec.Descriptor{MediaType: m.MediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
	if err := l.Push(ctx, d, strings.NewReader(string(b))); err != nil {
		t.Fatal(err)
	}
	return d
}

// Hostile titles: nothing is written outside the output directory, and each case is an error
// (or, for a nested title, a file inside).
func TestPullConfinesTitles(t *testing.T) {
	ctx := context.Background()
	l := newLayout(t)
	base := t.TempDir()
	canary := filepath.Join(base, "canary")
	os.Mkdir(canary, 0o755)
	out := filepath.Join(base, "out")
	os.Mkdir(out, 0o755)
	// a symlink inside out pointing at the canary directory, and one at a canary file
	os.Symlink(canary, filepath.Join(out, "link"))
	writeFile(t, canary, "victim", "untouched")
	os.Symlink(filepath.Join(canary, "victim"), filepath.Join(out, "victim"))
	os.Mkdir(filepath.Join(out, "adir"), 0o755)
	for _, tc := range []struct {
		title string
		want  string // error text; "" = written inside out
		at    string // where it lands, when written
	}{
		{"../escape", "climbs out", ""},
		{"a/../../escape", "climbs out", ""},
		{"/etc/escape", "absolute", ""},
		{"", "empty", ""},
		{".", "the directory itself", ""},
		{"x\x00y", "NUL", ""},
		{"adir", "a directory is there", ""},
		{"link/inside", "", strings.TrimPrefix(canary, "/") + "/inside"}, // link → /…/canary resolves beneath out
		{"victim", "", "victim"},                                         // the symlink itself is replaced, not its target
		{"nested/dir/file", "", "nested/dir/file"},
	} {
		t.Run(strings.ReplaceAll(tc.title, "/", "_"), func(t *testing.T) {
			d := pushManifest(t, l, tc.title)
			_, err := Pull(ctx, l, d, out)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("pull of title %q: %v, want %q", tc.title, err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("pull of title %q: %v", tc.title, err)
			}
			var got []byte
			root, _ := os.OpenRoot(out)
			defer root.Close()
			if got, err = root.ReadFile(tc.at); err != nil || string(got) != "content of "+tc.title {
				t.Fatalf("%s inside out: %q %v", tc.at, got, err)
			}
		})
	}
	entries, _ := os.ReadDir(canary)
	if len(entries) != 1 {
		t.Fatalf("the canary directory changed: %v", entries)
	}
	if b, _ := os.ReadFile(filepath.Join(canary, "victim")); string(b) != "untouched" {
		t.Fatalf("the canary file changed: %q", b)
	}
	if _, err := os.Lstat(filepath.Join(base, "escape")); err == nil {
		t.Fatal("a file escaped the output directory")
	}
}

func TestPullRefusesBadContent(t *testing.T) {
	ctx := context.Background()
	l := newLayout(t)
	d := pushManifest(t, l, "f")
	m := readManifest(t, l, d)
	// the layer's bytes on disk no longer match its digest
	p := filepath.Join(l.Root(), "blobs", "sha256", m.Layers[0].Digest.Encoded())
	os.Chmod(p, 0o644)
	if err := os.WriteFile(p, []byte("content of X"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if _, err := Pull(ctx, l, d, out); !errors.Is(err, errdef.ErrDigestMismatch) {
		t.Fatalf("pull of a corrupt blob: %v", err)
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Fatalf("a failed pull left %v", entries)
	}
	// no titled layer at all
	d = pushManifest(t, l, "-")
	if _, err := Pull(ctx, l, d, out); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("pull of an artifact without titles: %v", err)
	}
	// two layers with the same title
	d = pushManifest(t, l, "same", "./same")
	if _, err := Pull(ctx, l, d, out); err == nil || !strings.Contains(err.Error(), "another layer") {
		t.Fatalf("pull of duplicate titles: %v", err)
	}
}
