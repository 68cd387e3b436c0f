//go:build integration

package client

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharfoci/wharf/internal/testutil"
)

// wharf artifact push/pull/attach/discover against oras, both ways, on wharf's registry, on
// docker-registry (no referrers API: both clients fall back to the referrers tag) and on a
// layout.
func TestArtifactsWithOras(t *testing.T) {
	w := testutil.Bin(t, "wharf")
	oras := testutil.Peer(t, "oras")
	src := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(src, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sbom := write("sbom.json", `{"sbom":1}`)
	sig := write("app.sig", "signature")
	// oras stores paths as given: run it from the files' directory
	orasIn := func(args ...string) string {
		t.Helper()
		cmd := append([]string{"-c", `cd "$0" && exec "$@"`, src, oras}, args...)
		return run(t, nil, "sh", cmd...)
	}
	check := func(t *testing.T, dir, name, want string) {
		t.Helper()
		if b, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(b) != want {
			t.Fatalf("%s/%s: %q %v", dir, name, b, err)
		}
	}
	busybox := testImage(t, "busybox")
	registries := map[string]func(*testing.T) string{"wharf": startWharf, "distribution": startDistribution}
	for name, start := range registries {
		t.Run(name, func(t *testing.T) {
			host := start(t)
			image := host + "/app:v1"
			run(t, nil, w, "copy", "-q", "oci:"+busybox+":latest", "docker://"+image)

			// wharf pushes, oras pulls
			run(t, nil, w, "artifact", "push", "-q", "--artifact-type", "application/vnd.example.sbom", "docker://"+host+"/arts:w", sbom+":application/spdx+json")
			out := t.TempDir()
			run(t, nil, oras, "pull", "--plain-http", "-o", out, host+"/arts:w")
			check(t, out, "sbom.json", `{"sbom":1}`)
			// oras pushes, wharf pulls
			orasIn("push", "--plain-http", "--artifact-type", "application/vnd.example.sig", host+"/arts:o", "app.sig")
			out = t.TempDir()
			run(t, nil, w, "artifact", "pull", "-q", "-o", out, "docker://"+host+"/arts:o")
			check(t, out, "app.sig", "signature")

			// attach both ways; each discovers both
			byWharf := strings.TrimSpace(run(t, nil, w, "artifact", "attach", "-q", "--artifact-type", "application/vnd.example.sig", "docker://"+image, sig))
			orasIn("attach", "--plain-http", "--artifact-type", "application/vnd.example.sbom", image, "sbom.json")
			byOras := run(t, nil, oras, "discover", "--plain-http", "--format", "json", image)
			if !strings.Contains(byOras, byWharf) || !strings.Contains(byOras, "application/vnd.example.sbom") {
				t.Fatalf("oras discover does not list wharf's %s:\n%s", byWharf, byOras)
			}
			listed := run(t, nil, w, "artifact", "discover", "-q", "docker://"+image)
			if !strings.Contains(listed, byWharf) || !strings.Contains(listed, "application/vnd.example.sbom") || strings.Count(listed, "sha256:") != 2 {
				t.Fatalf("wharf discover:\n%s", listed)
			}
			only := run(t, nil, w, "artifact", "discover", "-q", "--artifact-type", "application/vnd.example.sig", "docker://"+image)
			if strings.Count(only, "sha256:") != 1 || !strings.Contains(only, byWharf) {
				t.Fatalf("wharf discover --artifact-type:\n%s", only)
			}
		})
	}
	t.Run("layout", func(t *testing.T) {
		lay := filepath.Join(t.TempDir(), "lay")
		run(t, nil, w, "copy", "-q", "oci:"+busybox+":latest", "oci:"+lay+":v1")
		byWharf := strings.TrimSpace(run(t, nil, w, "artifact", "attach", "-q", "--artifact-type", "application/vnd.example.sig", "oci:"+lay+":v1", sig))
		if out := run(t, nil, oras, "discover", "--oci-layout", "--format", "json", lay+":v1"); !strings.Contains(out, byWharf) {
			t.Fatalf("oras discover --oci-layout does not list %s:\n%s", byWharf, out)
		}
		out := t.TempDir()
		run(t, nil, w, "artifact", "pull", "-q", "-o", out, "oci:"+lay+"@"+byWharf)
		check(t, out, "app.sig", "signature")
		// gc keeps it: it is listed in index.json
		run(t, nil, w, "gc", "-q", "oci:"+lay)
		if out := run(t, nil, w, "artifact", "discover", "-q", "oci:"+lay+":v1"); !strings.Contains(out, byWharf) {
			t.Fatalf("after gc:\n%s", out)
		}
	})
}
