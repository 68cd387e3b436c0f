//go:build integration

package layer

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	// runc leaves its init as our child: reap what is orphaned under us.
	unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	os.Exit(m.Run())
}

// TestUnpackMatchesUmoci: wharf unpack and umoci unpack give the same type, mode, owner, size,
// content and link target for every path.
func TestUnpackMatchesUmoci(t *testing.T) {
	need(t, "umoci")
	bin := wharfBin(t)
	images := []string{"busybox", "bookworm", "nodemods"}
	if s := os.Getenv("WHARF_LAYER_IMAGES"); s != "" {
		images = strings.Fields(s)
	}
	for _, name := range images {
		t.Run(name, func(t *testing.T) {
			layout := testImage(t, name)
			tag := "latest"
			work := t.TempDir()
			wb, ub := filepath.Join(work, "wharf"), filepath.Join(work, "umoci")
			run(t, bin, "unpack", "oci:"+layout+":"+tag, wb)
			run(t, "umoci", "unpack", "--image", layout+":"+tag, ub)
			compareTrees(t, name, describe(t, filepath.Join(wb, "rootfs")), describe(t, filepath.Join(ub, "rootfs")))
		})
	}
}

// TestRuncRunsBundle: runc runs a bundle wharf unpacked, config.json untouched but for args.
func TestRuncRunsBundle(t *testing.T) {
	need(t, "umoci", "runc")
	bin := wharfBin(t)
	layout := testImage(t, "busybox")
	b := filepath.Join(t.TempDir(), "bundle")
	run(t, bin, "unpack", "oci:"+layout+":latest", b)
	cfgPath := filepath.Join(b, "config.json")
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	json.Unmarshal(raw, &cfg)
	proc := cfg["process"].(map[string]any)
	proc["args"] = []string{"sh", "-c", "echo hello from $(hostname); id -u"}
	raw, _ = json.Marshal(cfg)
	os.WriteFile(cfgPath, raw, 0644)
	id := "wharf-layer-it-" + filepath.Base(filepath.Dir(b))
	cmd := exec.Command("runc", "--root", filepath.Join(t.TempDir(), "runc"), "run", id)
	cmd.Dir = b
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("runc run: %v\n%s", err, out)
	}
	if got := string(out); !strings.Contains(got, "hello from wharf") || !strings.Contains(got, "\n0\n") {
		t.Errorf("runc output %q", got)
	}
}

// TestUnpackPlatform: --platform picks the manifest of a nested index (make-multiarch.sh).
func TestUnpackPlatform(t *testing.T) {
	need(t, "umoci", "skopeo")
	bin := wharfBin(t)
	layout := testImage(t, "multiarch")
	for _, tc := range []struct{ platform, arch string }{{"linux/arm64", "arm64"}, {"linux/amd64", "amd64"}} {
		t.Run(tc.arch, func(t *testing.T) {
			b := filepath.Join(t.TempDir(), "bundle")
			run(t, bin, "unpack", "--platform", tc.platform, "oci:"+layout+":latest", b)
			raw, err := os.ReadFile(filepath.Join(b, "config.json"))
			if err != nil {
				t.Fatal(err)
			}
			var cfg struct {
				Annotations map[string]string `json:"annotations"`
			}
			json.Unmarshal(raw, &cfg)
			if got := cfg.Annotations["org.opencontainers.image.architecture"]; got != tc.arch {
				t.Errorf("architecture annotation %q, want %q", got, tc.arch)
			}
			if _, err := os.Stat(filepath.Join(b, "rootfs", "bin", "busybox")); err != nil {
				t.Errorf("busybox: %v", err)
			}
		})
	}
}
