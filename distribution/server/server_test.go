package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/distribution/reference"
)

func newTestServer(t *testing.T) (*httptest.Server, *Registry) {
	t.Helper()
	g, err := New(Config{Root: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(func() { srv.Close(); g.Close() })
	return srv, g
}

func do(t *testing.T, method, url string, body []byte, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == nil {
		req.Body = http.NoBody
		req.ContentLength = 0
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp
}

func pushBlob(t *testing.T, base, repo string, b []byte) digest.Digest {
	t.Helper()
	d := digest.FromBytes(b)
	resp := do(t, "POST", base+"/v2/"+repo+"/blobs/uploads/?digest="+string(d), b)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push blob: %d", resp.StatusCode)
	}
	return d
}

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"a", true}, {"library/busybox", true}, {"a.b_c__d--e/f", true}, {"a-", false}, {"-a", false},
		{"A", false}, {"a//b", false}, {"a/", false}, {"a___b", false}, {"a..b", false}, {"..", false},
		{"a/../b", false}, {strings.Repeat("a", 256), false}, {"", false}, {"a/_blobs", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := reference.ValidateRepository(tc.name) == nil; got != tc.ok {
				t.Fatalf("ValidateRepository(%q) ok = %v", tc.name, got)
			}
		})
	}
}

func TestParseRange(t *testing.T) {
	for _, tc := range []struct {
		hdr            string
		size           int64
		start, length  int64
		partial, valid bool
	}{
		{"", 10, 0, 10, false, true},
		{"bytes=0-4", 10, 0, 5, true, true},
		{"bytes=5-", 10, 5, 5, true, true},
		{"bytes=-3", 10, 7, 3, true, true},
		{"bytes=-30", 10, 0, 10, true, true},
		{"bytes=5-100", 10, 5, 5, true, true},
		{"bytes=5-0", 10, 0, 0, false, false},
		{"bytes=10-20", 10, 0, 0, false, false},
		{"bytes=-0", 10, 0, 0, false, false},
		{"bytes=a-b", 10, 0, 0, false, false},
		{"bytes=0-1,3-4", 10, 0, 10, false, true},
		{"items=0-1", 10, 0, 10, false, true},
		{"bytes=0-0", 0, 0, 0, false, false},
	} {
		t.Run(tc.hdr, func(t *testing.T) {
			s, l, p, ok := parseRange(tc.hdr, tc.size)
			if ok != tc.valid || ok && (s != tc.start || l != tc.length || p != tc.partial) {
				t.Fatalf("parseRange(%q, %d) = %d %d %v %v", tc.hdr, tc.size, s, l, p, ok)
			}
		})
	}
}

// TestBadInput sends malformed requests: each gets a 4xx with a spec error body, never a 5xx.
func TestBadInput(t *testing.T) {
	srv, _ := newTestServer(t)
	base := srv.URL
	blob := []byte("hello")
	d := pushBlob(t, base, "repo", blob)
	resp := do(t, "POST", base+"/v2/repo/blobs/uploads/", nil)
	loc := resp.Header.Get("Location")
	for _, tc := range []struct {
		name, method, path string
		body               []byte
		hdr                []string
		status             int
	}{
		{"name-uppercase", "GET", "/v2/Repo/blobs/" + string(d), nil, nil, 400},
		{"name-dotdot", "GET", "/v2/a/../../blobs/" + string(d), nil, nil, 400},
		{"name-encoded-dotdot", "GET", "/v2/a/%2e%2e/b/blobs/" + string(d), nil, nil, 400},
		{"digest-traversal", "GET", "/v2/repo/blobs/sha256:..%2f..%2fx", nil, nil, 404},
		{"digest-uppercase", "GET", "/v2/repo/blobs/" + strings.ToUpper(string(d)), nil, nil, 400},
		{"digest-md5", "HEAD", "/v2/repo/blobs/md5:d41d8cd98f00b204e9800998ecf8427e", nil, nil, 400},
		{"blob-missing", "GET", "/v2/repo/blobs/" + string(digest.FromString("x")), nil, nil, 404},
		{"blob-other-repo", "GET", "/v2/other/blobs/" + string(d), nil, nil, 404},
		{"range-reversed", "GET", "/v2/repo/blobs/" + string(d), nil, []string{"Range", "bytes=3-1"}, 416},
		{"range-beyond", "GET", "/v2/repo/blobs/" + string(d), nil, []string{"Range", "bytes=10-"}, 416},
		{"range-garbage", "GET", "/v2/repo/blobs/" + string(d), nil, []string{"Range", "bytes=x-"}, 416},
		{"manifest-bad-tag", "GET", "/v2/repo/manifests/-tag", nil, nil, 400},
		{"manifest-missing", "GET", "/v2/repo/manifests/latest", nil, nil, 404},
		{"manifest-bad-json", "PUT", "/v2/repo/manifests/latest", []byte("{"), []string{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}, 400},
		{"manifest-not-object", "PUT", "/v2/repo/manifests/latest", []byte("[]"), []string{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}, 400},
		{"manifest-no-type", "PUT", "/v2/repo/manifests/latest", []byte("{}"), nil, 400},
		{"manifest-wrong-type", "PUT", "/v2/repo/manifests/latest", []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`), []string{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}, 400},
		{"manifest-digest-mismatch", "PUT", "/v2/repo/manifests/" + string(digest.FromString("x")), []byte(`{}`), nil, 400},
		{"manifest-too-large", "PUT", "/v2/repo/manifests/big", bytes.Repeat([]byte(" "), 4<<20+1), []string{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}, 413},
		{"manifest-missing-blob", "PUT", "/v2/repo/manifests/latest", []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + string(digest.FromString("c")) + `","size":1},"layers":[]}`), []string{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}, 400},
		{"upload-unknown", "PATCH", "/v2/repo/blobs/uploads/0123456789abcdef0123456789abcdef", []byte("x"), nil, 404},
		{"upload-bad-id", "PATCH", "/v2/repo/blobs/uploads/..%2f..%2fx", []byte("x"), nil, 404},
		{"upload-out-of-order", "PATCH", loc, []byte("abc"), []string{"Content-Range", "5-7"}, 416},
		{"upload-bad-range", "PATCH", loc, []byte("abc"), []string{"Content-Range", "zz"}, 416},
		{"upload-range-length", "PATCH", loc, []byte("abc"), []string{"Content-Range", "0-9"}, 416},
		{"upload-put-no-digest", "PUT", loc, nil, nil, 400},
		{"upload-put-bad-digest", "PUT", loc + "?digest=sha256:abc", nil, nil, 400},
		{"monolithic-mismatch", "POST", "/v2/repo/blobs/uploads/?digest=" + string(digest.FromString("other")), []byte("data"), nil, 400},
		{"mount-bad-from", "POST", "/v2/repo/blobs/uploads/?mount=" + string(d) + "&from=A", nil, nil, 400},
		{"tags-bad-n", "GET", "/v2/repo/tags/list?n=-1", nil, nil, 400},
		{"tags-unknown-repo", "GET", "/v2/nope/tags/list", nil, nil, 404},
		{"catalog-bad-n", "GET", "/v2/_catalog?n=x", nil, nil, 400},
		{"referrers-bad-digest", "GET", "/v2/repo/referrers/sha256:zz", nil, nil, 400},
		{"unknown-endpoint", "GET", "/v2/repo/foo", nil, nil, 404},
		{"method", "POST", "/v2/repo/manifests/latest", nil, nil, 405},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := tc.path
			if !strings.HasPrefix(url, "http") {
				url = base + tc.path
			}
			resp := do(t, tc.method, url, tc.body, tc.hdr...)
			if resp.StatusCode != tc.status {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("%s %s: status %d, want %d: %s", tc.method, tc.path, resp.StatusCode, tc.status, b)
			}
			if tc.method != "HEAD" {
				var body struct{ Errors []struct{ Code string } }
				if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || len(body.Errors) == 0 {
					t.Fatalf("no spec error body: %v", err)
				}
			}
		})
	}
	// still serving, the upload still usable after the refused chunks
	resp = do(t, "PATCH", base+loc, []byte("abc"), "Content-Range", "0-2")
	if resp.StatusCode != 202 || resp.Header.Get("Range") != "0-2" {
		t.Fatalf("patch after refused chunks: %d %q", resp.StatusCode, resp.Header.Get("Range"))
	}
}

func TestPushPull(t *testing.T) {
	srv, _ := newTestServer(t)
	base := srv.URL
	layer := bytes.Repeat([]byte("layer"), 100000)
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	// chunked layer upload
	resp := do(t, "POST", base+"/v2/a/b/blobs/uploads/", nil)
	loc := resp.Header.Get("Location")
	half := len(layer) / 2
	resp = do(t, "PATCH", base+loc, layer[:half], "Content-Range", fmt.Sprintf("0-%d", half-1))
	if resp.StatusCode != 202 {
		t.Fatalf("patch: %d", resp.StatusCode)
	}
	ld := digest.FromBytes(layer)
	resp = do(t, "PUT", base+resp.Header.Get("Location")+"?digest="+string(ld), layer[half:], "Content-Range", fmt.Sprintf("%d-%d", half, len(layer)-1))
	if resp.StatusCode != 201 || resp.Header.Get("Docker-Content-Digest") != string(ld) {
		t.Fatalf("put: %d", resp.StatusCode)
	}
	cd := pushBlob(t, base, "a/b", config)
	man := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}`, cd, len(config), ld, len(layer))
	resp = do(t, "PUT", base+"/v2/a/b/manifests/v1", []byte(man), "Content-Type", "application/vnd.oci.image.manifest.v1+json")
	if resp.StatusCode != 201 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("put manifest: %d %s", resp.StatusCode, b)
	}
	md := digest.FromString(man)
	for _, ref := range []string{"v1", string(md)} {
		resp = do(t, "GET", base+"/v2/a/b/manifests/"+ref, nil)
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(b) != man || resp.Header.Get("Docker-Content-Digest") != string(md) {
			t.Fatalf("get manifest %s: %d", ref, resp.StatusCode)
		}
	}
	resp = do(t, "GET", base+"/v2/a/b/blobs/"+string(ld), nil, "Range", "bytes=10-19")
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 206 || !bytes.Equal(b, layer[10:20]) || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 10-19/%d", len(layer)) {
		t.Fatalf("range get: %d %q", resp.StatusCode, resp.Header.Get("Content-Range"))
	}
	resp = do(t, "GET", base+"/v2/a/b/blobs/"+string(ld), nil)
	b, _ = io.ReadAll(resp.Body)
	if !bytes.Equal(b, layer) {
		t.Fatalf("blob content differs")
	}
	// isolation: repo c does not see the blob until it is mounted
	if resp = do(t, "HEAD", base+"/v2/c/blobs/"+string(ld), nil); resp.StatusCode != 404 {
		t.Fatalf("blob visible in another repo: %d", resp.StatusCode)
	}
	if resp = do(t, "POST", base+"/v2/c/blobs/uploads/?mount="+string(ld)+"&from=a/b", nil); resp.StatusCode != 201 {
		t.Fatalf("mount: %d", resp.StatusCode)
	}
	if resp = do(t, "HEAD", base+"/v2/c/blobs/"+string(ld), nil); resp.StatusCode != 200 || resp.ContentLength != int64(len(layer)) {
		t.Fatalf("mounted blob: %d", resp.StatusCode)
	}
	// tags pagination
	for _, tag := range []string{"v3", "v2", "a"} {
		if resp = do(t, "PUT", base+"/v2/a/b/manifests/"+tag, []byte(man), "Content-Type", "application/vnd.oci.image.manifest.v1+json"); resp.StatusCode != 201 {
			t.Fatal(resp.StatusCode)
		}
	}
	resp = do(t, "GET", base+"/v2/a/b/tags/list?n=2", nil)
	var tl struct{ Tags []string }
	json.NewDecoder(resp.Body).Decode(&tl)
	if fmt.Sprint(tl.Tags) != "[a v1]" || resp.Header.Get("Link") != `</v2/a/b/tags/list?n=2&last=v1>; rel="next"` {
		t.Fatalf("tags page 1: %v %q", tl.Tags, resp.Header.Get("Link"))
	}
	resp = do(t, "GET", base+"/v2/a/b/tags/list?n=2&last=v1", nil)
	json.NewDecoder(resp.Body).Decode(&tl)
	if fmt.Sprint(tl.Tags) != "[v2 v3]" || resp.Header.Get("Link") != "" {
		t.Fatalf("tags page 2: %v %q", tl.Tags, resp.Header.Get("Link"))
	}
	resp = do(t, "GET", base+"/v2/_catalog", nil)
	var cat struct{ Repositories []string }
	json.NewDecoder(resp.Body).Decode(&cat)
	if fmt.Sprint(cat.Repositories) != "[a/b c]" {
		t.Fatalf("catalog: %v", cat.Repositories)
	}
}

func TestConcurrentBlobPush(t *testing.T) {
	srv, g := newTestServer(t)
	blob := bytes.Repeat([]byte("same blob "), 300000)
	sum := sha256.Sum256(blob)
	d := digest.Digest("sha256:" + hex.EncodeToString(sum[:]))
	var wg sync.WaitGroup
	codes := make([]int, 16)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", srv.URL+"/v2/r/blobs/uploads/", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			resp.Body.Close()
			req, _ = http.NewRequest("PUT", srv.URL+resp.Header.Get("Location")+"?digest="+string(d), bytes.NewReader(blob))
			if resp, err = http.DefaultClient.Do(req); err == nil {
				codes[i] = resp.StatusCode
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != 201 {
			t.Errorf("push %d: status %d", i, c)
		}
	}
	n := 0
	g.store.Walk(t.Context(), func(i content.Info) error { n++; return nil })
	if n != 1 {
		t.Fatalf("%d blobs in the store, want 1", n)
	}
}

func TestDockerSchema2(t *testing.T) {
	srv, _ := newTestServer(t)
	base := srv.URL
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	cd := pushBlob(t, base, "d", config)
	layer := []byte("not really a tar, the registry does not care")
	ld := pushBlob(t, base, "d", layer)
	man := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"%s","size":%d}]}`, cd, len(config), ld, len(layer))
	const mt = "application/vnd.docker.distribution.manifest.v2+json"
	if resp := do(t, "PUT", base+"/v2/d/manifests/v1", []byte(man), "Content-Type", mt); resp.StatusCode != 201 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("put docker manifest: %d %s", resp.StatusCode, b)
	}
	list := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{"mediaType":"%s","digest":"%s","size":%d,"platform":{"architecture":"amd64","os":"linux"}}]}`, mt, digest.FromString(man), len(man))
	const lmt = "application/vnd.docker.distribution.manifest.list.v2+json"
	if resp := do(t, "PUT", base+"/v2/d/manifests/list", []byte(list), "Content-Type", lmt); resp.StatusCode != 201 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("put docker manifest list: %d %s", resp.StatusCode, b)
	}
	for ref, want := range map[string]string{"v1": mt, "list": lmt} {
		if resp := do(t, "HEAD", base+"/v2/d/manifests/"+ref, nil); resp.StatusCode != 200 || resp.Header.Get("Content-Type") != want {
			t.Fatalf("head %s: %d %q", ref, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
}

func TestLoadConfig(t *testing.T) {
	file := t.TempDir() + "/config.json"
	if err := os.WriteFile(file, []byte(`{"addr":"127.0.0.1:6000","root":"/srv/reg","logLevel":"warn","shutdownTimeout":"3s","uploadMaxAge":"48h"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("WHARF_REGISTRY_ROOT", "/env/root")
	c, err := LoadConfig(file)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:6000" || c.Root != "/env/root" || c.LogLevel != "warn" || time.Duration(c.ShutdownTimeout) != 3*time.Second || time.Duration(c.UploadMaxAge) != 48*time.Hour {
		t.Fatalf("config %+v", c)
	}
	os.WriteFile(file, []byte(`{"adr":"x"}`), 0o644)
	if _, err := LoadConfig(file); err == nil {
		t.Fatalf("unknown key accepted")
	}
}
