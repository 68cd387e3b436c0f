package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/image/layout"
)

// fixture is a layout made with the libraries: "latest" is a one-layer image for this
// machine's platform; "multi" an index of it and an image for another platform.
type fixture struct {
	dir               string
	manifest, index   ocispec.Descriptor
	otherArch         string
	layer, otherLayer ocispec.Descriptor
	manifestBytes     []byte
	otherManifest     ocispec.Descriptor
}

func pushJSON(t *testing.T, l *layout.Layout, mt string, v any) ocispec.Descriptor {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	d, err := content.PushBytes(context.Background(), l, mt, b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func pushImage(t *testing.T, l *layout.Layout, arch, seed string) (m, layer ocispec.Descriptor) {
	t.Helper()
	ctx := context.Background()
	layer, err := content.PushBytes(ctx, l, ocispec.MediaTypeImageLayer, []byte("layer "+seed))
	if err != nil {
		t.Fatal(err)
	}
	cfg := pushJSON(t, l, ocispec.MediaTypeImageConfig, ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: arch},
		Config:   ocispec.ImageConfig{Env: []string{"PATH=/bin", "SEED=" + seed}, Labels: map[string]string{"seed": seed}},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{layer.Digest}},
	})
	m = pushJSON(t, l, ocispec.MediaTypeImageManifest, ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: []ocispec.Descriptor{layer}})
	return m, layer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{dir: filepath.Join(t.TempDir(), "src"), otherArch: "arm64"}
	if runtime.GOARCH == "arm64" {
		f.otherArch = "amd64"
	}
	l, err := layout.Init(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f.manifest, f.layer = pushImage(t, l, runtime.GOARCH, "host")
	f.otherManifest, f.otherLayer = pushImage(t, l, f.otherArch, "other")
	host, other := f.manifest, f.otherManifest
	host.Platform = &ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	other.Platform = &ocispec.Platform{OS: "linux", Architecture: f.otherArch}
	f.index = pushJSON(t, l, ocispec.MediaTypeImageIndex, ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{host, other}})
	if err := l.Tag(ctx, f.manifest, "latest"); err != nil {
		t.Fatal(err)
	}
	if err := l.Tag(ctx, f.index, "multi"); err != nil {
		t.Fatal(err)
	}
	if f.manifestBytes, err = content.ReadAll(ctx, l, f.manifest, 0); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) blobPath(d digest.Digest) string {
	return filepath.Join(f.dir, "blobs", d.Algorithm().String(), d.Encoded())
}

func TestInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new")
	mustRun(t, "init", "oci:"+dir)
	mustRun(t, "init", "oci:"+dir) // idempotent
	for _, f := range []string{"oci-layout", "index.json", "blobs"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	notLayout := t.TempDir()
	os.WriteFile(filepath.Join(notLayout, "x"), nil, 0o644)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"with tag", []string{"init", "oci:" + dir + ":v1"}, exitUsage, "without tag"},
		{"not a layout", []string{"init", "oci:" + notLayout}, exitFailure, "not empty"},
		{"no transport", []string{"init", dir}, exitUsage, "TRANSPORT:DETAILS"},
		{"two arguments", []string{"init", "oci:a", "oci:b"}, exitUsage, "needs 1 argument"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := wharfRun(t, tc.args...)
			assertOneLineError(t, code, errs, tc.code, tc.want)
		})
	}
	t.Run("archive", func(t *testing.T) {
		tar := filepath.Join(t.TempDir(), "empty.tar")
		mustRun(t, "init", "oci-archive:"+tar)
		if out := mustRun(t, "ls", "--json", "oci-archive:"+tar); strings.TrimSpace(out) != "[]" {
			t.Fatalf("ls of an empty archive: %q", out)
		}
	})
}

func TestLs(t *testing.T) {
	f := newFixture(t)
	out := mustRun(t, "ls", "oci:"+f.dir)
	for _, want := range []string{"TAG", "latest", "multi", f.manifest.Digest.String(), f.index.Digest.String(), ocispec.MediaTypeImageIndex} {
		if !strings.Contains(out, want) {
			t.Errorf("ls output lacks %q:\n%s", want, out)
		}
	}
	var entries []lsEntry
	if err := json.Unmarshal([]byte(mustRun(t, "ls", "--json", "oci:"+f.dir)), &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].Tag != "latest" || entries[0].Digest != f.manifest.Digest || entries[1].Tag != "multi" {
		t.Fatalf("ls --json = %+v", entries)
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"missing layout", []string{"ls", "oci:" + filepath.Join(f.dir, "nope")}, exitNotFound, "not found"},
		{"with tag", []string{"ls", "oci:" + f.dir + ":latest"}, exitUsage, "without tag"},
		{"not a layout", []string{"ls", "oci:" + t.TempDir()}, exitNotFound, "oci-layout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := wharfRun(t, tc.args...)
			assertOneLineError(t, code, errs, tc.code, tc.want)
		})
	}
}

func TestInspect(t *testing.T) {
	f := newFixture(t)
	inspect := func(t *testing.T, args ...string) inspectOutput {
		t.Helper()
		var out inspectOutput
		if err := json.Unmarshal([]byte(mustRun(t, append([]string{"inspect"}, args...)...)), &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	t.Run("manifest", func(t *testing.T) {
		out := inspect(t, "oci:"+f.dir+":latest")
		if out.Digest != f.manifest.Digest || out.Architecture != runtime.GOARCH || out.Os != "linux" ||
			len(out.Layers) != 1 || out.Layers[0] != f.layer.Digest || out.LayersData[0].Size != f.layer.Size ||
			out.Labels["seed"] != "host" || len(out.Env) != 2 || len(out.RepoTags) != 1 || out.RepoTags[0] != "latest" {
			t.Fatalf("inspect = %+v", out)
		}
	})
	t.Run("by digest", func(t *testing.T) {
		if out := inspect(t, "oci:"+f.dir+"@"+f.manifest.Digest.String()); out.Digest != f.manifest.Digest {
			t.Fatalf("inspect by digest = %+v", out)
		}
	})
	t.Run("index picks this platform", func(t *testing.T) {
		out := inspect(t, "oci:"+f.dir+":multi")
		if out.Digest != f.index.Digest || out.Architecture != runtime.GOARCH || out.Layers[0] != f.layer.Digest {
			t.Fatalf("inspect = %+v", out)
		}
	})
	t.Run("index with --platform", func(t *testing.T) {
		out := inspect(t, "--platform", "linux/"+f.otherArch, "oci:"+f.dir+":multi")
		if out.Architecture != f.otherArch || out.Layers[0] != f.otherLayer.Digest {
			t.Fatalf("inspect = %+v", out)
		}
	})
	t.Run("raw", func(t *testing.T) {
		if out := mustRun(t, "inspect", "--raw", "oci:"+f.dir+":latest"); out != string(f.manifestBytes) {
			t.Fatalf("inspect --raw = %q", out)
		}
	})
	t.Run("config", func(t *testing.T) {
		var c ocispec.Image
		if err := json.Unmarshal([]byte(mustRun(t, "inspect", "--config", "oci:"+f.dir+":latest")), &c); err != nil {
			t.Fatal(err)
		}
		if c.Architecture != runtime.GOARCH || c.RootFS.DiffIDs[0] != f.layer.Digest {
			t.Fatalf("config = %+v", c)
		}
	})
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"ambiguous layout", []string{"inspect", "oci:" + f.dir}, exitUsage, "holds 2 images"},
		{"unknown tag", []string{"inspect", "oci:" + f.dir + ":nope"}, exitNotFound, "not found"},
		{"unknown platform", []string{"inspect", "--platform", "linux/s390x", "oci:" + f.dir + ":multi"}, exitNotFound, "linux/s390x"},
		{"malformed platform", []string{"inspect", "--platform", "linux", "oci:" + f.dir + ":multi"}, exitUsage, "platform"},
		{"malformed digest", []string{"inspect", "oci:" + f.dir + "@sha256:1234"}, exitUsage, "invalid digest"},
		{"missing argument", []string{"inspect"}, exitUsage, "needs 1 argument"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := wharfRun(t, tc.args...)
			assertOneLineError(t, code, errs, tc.code, tc.want)
		})
	}
}

func TestValidateCmd(t *testing.T) {
	t.Run("valid", func(t *testing.T) {
		f := newFixture(t)
		out := mustRun(t, "validate", "oci:"+f.dir)
		if !strings.Contains(out, "valid: 2 roots, 7 blobs") {
			t.Fatalf("validate = %q", out)
		}
		var res validateOutput
		if err := json.Unmarshal([]byte(mustRun(t, "validate", "--json", "oci:"+f.dir+":multi")), &res); err != nil {
			t.Fatal(err)
		}
		if !res.Valid || res.Indexes != 1 || res.Manifests != 2 || res.Layers != 2 {
			t.Fatalf("validate --json = %+v", res)
		}
	})
	tests := []struct {
		name   string
		break_ func(t *testing.T, f *fixture)
		want   string
	}{
		{"corrupt layer", func(t *testing.T, f *fixture) {
			p := f.blobPath(f.layer.Digest)
			os.Chmod(p, 0o644)
			os.WriteFile(p, []byte("layer HOST"), 0o644)
		}, "(manifest) → " + f0(f0Layer) + " (layer): digest mismatch"},
		{"missing layer", func(t *testing.T, f *fixture) { os.Remove(f.blobPath(f.layer.Digest)) }, "(layer): "},
		{"layer size", func(t *testing.T, f *fixture) {
			p := f.blobPath(f.layer.Digest)
			os.Chmod(p, 0o644)
			os.WriteFile(p, []byte("layer host!"), 0o644)
		}, "size mismatch"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			tc.break_(t, f)
			code, _, errs := wharfRun(t, "validate", "oci:"+f.dir+":latest")
			want := strings.ReplaceAll(tc.want, f0(f0Layer), f.layer.Digest.String())
			assertOneLineError(t, code, errs, exitFailure, "index.json[latest] → "+f.manifest.Digest.String())
			if !strings.Contains(errs, want) {
				t.Fatalf("error %q lacks %q", errs, want)
			}
		})
	}
}

// f0 marks a placeholder replaced by a fixture's digest in a table.
const f0Layer = "LAYER"

func f0(s string) string { return "<" + s + ">" }

func TestCopyCmd(t *testing.T) {
	f := newFixture(t)
	base := t.TempDir()
	ls := func(t *testing.T, image string) []lsEntry {
		t.Helper()
		var e []lsEntry
		if err := json.Unmarshal([]byte(mustRun(t, "ls", "--json", image)), &e); err != nil {
			t.Fatal(err)
		}
		return e
	}
	t.Run("layout to layout", func(t *testing.T) {
		dst := filepath.Join(base, "a")
		mustRun(t, "copy", "oci:"+f.dir+":latest", "oci:"+dst+":v1")
		mustRun(t, "validate", "oci:"+dst+":v1")
		if e := ls(t, "oci:"+dst); len(e) != 1 || e[0].Tag != "v1" || e[0].Digest != f.manifest.Digest {
			t.Fatalf("destination = %+v", e)
		}
		// again: everything is skipped
		var out copyOutput
		if err := json.Unmarshal([]byte(mustRun(t, "copy", "--json", "oci:"+f.dir+":latest", "oci:"+dst+":v2")), &out); err != nil {
			t.Fatal(err)
		}
		if out.Copied != 0 || out.Skipped == 0 || out.Descriptor.Digest != f.manifest.Digest {
			t.Fatalf("second copy = %+v", out)
		}
	})
	t.Run("destination tag defaults to source tag", func(t *testing.T) {
		dst := filepath.Join(base, "b")
		mustRun(t, "copy", "oci:"+f.dir+":latest", "oci:"+dst)
		if e := ls(t, "oci:"+dst); len(e) != 1 || e[0].Tag != "latest" {
			t.Fatalf("destination = %+v", e)
		}
	})
	t.Run("index: this platform by default", func(t *testing.T) {
		dst := filepath.Join(base, "c")
		mustRun(t, "copy", "oci:"+f.dir+":multi", "oci:"+dst+":x")
		if e := ls(t, "oci:"+dst); len(e) != 1 || e[0].Digest != f.manifest.Digest {
			t.Fatalf("destination = %+v", e)
		}
	})
	t.Run("index: --platform", func(t *testing.T) {
		dst := filepath.Join(base, "d")
		mustRun(t, "copy", "--platform", "linux/"+f.otherArch, "oci:"+f.dir+":multi", "oci:"+dst+":x")
		if e := ls(t, "oci:"+dst); len(e) != 1 || e[0].Digest != f.otherManifest.Digest {
			t.Fatalf("destination = %+v", e)
		}
	})
	t.Run("index: --all through an archive", func(t *testing.T) {
		tar := filepath.Join(base, "multi.tar")
		mustRun(t, "--quiet", "copy", "--all", "oci:"+f.dir+":multi", "oci-archive:"+tar+":m")
		mustRun(t, "validate", "oci-archive:"+tar+":m")
		dst := filepath.Join(base, "e")
		mustRun(t, "copy", "--all", "oci-archive:"+tar, "oci:"+dst)
		if e := ls(t, "oci:"+dst); len(e) != 1 || e[0].Digest != f.index.Digest || e[0].Tag != "m" {
			t.Fatalf("destination = %+v", e)
		}
		mustRun(t, "validate", "oci:"+dst)
	})
	t.Run("progress lines", func(t *testing.T) {
		code, _, errs := wharfRun(t, "copy", "oci:"+f.dir+":latest", "oci:"+filepath.Join(base, "f"))
		if code != 0 || !strings.Contains(errs, "copied  layer") || !strings.Contains(errs, "copied oci:") {
			t.Fatalf("exit %d, stderr %q", code, errs)
		}
		code, _, errs = wharfRun(t, "--quiet", "copy", "oci:"+f.dir+":latest", "oci:"+filepath.Join(base, "g"))
		if code != 0 || errs != "" {
			t.Fatalf("--quiet: exit %d, stderr %q", code, errs)
		}
	})
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"all and platform", []string{"copy", "--all", "--platform", "linux/amd64", "oci:" + f.dir + ":multi", "oci:" + base + "/x"}, exitUsage, "all"},
		{"destination digest", []string{"copy", "oci:" + f.dir + ":latest", "oci:" + base + "/x@" + f.manifest.Digest.String()}, exitUsage, "not a digest"},
		{"missing source", []string{"copy", "oci:" + base + "/nope:latest", "oci:" + base + "/x"}, exitNotFound, "not found"},
		{"one argument", []string{"copy", "oci:" + f.dir}, exitUsage, "needs 2 arguments"},
		{"bad jobs", []string{"copy", "--jobs", "0", "oci:" + f.dir + ":latest", "oci:" + base + "/x"}, exitUsage, "--jobs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := wharfRun(t, tc.args...)
			assertOneLineError(t, code, errs, tc.code, tc.want)
		})
	}
}

func TestTagUntagGC(t *testing.T) {
	f := newFixture(t)
	img := "oci:" + f.dir
	mustRun(t, "tag", img+":latest", "v1")
	mustRun(t, "tag", img+"@"+f.otherManifest.Digest.String(), "other")
	var res tagResult
	if err := json.Unmarshal([]byte(mustRun(t, "tag", "--json", img+":latest", "example.com/app:v2")), &res); err != nil || res.Digest != f.manifest.Digest.String() {
		t.Fatalf("tag --json = %+v, %v", res, err)
	}
	out := mustRun(t, "ls", img)
	for _, want := range []string{"v1", "other", "example.com/app:v2"} {
		if !strings.Contains(out, want) {
			t.Errorf("ls lacks %q:\n%s", want, out)
		}
	}
	for _, tag := range []string{"multi", "other"} {
		mustRun(t, "untag", img+":"+tag)
	}
	code, _, errs := wharfRun(t, "--json", "gc", "--dry-run", img)
	if code != 0 {
		t.Fatalf("gc --dry-run: %s", errs)
	}
	if _, err := os.Stat(f.blobPath(f.otherLayer.Digest)); err != nil {
		t.Fatal("dry run removed a blob")
	}
	mustRun(t, "gc", img)
	if _, err := os.Stat(f.blobPath(f.otherLayer.Digest)); !os.IsNotExist(err) {
		t.Fatalf("gc kept the unreferenced layer: %v", err)
	}
	if _, err := os.Stat(f.blobPath(f.layer.Digest)); err != nil {
		t.Fatalf("gc removed a referenced layer: %v", err)
	}
	mustRun(t, "validate", img)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"bad new tag", []string{"tag", img + ":latest", "bad tag"}, exitUsage, "not allowed"},
		{"untag unknown", []string{"untag", img + ":nope"}, exitNotFound, "not found"},
		{"untag without tag", []string{"untag", img}, exitUsage, "name the tag"},
		{"tag unknown source", []string{"tag", img + ":nope", "x"}, exitNotFound, "not found"},
		{"gc with tag", []string{"gc", img + ":latest"}, exitUsage, "without tag"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := wharfRun(t, tc.args...)
			assertOneLineError(t, code, errs, tc.code, tc.want)
		})
	}
}

func TestCopyInterrupted(t *testing.T) {
	f := newFixture(t)
	dst := filepath.Join(t.TempDir(), "dst")
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // as if SIGINT arrived before the copy finished
	var out, errb strings.Builder
	code := run(ctx, []string{"copy", "oci:" + f.dir + ":latest", "oci:" + dst + ":v1"}, &out, &errb)
	if code != exitInterrupted {
		t.Fatalf("exit %d, want %d (stderr %q)", code, exitInterrupted, errb.String())
	}
	if b, err := os.ReadFile(filepath.Join(dst, "index.json")); err == nil && strings.Contains(string(b), `"v1"`) {
		t.Fatalf("an interrupted copy tagged the destination: %s", b)
	}
}
