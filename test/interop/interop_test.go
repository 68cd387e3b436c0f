//go:build integration

package interop

import (
	"github.com/wharfoci/wharf/internal/testutil"

	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// run runs a command and fails the test if it fails; it returns stdout.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, errs, err := runErr(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout: %s\nstderr: %s", filepath.Base(name), strings.Join(args, " "), err, out, errs)
	}
	return out
}

func runErr(name string, args ...string) (string, string, error) {
	cmd := exec.Command(name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		err = fmt.Errorf("exit %d", ee.ExitCode())
	}
	return out.String(), errb.String(), err
}

// images holds the peer-made layouts, built once per run.
var images struct {
	once   sync.Once
	err    error
	dir    string
	skopeo string // the umoci layout copied by skopeo, tagged "latest"
}

// peerImages returns: a busybox layout written by umoci, the same copied by skopeo, and the
// multi-platform nested index of hack/images.sh (which skopeo reads and umoci cannot).
func peerImages(t *testing.T) (umoci, skopeo, multi string) {
	t.Helper()
	testutil.Need(t, "skopeo", "umoci")
	umoci, multi = testutil.UmociImage(t), testutil.Image(t, "multiarch")
	images.once.Do(func() {
		images.dir, images.err = os.MkdirTemp("", "wharf-interop-")
		if images.err != nil {
			return
		}
		images.skopeo = filepath.Join(images.dir, "skopeo")
		if out, errs, err := runErr("skopeo", "copy", "oci:"+umoci+":latest", "oci:"+images.skopeo+":latest"); err != nil {
			images.err = fmt.Errorf("skopeo copy: %v\n%s%s", err, out, errs)
		}
	})
	if images.err != nil {
		t.Fatalf("build peer images: %v", images.err)
	}
	return umoci, images.skopeo, multi
}

func TestMain(m *testing.M) {
	code := m.Run()
	if images.dir != "" {
		os.RemoveAll(images.dir)
	}
	os.Exit(code)
}

// summary is the part of `inspect` output wharf and skopeo must agree on.
type summary struct {
	Digest       string
	Architecture string
	Os           string
	Layers       []string
	Env          []string
	Labels       map[string]string
}

func inspectSummary(t *testing.T, bin string, args ...string) summary {
	t.Helper()
	var s summary
	out := run(t, bin, append([]string{"inspect"}, args...)...)
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("%s inspect %v: %v\n%s", filepath.Base(bin), args, err, out)
	}
	return s
}

// TestReadPeerLayouts: layouts written by umoci and skopeo, and a nested multi-arch index, are
// read, validated and inspected by wharf as skopeo inspects them.
func TestReadPeerLayouts(t *testing.T) {
	w := testutil.Bin(t, "wharf")
	umoci, skopeo, multi := peerImages(t)
	tests := []struct {
		name, dir string
		blobs     string // "valid: 1 root, N blobs"
	}{
		{"umoci", umoci, "3 blobs"},
		{"skopeo", skopeo, "3 blobs"},
		{"multi-arch nested index", multi, "7 blobs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := "oci:" + tc.dir + ":latest"
			if out := run(t, w, "validate", img); !strings.Contains(out, "valid: 1 root, "+tc.blobs) {
				t.Errorf("wharf validate: %q", out)
			}
			run(t, w, "validate", "oci:"+tc.dir) // the whole layout
			if out := run(t, w, "ls", "oci:"+tc.dir); !strings.Contains(out, "latest") {
				t.Errorf("wharf ls: %q", out)
			}
			got, want := inspectSummary(t, w, img), inspectSummary(t, "skopeo", img)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("wharf inspect disagrees with skopeo inspect:\nwharf:  %+v\nskopeo: %+v", got, want)
			}
			if got.Architecture != runtime.GOARCH {
				t.Errorf("inspect picked %s, want this machine's %s", got.Architecture, runtime.GOARCH)
			}
			raw, sraw := run(t, w, "inspect", "--raw", img), run(t, "skopeo", "inspect", "--raw", img)
			if raw != sraw {
				t.Errorf("inspect --raw differs from skopeo's:\n%s\n%s", raw, sraw)
			}
		})
	}
	t.Run("multi-arch other platform", func(t *testing.T) {
		other := map[string]string{"amd64": "arm64", "arm64": "amd64"}[runtime.GOARCH]
		got := inspectSummary(t, w, "--platform", "linux/"+other, "oci:"+multi+":latest")
		want := inspectSummary(t, "skopeo", "--override-arch", other, "oci:"+multi+":latest")
		if !reflect.DeepEqual(got, want) || got.Architecture != other {
			t.Errorf("--platform linux/%s:\nwharf:  %+v\nskopeo: %+v", other, got, want)
		}
	})
}

// TestPeersReadWharfCopies: what wharf copy writes (from each peer-made layout) validates, is
// unpacked by umoci and copied by skopeo, as a layout and as an oci-archive.
func TestPeersReadWharfCopies(t *testing.T) {
	w := testutil.Bin(t, "wharf")
	umoci, skopeo, multi := peerImages(t)
	tests := []struct {
		name, src string
		copyArgs  []string
		all       bool // the copy is an index: skopeo needs --all; umoci cannot unpack it
	}{
		{name: "from umoci", src: "oci:" + umoci + ":latest"},
		{name: "from skopeo", src: "oci:" + skopeo + ":latest"},
		{name: "multi-arch, this platform", src: "oci:" + multi + ":latest"},
		{name: "multi-arch, --all", src: "oci:" + multi + ":latest", copyArgs: []string{"--all"}, all: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out")
			run(t, w, append(append([]string{"copy"}, tc.copyArgs...), tc.src, "oci:"+out+":v1")...)
			run(t, w, "validate", "oci:"+out+":v1")

			skopeoArgs := []string{"copy"}
			if tc.all {
				skopeoArgs = append(skopeoArgs, "--all")
			}
			run(t, "skopeo", append(skopeoArgs, "oci:"+out+":v1", "oci:"+filepath.Join(dir, "sk")+":v1")...)
			run(t, w, "validate", "oci:"+filepath.Join(dir, "sk")+":v1")
			if got, want := inspectSummary(t, w, "oci:"+out+":v1"), inspectSummary(t, "skopeo", "oci:"+out+":v1"); !reflect.DeepEqual(got, want) {
				t.Errorf("inspect of the copy:\nwharf:  %+v\nskopeo: %+v", got, want)
			}

			// oci-archive: wharf writes, skopeo reads; skopeo writes, wharf reads.
			tar := filepath.Join(dir, "out.tar")
			run(t, w, append(append([]string{"copy"}, tc.copyArgs...), tc.src, "oci-archive:"+tar+":v1")...)
			run(t, w, "validate", "oci-archive:"+tar+":v1")
			run(t, "skopeo", append(skopeoArgs, "oci-archive:"+tar+":v1", "oci:"+filepath.Join(dir, "from-tar")+":v1")...)
			skTar := filepath.Join(dir, "skopeo.tar")
			run(t, "skopeo", append(skopeoArgs, "oci:"+out+":v1", "oci-archive:"+skTar+":v1")...)
			run(t, w, "validate", "oci-archive:"+skTar+":v1")
			run(t, w, append(append([]string{"copy"}, tc.copyArgs...), "oci-archive:"+skTar+":v1", "oci:"+filepath.Join(dir, "back")+":v1")...)
			run(t, w, "validate", "oci:"+filepath.Join(dir, "back")+":v1")

			if tc.all {
				return
			}
			bundle := filepath.Join(dir, "bundle")
			run(t, "umoci", "unpack", "--image", out+":v1", bundle)
			if fi, err := os.Stat(filepath.Join(bundle, "rootfs", "bin", "busybox")); err != nil || fi.Size() == 0 {
				t.Fatalf("umoci unpack of wharf's copy: rootfs/bin/busybox: %v", err)
			}
			if _, err := os.Stat(filepath.Join(bundle, "config.json")); err != nil {
				t.Fatalf("umoci unpack: %v", err)
			}
		})
	}
}

// TestWharfEditsPeerLayout: tag, untag and gc on a layout umoci wrote leave one umoci still reads.
func TestWharfEditsPeerLayout(t *testing.T) {
	w := testutil.Bin(t, "wharf")
	umoci, _, _ := peerImages(t)
	dir := filepath.Join(t.TempDir(), "edit")
	run(t, w, "copy", "oci:"+umoci+":latest", "oci:"+dir+":latest")
	run(t, w, "tag", "oci:"+dir+":latest", "v2")
	run(t, w, "untag", "oci:"+dir+":latest")
	run(t, w, "gc", "oci:"+dir)
	if out := run(t, "umoci", "ls", "--layout", dir); strings.TrimSpace(out) != "v2" {
		t.Fatalf("umoci ls after wharf tag/untag/gc: %q", out)
	}
	run(t, "umoci", "stat", "--image", dir+":v2")
	run(t, w, "validate", "oci:"+dir)
}

// TestReadDockerArchive: the docker-archive skopeo writes (containers/image's, what podman save
// writes) is read by wharf: inspected as skopeo inspects it, copied to a layout that validates
// with the source's config and layers, unpacked to the source's tree, and run.
func TestReadDockerArchive(t *testing.T) {
	w := testutil.Bin(t, "wharf")
	testutil.Need(t, "skopeo")
	src := "oci:" + testutil.Image(t, "busybox") + ":latest"
	dir := t.TempDir()
	arch := filepath.Join(dir, "busybox.tar")
	run(t, "skopeo", "copy", "-q", src, "docker-archive:"+arch+":example.com/tools/busybox:v1")
	img := "docker-archive:" + arch + ":example.com/tools/busybox:v1"
	got, want := inspectSummary(t, w, img), inspectSummary(t, "skopeo", img)
	want.Digest, got.Digest = "", "" // the manifest is made up by each reader
	if !reflect.DeepEqual(got, want) {
		t.Errorf("wharf inspect disagrees with skopeo inspect:\nwharf:  %+v\nskopeo: %+v", got, want)
	}
	if a, b := run(t, w, "inspect", "--config", "--raw", img), run(t, w, "inspect", "--config", "--raw", src); a != b {
		t.Errorf("the archive's config differs from the source's:\n%s\n%s", a, b)
	}
	out := "oci:" + filepath.Join(dir, "out") + ":v1"
	run(t, w, "copy", "-q", "--format", "oci", "docker-archive:"+arch, out) // the only image
	run(t, w, "validate", out)
	for _, name := range []string{"a", "b"} {
		ref := map[string]string{"a": img, "b": src}[name]
		run(t, w, "unpack", "-q", ref, filepath.Join(dir, name))
	}
	// the rootfs directory itself is not in the layer: its mtime is the unpack's
	if a, b := run(t, "sh", "-c", "cd "+dir+"/a/rootfs && find . -mindepth 1 | sort | xargs ls -ld --time-style=+%s"), run(t, "sh", "-c", "cd "+dir+"/b/rootfs && find . -mindepth 1 | sort | xargs ls -ld --time-style=+%s"); a != b {
		t.Errorf("unpacked trees differ:\n%s\n%s", a, b)
	}
	if o := run(t, w, "run", "--state-dir", t.TempDir(), img, "echo", "from a docker-archive"); o != "from a docker-archive\n" {
		t.Errorf("run: %q", o)
	}
	if o, err := exec.Command(w, "copy", src, "docker-archive:"+filepath.Join(dir, "x.tar")).CombinedOutput(); err == nil || !strings.Contains(string(o), "oci-archive") {
		t.Errorf("writing a docker-archive: %v %s", err, o)
	}
}
