//go:build integration

package client

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/wharfoci/wharf/distribution/server/servertest"
	"github.com/wharfoci/wharf/internal/testutil"
)

// `wharf serve` with token authorization, used by the real clients the way they use
// distribution behind docker_auth: skopeo, oras and wharf get tokens from the token service
// with their credentials; what a user may not do is refused.
func TestServeWithTokenAuth(t *testing.T) {
	w := testutil.Bin(t, "wharf")
	skopeo := testutil.Peer(t, "skopeo")
	oras := testutil.Peer(t, "oras")
	ts := servertest.StartTokenService(t, map[string]servertest.TokenUser{
		"alice": {Password: "s3cret", Allow: map[string][]string{"repository:team/app": {"pull", "push"}, "registry:catalog": {"*"}}},
		"bob":   {Password: "hunter2", Allow: map[string][]string{"repository:team/app": {"pull"}}},
	})
	host := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	srv := exec.Command(w, "serve", "--addr", host, "--root", t.TempDir(), "--auth-token-realm", ts.Realm,
		"--auth-token-service", ts.Service, "--auth-token-issuer", ts.Issuer, "--auth-token-rootcertbundle", ts.RootCertBundle)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Signal(syscall.SIGTERM); srv.Wait() })
	waitV2(t, host)
	src := testImage(t, "busybox")
	want := rootDigest(t, src, "latest")
	home := t.TempDir()
	anon := []string{"HOME=" + home, "DOCKER_CONFIG=" + filepath.Join(home, ".docker"), "REGISTRY_AUTH_FILE=" + filepath.Join(home, "auth.json"), "XDG_RUNTIME_DIR=" + home}

	// skopeo pushes as alice; bob may not push; nobody anonymous may read
	run(t, anon, skopeo, "copy", "--dest-tls-verify=false", "--dest-creds", "alice:s3cret", "oci:"+src+":latest", "docker://"+host+"/team/app:v1")
	if out, err := runErr(anon, skopeo, "copy", "--dest-tls-verify=false", "--dest-creds", "bob:hunter2", "oci:"+src+":latest", "docker://"+host+"/team/app:v2"); err == nil {
		t.Fatalf("bob pushed:\n%s", out)
	}
	if out, err := runErr(anon, w, "inspect", "docker://"+host+"/team/app:v1"); err == nil || !strings.Contains(out, "unauthorized") {
		t.Fatalf("anonymous inspect: %v\n%s", err, out)
	}
	// wharf logs in as bob and pulls what skopeo pushed
	run(t, anon, w, "login", "-u", "bob", "-p", "hunter2", host)
	dst := filepath.Join(t.TempDir(), "pulled")
	run(t, anon, w, "copy", "-q", "docker://"+host+"/team/app:v1", "oci:"+dst+":v1")
	if got := rootDigest(t, dst, "v1"); got != want {
		t.Fatalf("pulled %s, want %s", got, want)
	}
	if out, err := runErr(anon, w, "catalog", host); err == nil {
		t.Fatalf("bob listed the catalog:\n%s", out)
	}
	// oras attaches as alice; alice lists the catalog
	f := filepath.Join(t.TempDir(), "sig")
	os.WriteFile(f, []byte("sig"), 0o644)
	run(t, anon, oras, "attach", "--plain-http", "--disable-path-validation", "-u", "alice", "-p", "s3cret", "--artifact-type", "application/vnd.example.sig",
		host+"/team/app:v1", f)
	run(t, anon, w, "login", "-u", "alice", "-p", "s3cret", host)
	if out := run(t, anon, w, "catalog", host); out != "team/app\n" {
		t.Fatalf("catalog as alice: %q", out)
	}
	if out := run(t, anon, w, "artifact", "discover", "-q", "docker://"+host+"/team/app:v1"); !strings.Contains(out, "application/vnd.example.sig") {
		t.Fatalf("discover as alice:\n%s", out)
	}
}
