//go:build integration

package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/distribution/client"
	imagecopy "github.com/wharfoci/wharf/image/copy"
	"github.com/wharfoci/wharf/image/layout"
	"github.com/wharfoci/wharf/internal/testutil"
)

func TestMain(m *testing.M) {
	// docker-registry is started by a script that exits: its daemon is reparented to us, and
	// reaped when stopped.
	unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	os.Exit(m.Run())
}

// run runs a command and returns its combined output; a failure fails the test.
func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	out, err := runErr(env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return out
}

func runErr(env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitV2(t *testing.T, host string) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if resp, err := http.Get("http://" + host + "/v2/"); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("registry at %s does not answer", host)
}

// startDistribution starts docker-registry and stops it at cleanup.
func startDistribution(t *testing.T) string { return testutil.StartDistribution(t) }

// startWharf runs `wharf serve` and stops it at cleanup.
func startWharf(t *testing.T) string {
	t.Helper()
	host := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(testutil.Bin(t, "wharf"), "serve", "--addr", host, "--root", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	waitV2(t, host)
	return host
}

// testImage returns the test image layout name (hack/images.sh, cached under .cache/images).
func testImage(t *testing.T, name string) string { return testutil.Image(t, name) }

func rootDigest(t *testing.T, dir, tag string) string {
	t.Helper()
	l, err := layout.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	d, err := l.Resolve(context.Background(), tag)
	if err != nil {
		t.Fatal(err)
	}
	return d.Digest.String()
}

// layout → registry → layout through wharf keeps every digest, on wharf's registry and on
// docker-registry.
func TestRoundTripRegistries(t *testing.T) {
	w := testutil.Bin(t, "wharf")
	registries := map[string]func(*testing.T) string{"wharf": startWharf, "distribution": startDistribution}
	for _, reg := range []string{"wharf", "distribution"} {
		t.Run(reg, func(t *testing.T) {
			host := registries[reg](t)
			for _, tc := range []struct {
				image, tag string
				flags      []string
			}{
				{"busybox", "latest", nil},
				{"bookworm", "latest", nil},
				{"multiarch", "latest", []string{"--all"}},
			} {
				t.Run(tc.image, func(t *testing.T) {
					src := testImage(t, tc.image)
					want := rootDigest(t, src, tc.tag)
					remote := fmt.Sprintf("docker://%s/wharf/%s:%s", host, tc.image, tc.tag)
					run(t, nil, w, append([]string{"copy", "-q"}, append(tc.flags, "oci:"+src+":"+tc.tag, remote)...)...)
					out := filepath.Join(t.TempDir(), "out")
					run(t, nil, w, append([]string{"copy", "-q"}, append(tc.flags, remote, "oci:"+out+":"+tc.tag)...)...)
					if got := rootDigest(t, out, tc.tag); got != want {
						t.Fatalf("round trip gave %s, want %s", got, want)
					}
					run(t, nil, w, "validate", "oci:"+out+":"+tc.tag)
					var insp struct{ Digest string }
					json.Unmarshal([]byte(run(t, nil, w, "inspect", "--json", remote)), &insp)
					if insp.Digest != want {
						t.Fatalf("inspect %s: digest %s, want %s", remote, insp.Digest, want)
					}
					// a second push skips everything
					again := run(t, nil, w, append([]string{"copy", "--json"}, append(tc.flags, "oci:"+src+":"+tc.tag, remote)...)...)
					if !strings.Contains(again, `"copied": 0`) {
						t.Fatalf("second push copied something:\n%s", again)
					}
				})
			}
			t.Run("chunked upload and cross-repository mount", func(t *testing.T) {
				src := testImage(t, "bookworm")
				want := rootDigest(t, src, "latest")
				remote := "docker://" + host + "/wharf/chunked:latest"
				run(t, nil, w, "copy", "-q", "--chunk-size", "5000000", "oci:"+src+":latest", remote)
				out := run(t, nil, w, "copy", remote, "docker://"+host+"/wharf/mounted:latest")
				if !strings.Contains(out, "mounted layer") || strings.Contains(out, "copied  layer") {
					t.Fatalf("registry-to-registry copy on one registry did not mount every layer:\n%s", out)
				}
				dst := filepath.Join(t.TempDir(), "out")
				run(t, nil, w, "copy", "-q", "docker://"+host+"/wharf/mounted:latest", "oci:"+dst+":latest")
				if got := rootDigest(t, dst, "latest"); got != want {
					t.Fatalf("chunked, mounted and pulled: %s, want %s", got, want)
				}
			})
			t.Run("tags and delete", func(t *testing.T) {
				src := testImage(t, "busybox")
				for _, tag := range []string{"a", "b", "c"} {
					run(t, nil, w, "copy", "-q", "oci:"+src+":latest", fmt.Sprintf("docker://%s/wharf/tags:%s", host, tag))
				}
				got := strings.Fields(run(t, nil, w, "tags", "--page-size", "2", "docker://"+host+"/wharf/tags"))
				sort.Strings(got) // distribution 2.8 pages in storage order
				if strings.Join(got, ",") != "a,b,c" {
					t.Fatalf("tags (pages of 2): %q", got)
				}
				run(t, nil, w, "delete", "docker://"+host+"/wharf/tags:a")
				if out, err := runErr(nil, w, "inspect", "docker://"+host+"/wharf/tags:b"); err == nil {
					t.Fatalf("inspect after delete of the manifest (every tag goes): %s", out)
				}
			})
		})
	}
}

// skopeo pulls what wharf pushed and wharf pulls what skopeo pushed, digests unchanged.
func TestSkopeoInterop(t *testing.T) {
	w := testutil.Bin(t, "wharf")
	skopeo := testutil.Peer(t, "skopeo")
	host := startDistribution(t)
	for _, name := range []string{"busybox", "multiarch"} {
		t.Run(name, func(t *testing.T) {
			src := testImage(t, name)
			want := rootDigest(t, src, "latest")
			all := []string{}
			if name == "multiarch" {
				all = []string{"--all"}
			}
			run(t, nil, w, append(append([]string{"copy", "-q"}, all...), "oci:"+src+":latest", "docker://"+host+"/bywharf/"+name+":v1")...)
			out := filepath.Join(t.TempDir(), "skopeo-pulled")
			run(t, nil, skopeo, append(append([]string{"copy", "--src-tls-verify=false"}, all...), "docker://"+host+"/bywharf/"+name+":v1", "oci:"+out+":v1")...)
			if got := rootDigest(t, out, "v1"); got != want {
				t.Fatalf("skopeo pulled %s, want %s", got, want)
			}
			run(t, nil, skopeo, append(append([]string{"copy", "--dest-tls-verify=false"}, all...), "oci:"+src+":latest", "docker://"+host+"/byskopeo/"+name+":v1")...)
			out2 := filepath.Join(t.TempDir(), "wharf-pulled")
			run(t, nil, w, append(append([]string{"copy", "-q"}, all...), "docker://"+host+"/byskopeo/"+name+":v1", "oci:"+out2+":v1")...)
			if got := rootDigest(t, out2, "v1"); got != want {
				t.Fatalf("wharf pulled %s, want %s", got, want)
			}
		})
	}
}

// tokenProxy is a Bearer-token-protected registry: a token realm (Basic user:secret → a
// token) and a reverse proxy to a real registry that lets only requests with that token by.
func tokenProxy(t *testing.T, backend string) string {
	t.Helper()
	var issued atomic.Int32
	realm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "alice" || p != "s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		issued.Add(1)
		json.NewEncoder(w).Encode(map[string]any{"token": "valid-token", "expires_in": 300})
	}))
	t.Cleanup(realm.Close)
	target, _ := url.Parse("http://" + backend)
	rp := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer valid-token" {
			scope := ""
			if parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/v2/"), "/blobs/", 2); len(parts) == 2 {
				scope = fmt.Sprintf(`,scope="repository:%s:pull,push"`, parts[0])
			}
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="test-registry"%s`, realm.URL, scope))
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
			return
		}
		r.Header.Del("Authorization")
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	return strings.TrimPrefix(proxy.URL, "http://")
}

func TestBearerProtectedRegistry(t *testing.T) {
	w := testutil.Bin(t, "wharf")
	host := tokenProxy(t, startDistribution(t))
	src := testImage(t, "busybox")
	want := rootDigest(t, src, "latest")
	remote := "docker://" + host + "/private/busybox:v1"
	home := t.TempDir()
	anon := []string{"HOME=" + home, "DOCKER_CONFIG=" + filepath.Join(home, ".docker"), "REGISTRY_AUTH_FILE=", "XDG_RUNTIME_DIR=" + home}
	out, err := runErr(anon, w, "copy", "oci:"+src+":latest", remote)
	if err == nil || !strings.Contains(out, "unauthorized") {
		t.Fatalf("anonymous push: %v\n%s", err, out)
	}
	cfgDir := filepath.Join(t.TempDir(), "docker")
	os.MkdirAll(cfgDir, 0o700)
	auth := base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))
	os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(`{"auths":{"`+host+`":{"auth":"`+auth+`"}}}`), 0o600)
	withCreds := []string{"HOME=" + home, "DOCKER_CONFIG=" + cfgDir, "REGISTRY_AUTH_FILE=", "XDG_RUNTIME_DIR=" + home}
	run(t, withCreds, w, "copy", "-q", "oci:"+src+":latest", remote)
	dst := filepath.Join(t.TempDir(), "pulled")
	run(t, withCreds, w, "copy", "-q", remote, "oci:"+dst+":v1")
	if got := rootDigest(t, dst, "v1"); got != want {
		t.Fatalf("pulled %s, want %s", got, want)
	}
	out, err = runErr(anon, w, "copy", remote, "oci:"+filepath.Join(t.TempDir(), "x")+":v1")
	if err == nil || !strings.Contains(out, "unauthorized") {
		t.Fatalf("anonymous pull: %v\n%s", err, out)
	}
	// wharf login stores credentials that the next commands use; logout removes them
	authFile := filepath.Join(t.TempDir(), "auth.json")
	loginEnv := append(anon, "REGISTRY_AUTH_FILE="+authFile)
	run(t, loginEnv, w, "login", "-u", "alice", "-p", "s3cret", host)
	run(t, loginEnv, w, "inspect", remote)
	run(t, loginEnv, w, "logout", host)
	if out, err := runErr(loginEnv, w, "inspect", remote); err == nil {
		t.Fatalf("inspect after logout: %s", out)
	}
	if out, err := runErr(loginEnv, w, "login", "-u", "alice", "-p", "wrong", host); err == nil {
		t.Fatalf("login with a wrong password: %s", out)
	}
}

// The connection drops in the middle of a 256 MiB blob download: the copy resumes with a
// Range request and completes.
func TestResumeAfterDroppedConnection(t *testing.T) {
	w := testutil.Bin(t, "wharf")
	host := startWharf(t)
	src := filepath.Join(t.TempDir(), "big")
	gen := exec.Command("go", "run", "../../bench/clientimg", src, "256")
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("clientimg: %v\n%s", err, out)
	}
	want := rootDigest(t, src, "latest")
	run(t, nil, w, "copy", "-q", "oci:"+src+":latest", "docker://"+host+"/big/blob:v1")

	// a proxy that cuts the first full blob download after 100 MiB
	var drops, ranges atomic.Int32
	target, _ := url.Parse("http://" + host)
	proxy := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Range") != "" {
			ranges.Add(1)
		}
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") && r.Header.Get("Range") == "" && drops.Load() == 0 {
			resp, err := http.Get(target.String() + r.URL.Path)
			if err != nil {
				rw.WriteHeader(http.StatusBadGateway)
				return
			}
			defer resp.Body.Close()
			if resp.ContentLength > 200<<20 {
				drops.Add(1)
				for k, v := range resp.Header {
					rw.Header()[k] = v
				}
				rw.WriteHeader(resp.StatusCode)
				io.CopyN(rw, resp.Body, 100<<20)
				rw.(http.Flusher).Flush()
				conn, _, _ := rw.(http.Hijacker).Hijack()
				conn.Close()
				return
			}
		}
		httputil.NewSingleHostReverseProxy(target).ServeHTTP(rw, r)
	}))
	defer proxy.Close()
	dst := filepath.Join(t.TempDir(), "pulled")
	run(t, nil, w, "copy", "-q", "docker://"+strings.TrimPrefix(proxy.URL, "http://")+"/big/blob:v1", "oci:"+dst+":v1")
	if drops.Load() != 1 || ranges.Load() == 0 {
		t.Fatalf("%d drops, %d Range requests: the fault was not exercised", drops.Load(), ranges.Load())
	}
	if got := rootDigest(t, dst, "v1"); got != want {
		t.Fatalf("pulled %s, want %s", got, want)
	}
	run(t, nil, w, "validate", "oci:"+dst+":v1")
}

// docker-registry 2.8 has no referrers API: a referrer pushed there is listed through the
// fallback tag schema (sha256-<hex>), which the client maintains, and --referrers copies it back.
func TestReferrersFallbackTag(t *testing.T) {
	host := startDistribution(t)
	ctx := context.Background()
	src, root := buildImage(t)
	repo := newRepo(t, host, "fallback/img", client.Options{})
	if _, err := imagecopy.Copy(ctx, src, "latest", repo, "v1", imagecopy.Options{AllPlatforms: true, Referrers: true}); err != nil {
		t.Fatal(err)
	}
	tagged, err := repo.Resolve(ctx, client.FallbackTag(root))
	if err != nil || tagged.MediaType != "application/vnd.oci.image.index.v1+json" {
		t.Fatalf("fallback tag %s: %+v, %v", client.FallbackTag(root), tagged, err)
	}
	refs, err := repo.Referrers(ctx, root, "application/vnd.example.sig")
	if err != nil || len(refs) != 1 {
		t.Fatalf("referrers = %v, %v", refs, err)
	}
	dst, err := layout.Init(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if _, err := imagecopy.Copy(ctx, repo, "v1", dst, "latest", imagecopy.Options{AllPlatforms: true, Referrers: true}); err != nil {
		t.Fatal(err)
	}
	if lrefs, err := dst.Referrers(ctx, root, ""); err != nil || len(lrefs) != 1 {
		t.Fatalf("referrers copied back = %v, %v", lrefs, err)
	}
}

// wharf serve with a certificate: wharf pushes and pulls with --cacert, skopeo with
// --cert-dir, and a client that does not trust the certificate is refused.
func TestTLSRegistry(t *testing.T) {
	w := testutil.Bin(t, "wharf")
	skopeo := testutil.Peer(t, "skopeo")
	dir := t.TempDir()
	certFile, keyFile, _ := testutil.SelfSignedCert(t, dir)
	host := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(w, "serve", "--addr", host, "--root", filepath.Join(dir, "root"), "--tls-cert", certFile, "--tls-key", keyFile)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", host)
		if err == nil {
			c.Close()
			break
		}
		if i == 200 {
			t.Fatalf("wharf serve --tls-cert does not listen on %s", host)
		}
		time.Sleep(50 * time.Millisecond)
	}
	src := testImage(t, "busybox")
	want := rootDigest(t, src, "latest")
	run(t, nil, w, "copy", "-q", "--cacert", certFile, "oci:"+src+":latest", "docker://"+host+"/tls/busybox:v1")
	certDir := filepath.Join(dir, "certs")
	os.MkdirAll(certDir, 0o755)
	b, _ := os.ReadFile(certFile)
	os.WriteFile(filepath.Join(certDir, "ca.crt"), b, 0o644)
	out := filepath.Join(dir, "skopeo-pulled")
	run(t, nil, skopeo, "copy", "--src-cert-dir", certDir, "docker://"+host+"/tls/busybox:v1", "oci:"+out+":v1")
	if got := rootDigest(t, out, "v1"); got != want {
		t.Fatalf("skopeo pulled %s over TLS, want %s", got, want)
	}
	if msg, err := runErr(nil, w, "copy", "-q", "docker://"+host+"/tls/busybox:v1", "oci:"+filepath.Join(dir, "untrusted")+":v1"); err == nil || !strings.Contains(msg, "certificate") {
		t.Fatalf("pull without trusting the certificate: %v\n%s", err, msg)
	}
}
