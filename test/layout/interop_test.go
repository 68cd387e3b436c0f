//go:build integration

package layout

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/image"
	"github.com/wharfoci/wharf/image/copy"
	"github.com/wharfoci/wharf/image/layout"

	"github.com/wharfoci/wharf/internal/testutil"
)

// need returns the path of a peer, failing under WHARF_PEERS=1 and skipping otherwise.
func need(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("WHARF_PEERS") == "1" {
			t.Fatalf("peer %s missing (WHARF_PEERS=1): %v", name, err)
		}
		t.Skipf("peer %s missing: %v", name, err)
	}
	return p
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Peer-made layouts are built once per test binary.
var (
	fixtures     sync.Map // name → dir
	fixturesDir  string
	fixturesOnce sync.Once
)

func fixture(t *testing.T, name string) string {
	t.Helper()
	fixturesOnce.Do(func() {
		d, err := os.MkdirTemp("", "wharf-test-layout-")
		if err != nil {
			t.Fatal(err)
		}
		fixturesDir = d
	})
	if d, ok := fixtures.Load(name); ok {
		return d.(string)
	}
	need(t, "umoci")
	need(t, "skopeo")
	dir := filepath.Join(fixturesDir, name)
	switch name {
	case "umoci":
		dir = testutil.UmociImage(t)
	case "skopeo":
		run(t, "skopeo", "copy", "--quiet", "oci:"+fixture(t, "umoci")+":latest", "oci:"+dir+":latest")
	case "multiarch":
		dir = testutil.Image(t, "multiarch")
	default:
		t.Fatalf("no fixture %s", name)
	}
	fixtures.Store(name, dir)
	return dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixturesDir != "" {
		os.RemoveAll(fixturesDir)
	}
	os.Exit(code)
}

// walk reads every blob reachable from d with verification and returns how many it read.
func walk(ctx context.Context, t *testing.T, s content.Fetcher, d ocispec.Descriptor) int {
	t.Helper()
	if !image.IsManifest(d.MediaType) && !image.IsIndex(d.MediaType) {
		rc, err := s.Fetch(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		if _, err := io.Copy(io.Discard, content.NewVerifyReader(rc, d)); err != nil {
			t.Fatalf("blob %s: %v", d.Digest, err)
		}
		return 1
	}
	b, err := content.ReadAll(ctx, s, d, 0)
	if err != nil {
		t.Fatal(err)
	}
	kids, err := image.Children(d, b)
	if err != nil {
		t.Fatalf("%s: %v", d.Digest, err)
	}
	n := 1
	for _, k := range kids {
		n += walk(ctx, t, s, k)
	}
	return n
}

func TestReadPeerLayouts(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		blobs  int
		rootMT string
	}{
		{"umoci", 3, ocispec.MediaTypeImageManifest},
		{"skopeo", 3, ocispec.MediaTypeImageManifest},
		{"multiarch", 7, ocispec.MediaTypeImageIndex},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := layout.Open(fixture(t, tc.name))
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			d, err := l.Resolve(ctx, "latest")
			if err != nil {
				t.Fatal(err)
			}
			if d.MediaType != tc.rootMT {
				t.Fatalf("latest is a %s", d.MediaType)
			}
			if n := walk(ctx, t, l, d); n != tc.blobs {
				t.Errorf("graph has %d blobs, want %d", n, tc.blobs)
			}
			list, err := l.List(ctx)
			if err != nil || len(list) != 1 || list[0].Name != "latest" {
				t.Fatalf("list = %+v, %v", list, err)
			}
		})
	}
}

// TestCopyPeerLayouts copies each peer-made layout with wharf, then has the peers read the
// copy: umoci unpacks it, skopeo copies it (all platforms) to a fresh layout.
func TestCopyPeerLayouts(t *testing.T) {
	ctx := context.Background()
	need(t, "umoci")
	need(t, "skopeo")
	host := image.DefaultPlatform()
	for _, tc := range []struct {
		name   string
		opts   copy.Options
		unpack bool // umoci 0.4 can not read nested indexes
		all    bool
	}{
		{name: "umoci", unpack: true},
		{name: "skopeo", unpack: true},
		{name: "multiarch", opts: copy.Options{AllPlatforms: true}, all: true},
		{name: "multiarch", opts: copy.Options{Platform: &host}, unpack: true},
		{name: "multiarch", opts: copy.Options{Platform: &ocispec.Platform{OS: "linux", Architecture: otherArch()}}},
	} {
		label := tc.name
		if tc.opts.Platform != nil {
			label += "-" + tc.opts.Platform.Architecture
		}
		if tc.all {
			label += "-all"
		}
		t.Run(label, func(t *testing.T) {
			src, err := layout.Open(fixture(t, tc.name))
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			dir := filepath.Join(t.TempDir(), "dst")
			dst, err := layout.Init(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer dst.Close()
			root, err := copy.Copy(ctx, src, "latest", dst, "copied", tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if tc.all != image.IsIndex(root.MediaType) {
				t.Fatalf("copied a %s", root.MediaType)
			}
			walk(ctx, t, dst, root)
			if tc.unpack {
				bundle := filepath.Join(t.TempDir(), "bundle")
				run(t, "umoci", "unpack", "--image", dir+":copied", bundle)
				if _, err := os.Stat(filepath.Join(bundle, "rootfs", "bin", "busybox")); err != nil {
					t.Fatalf("umoci unpack of wharf's copy: %v", err)
				}
			}
			out := filepath.Join(t.TempDir(), "skopeo-out")
			run(t, "skopeo", "copy", "--quiet", "--all", "oci:"+dir+":copied", "oci:"+out+":again")
			again, err := layout.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer again.Close()
			if d, err := again.Resolve(ctx, "again"); err != nil || d.Digest != root.Digest {
				t.Fatalf("skopeo's copy of wharf's copy: %v %v (want %s)", d.Digest, err, root.Digest)
			}
		})
	}
}

func otherArch() string {
	if runtime.GOARCH == "arm64" {
		return "amd64"
	}
	return "arm64"
}

// TestArchiveInterop: skopeo reads the oci-archive wharf writes, and wharf reads skopeo's.
func TestArchiveInterop(t *testing.T) {
	ctx := context.Background()
	need(t, "skopeo")
	src, err := layout.Open(fixture(t, "multiarch"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	tmp := t.TempDir()

	file := filepath.Join(tmp, "wharf.tar")
	a, err := layout.OpenArchive(ctx, file, layout.ArchiveOptions{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	root, err := copy.Copy(ctx, src, "latest", a, "v1", copy.Options{AllPlatforms: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Save(ctx); err != nil {
		t.Fatal(err)
	}
	a.Close()
	out := filepath.Join(tmp, "from-archive")
	run(t, "skopeo", "copy", "--quiet", "--all", "oci-archive:"+file+":v1", "oci:"+out+":v1")
	l, err := layout.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := l.Resolve(ctx, "v1"); err != nil || d.Digest != root.Digest {
		t.Fatalf("skopeo read of wharf's archive: %v %v", d.Digest, err)
	}
	l.Close()

	skopeoFile := filepath.Join(tmp, "skopeo.tar")
	run(t, "skopeo", "copy", "--quiet", "--all", "oci:"+fixture(t, "multiarch")+":latest", "oci-archive:"+skopeoFile+":latest")
	b, err := layout.OpenArchive(ctx, skopeoFile, layout.ArchiveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	dst, err := layout.Init(filepath.Join(tmp, "dst"))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	got, err := copy.Copy(ctx, b, "latest", dst, "x", copy.Options{AllPlatforms: true})
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != root.Digest {
		t.Fatalf("copy from skopeo's archive gave %s, want %s", got.Digest, root.Digest)
	}
	walk(ctx, t, dst, got)
}

// TestGCPeerLayout: GC of a umoci layout keeps the image umoci needs.
func TestGCPeerLayout(t *testing.T) {
	ctx := context.Background()
	need(t, "umoci")
	dir := filepath.Join(t.TempDir(), "l")
	run(t, "cp", "-a", fixture(t, "umoci"), dir)
	l, err := layout.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	orphan, err := content.PushBytes(ctx, l, "application/octet-stream", []byte("orphan"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := l.GC(ctx, layout.GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Removed) != 1 || res.Removed[0].Digest != orphan.Digest {
		t.Fatalf("GC removed %+v, want only %s", res.Removed, orphan.Digest)
	}
	run(t, "umoci", "unpack", "--image", dir+":latest", filepath.Join(t.TempDir(), "b"))
}

// TestMixedWriters: wharf, skopeo and umoci take turns writing one layout; each sees the
// others' tags, and a wharf GC keeps everything they reach.
func TestMixedWriters(t *testing.T) {
	ctx := context.Background()
	need(t, "umoci")
	need(t, "skopeo")
	dir := filepath.Join(t.TempDir(), "mixed")
	dst, err := layout.Init(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	src, err := layout.Open(fixture(t, "multiarch"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := copy.Copy(ctx, src, "latest", dst, "wharf", copy.Options{AllPlatforms: true}); err != nil {
		t.Fatal(err)
	}
	run(t, "skopeo", "copy", "--quiet", "oci:"+fixture(t, "umoci")+":latest", "oci:"+dir+":skopeo")
	run(t, "umoci", "tag", "--image", dir+":skopeo", "umoci")
	list, err := dst.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, e := range list {
		names[e.Name] = true
	}
	for _, n := range []string{"wharf", "skopeo", "umoci"} {
		if !names[n] {
			t.Errorf("tag %s missing from %+v", n, list)
		}
	}
	if _, err := dst.GC(ctx, layout.GCOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"wharf", "skopeo", "umoci"} {
		d, err := dst.Resolve(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		walk(ctx, t, dst, d)
	}
	run(t, "umoci", "unpack", "--image", dir+":umoci", filepath.Join(t.TempDir(), "b"))
	run(t, "skopeo", "copy", "--quiet", "--all", "oci:"+dir+":wharf", "oci:"+filepath.Join(t.TempDir(), "o")+":x")
}
