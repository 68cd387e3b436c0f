//go:build integration

package runtime

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharfoci/wharf/internal/testutil"
)

// The peer scripts drive wharf-runtime the way containerd's runc shim and podman's conmon do;
// every step must pass.
func TestPeerDropins(t *testing.T) {
	bin := rtBin(t)
	for _, tc := range []struct{ name, script, bin string }{
		{"containerd", "containerd-dropin.sh", "containerd"},
		{"podman", "podman-dropin.sh", "podman"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := exec.LookPath(tc.bin)
			need(t, tc.bin, err)
			cmd := exec.Command(filepath.Join(testutil.Shared(t), "peers", "runtime", tc.script), bin)
			out, err := cmd.CombinedOutput()
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			last := lines[len(lines)-1]
			t.Log(last)
			if err != nil || !strings.Contains(last, "failed=0") {
				t.Fatalf("%s: %v\n%s", tc.script, err, out)
			}
		})
	}
}
