//go:build integration

package registry

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/wharfoci/wharf/internal/testutil"
)

// runScript runs a peers script against the registry and returns its RESULT line.
func runScript(t *testing.T, script string, args ...string) string {
	t.Helper()
	path := filepath.Join(testutil.Shared(t), "peers", "registry", script)
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("WHARF_PEERS") == "1" {
			t.Fatalf("%s missing (WHARF_PEERS=1): %v", path, err)
		}
		t.Skipf("%s missing: %v", path, err)
	}
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), "WORK="+filepath.Join(os.TempDir(), "wharf-test-registry-"+strings.TrimSuffix(script, ".sh")))
	out, err := cmd.CombinedOutput()
	m := regexp.MustCompile(`(?m)^RESULT .*$`).FindAll(out, -1)
	if len(m) == 0 {
		t.Fatalf("%s: no RESULT line (%v):\n%s", script, err, tail(string(out)))
	}
	res := string(m[len(m)-1])
	t.Logf("%s: %s", script, res)
	if err != nil {
		t.Errorf("%s exited with %v:\n%s", script, err, tail(string(out)))
	}
	return res
}

func field(res, key string) string {
	m := regexp.MustCompile(`\b` + key + `=(\S+)`).FindStringSubmatch(res)
	if m == nil {
		return ""
	}
	return m[1]
}

// TestConformance: the OCI distribution-spec conformance suite, every API and data group
// enabled, upload cancel too: 0 failed, 0 skipped.
func TestConformance(t *testing.T) {
	r := startRegistry(t, "")
	t.Setenv("OCI_API_BLOBS_UPLOAD_CANCEL", "true")
	res := runScript(t, "conformance.sh", r.URL)
	if field(res, "fail") != "0" || field(res, "skip") != "0" || field(res, "pass") == "0" {
		t.Fatalf("conformance: %s", res)
	}
}

// TestClients: skopeo, podman, crane and oras push, pull, list, delete, attach and discover.
func TestClients(t *testing.T) {
	r := startRegistry(t, "")
	res := runScript(t, "clients.sh", r.URL)
	if field(res, "failed") != "0" || field(res, "passed") == "0" {
		t.Fatalf("clients: %s", res)
	}
}
