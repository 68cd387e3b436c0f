package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/distribution/errcode"
	"github.com/wharfoci/wharf/errdef"
)

func hostOf(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

func testClient(t *testing.T, o Options) *Client {
	t.Helper()
	o.RetryBackoff = time.Millisecond
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func blobDesc(b []byte) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromBytes(b), Size: int64(len(b))}
}

// serveBlob answers GET of one blob with Range support; drop(n) decides, per request, after
// how many bytes of the body the connection is cut (-1: never).
func serveBlob(t *testing.T, blob []byte, drop func(req int) int) (*httptest.Server, *[]string) {
	var mu sync.Mutex
	var ranges []string
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		req := n
		ranges = append(ranges, r.Header.Get("Range"))
		mu.Unlock()
		start := 0
		if rg := r.Header.Get("Range"); rg != "" {
			fmt.Sscanf(rg, "bytes=%d-", &start)
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(blob)-1, len(blob)))
			w.Header().Set("Content-Length", fmt.Sprint(len(blob)-start))
			w.WriteHeader(http.StatusPartialContent)
		} else {
			w.Header().Set("Content-Length", fmt.Sprint(len(blob)))
			w.WriteHeader(http.StatusOK)
		}
		body := blob[start:]
		if cut := drop(req); cut >= 0 && cut < len(body) {
			w.Write(body[:cut])
			w.(http.Flusher).Flush()
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv, &ranges
}

func TestFetchResumesWithRange(t *testing.T) {
	blob := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	d := blobDesc(blob)
	for _, tc := range []struct {
		name    string
		drop    func(int) int
		resumes int
		wantErr error
	}{
		{"no drop", func(int) int { return -1 }, 0, nil},
		{"one drop in the middle", func(req int) int {
			if req == 1 {
				return len(blob) / 2
			}
			return -1
		}, 1, nil},
		{"three drops", func(req int) int {
			if req <= 3 {
				return 100_000
			}
			return -1
		}, 3, nil},
		{"always drops", func(int) int { return 1000 }, 4, errdef.ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, ranges := serveBlob(t, blob, tc.drop)
			repo, _ := testClient(t, Options{}).Repository(hostOf(srv), "a/b")
			rc, err := repo.Fetch(context.Background(), d)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("read: %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || !bytes.Equal(got, blob) {
				t.Fatalf("read %d bytes, %v", len(got), err)
			}
			if len(*ranges) != tc.resumes+1 {
				t.Fatalf("%d requests (%q), want %d", len(*ranges), *ranges, tc.resumes+1)
			}
			for i, rg := range (*ranges)[1:] {
				if !strings.HasPrefix(rg, "bytes=") || rg == "bytes=0-" {
					t.Fatalf("resume %d asked %q", i+1, rg)
				}
			}
		})
	}
}

func TestRetries(t *testing.T) {
	for _, tc := range []struct {
		name     string
		statuses []int
		want     error
		requests int
	}{
		{"503 then ok", []int{503, 200}, nil, 2},
		{"429 twice then ok", []int{429, 429, 200}, nil, 3},
		{"404 is final", []int{404}, errdef.ErrNotFound, 1},
		{"always 500", []int{500, 500, 500, 500, 500, 500}, errdef.ErrUnavailable, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				i := int(n.Add(1)) - 1
				st := tc.statuses[min(i, len(tc.statuses)-1)]
				if st != 200 {
					if st == 404 {
						errcode.Write(w, errcode.ManifestUnknown.New(""))
						return
					}
					w.WriteHeader(st)
					return
				}
				w.Header().Set("Link", "")
				json.NewEncoder(w).Encode(map[string]any{"name": "a/b", "tags": []string{"x"}})
			}))
			defer srv.Close()
			repo, _ := testClient(t, Options{}).Repository(hostOf(srv), "a/b")
			tags, err := repo.Tags(context.Background())
			if tc.want == nil && (err != nil || len(tags) != 1) {
				t.Fatalf("tags = %v, %v", tags, err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if int(n.Load()) != tc.requests {
				t.Fatalf("%d requests, want %d", n.Load(), tc.requests)
			}
		})
	}
}

func TestTagsPagination(t *testing.T) {
	all := []string{"a", "b", "c", "d", "e"}
	var queries []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		queries = append(queries, r.URL.RawQuery)
		n := 2
		fmt.Sscan(r.URL.Query().Get("n"), &n)
		start := 0
		if last := r.URL.Query().Get("last"); last != "" {
			for i, t := range all {
				if t == last {
					start = i + 1
				}
			}
		}
		end := min(start+n, len(all))
		if end < len(all) {
			w.Header().Set("Link", fmt.Sprintf(`</v2/a/b/tags/list?n=%d&last=%s>; rel="next"`, n, all[end-1]))
		}
		json.NewEncoder(w).Encode(map[string]any{"name": "a/b", "tags": all[start:end]})
	}))
	defer srv.Close()
	repo, _ := testClient(t, Options{}).Repository(hostOf(srv), "a/b")
	var got []string
	err := repo.TagPages(context.Background(), 2, "", func(page []string) error { got = append(got, page...); return nil })
	if err != nil || strings.Join(got, ",") != "a,b,c,d,e" {
		t.Fatalf("tags = %v, %v", got, err)
	}
	if len(queries) != 3 || queries[0] != "n=2" {
		t.Fatalf("queries = %q", queries)
	}
}

// tokenServer is a registry that wants a bearer token from its realm, which wants Basic
// user:secret. It counts token requests and checks scopes.
type tokenServer struct {
	realm, reg *httptest.Server
	tokens     atomic.Int32
	gotScopes  []string
	mu         sync.Mutex
}

func newTokenServer(t *testing.T) *tokenServer {
	ts := &tokenServer{}
	ts.realm = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != "user" || p != "secret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		ts.tokens.Add(1)
		ts.mu.Lock()
		ts.gotScopes = append(ts.gotScopes, strings.Join(r.URL.Query()["scope"], " "))
		ts.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"token": "tok:" + strings.Join(r.URL.Query()["scope"], " "), "expires_in": 300})
	}))
	ts.reg = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scope := "repository:a/b:pull"
		if auth := r.Header.Get("Authorization"); !strings.HasPrefix(auth, "Bearer tok:") || !strings.Contains(auth, scope) {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="test",scope="%s"`, ts.realm.URL, scope))
			errcode.Write(w, errcode.Unauthorized.New(""))
			return
		}
		if r.URL.Path == "/v2/a/b/blobs/redirect" {
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"name": "a/b", "tags": []string{"v1"}})
	}))
	t.Cleanup(func() { ts.realm.Close(); ts.reg.Close() })
	return ts
}

func TestBearerToken(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cred   Credential
		want   error
		tokens int32
	}{
		{"good credentials, one token for two requests", Credential{Username: "user", Password: "secret"}, nil, 1},
		{"anonymous refused", Credential{}, errdef.ErrUnauthorized, 0},
		{"wrong password refused", Credential{Username: "user", Password: "nope"}, errdef.ErrUnauthorized, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTokenServer(t)
			c := testClient(t, Options{Credentials: func(host string) (Credential, error) { return tc.cred, nil }})
			repo, _ := c.Repository(hostOf(ts.reg), "a/b")
			for i := 0; i < 2; i++ {
				tags, err := repo.Tags(context.Background())
				if tc.want != nil {
					if !errors.Is(err, tc.want) {
						t.Fatalf("tags: %v, want %v", err, tc.want)
					}
					return
				}
				if err != nil || len(tags) != 1 {
					t.Fatalf("tags = %v, %v", tags, err)
				}
			}
			if got := ts.tokens.Load(); got != tc.tokens {
				t.Fatalf("%d token requests, want %d (scopes %q)", got, tc.tokens, ts.gotScopes)
			}
		})
	}
}

func TestBasicAuth(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "user" || p != "secret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="registry"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	var asked atomic.Int32
	ok := testClient(t, Options{Credentials: func(string) (Credential, error) {
		asked.Add(1)
		return Credential{Username: "user", Password: "secret"}, nil
	}})
	for i := 0; i < 3; i++ {
		if err := ok.Ping(context.Background(), hostOf(srv)); err != nil {
			t.Fatalf("ping with credentials: %v", err)
		}
	}
	if asked.Load() != 1 {
		t.Fatalf("credentials asked for %d times, want once per client", asked.Load())
	}
	bad := testClient(t, Options{Credentials: func(string) (Credential, error) { return Credential{Username: "user", Password: "x"}, nil }})
	if err := bad.Ping(context.Background(), hostOf(srv)); !errors.Is(err, errdef.ErrUnauthorized) {
		t.Fatalf("ping with a wrong password: %v", err)
	}
	anon := testClient(t, Options{})
	if err := anon.Ping(context.Background(), hostOf(srv)); !errors.Is(err, errdef.ErrUnauthorized) {
		t.Fatalf("anonymous ping: %v", err)
	}
}

// Credentials go to the registry only: not to a redirect target on another host, not to a
// foreign layer's urls.
func TestNoCredentialsElsewhere(t *testing.T) {
	blob := []byte("foreign layer bytes")
	d := blobDesc(blob)
	var leaked atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			leaked.Add(1)
		}
		w.Write(blob)
	}))
	defer other.Close()
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "user" || p != "secret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="registry"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch {
		case strings.HasSuffix(r.URL.Path, "/blobs/"+d.Digest.String()) && r.URL.Query().Get("missing") == "":
			http.Redirect(w, r, other.URL+"/storage/blob", http.StatusTemporaryRedirect)
		default:
			errcode.Write(w, errcode.BlobUnknown.New(""))
		}
	}))
	defer reg.Close()
	c := testClient(t, Options{Credentials: func(string) (Credential, error) { return Credential{Username: "user", Password: "secret"}, nil }})
	repo, _ := c.Repository(hostOf(reg), "a/b")
	rc, err := repo.Fetch(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, blob) || leaked.Load() != 0 {
		t.Fatalf("redirected fetch: %q, %d requests with credentials at the other host", got, leaked.Load())
	}
	foreign := ocispec.Descriptor{MediaType: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", Digest: digest.FromString("absent"), Size: int64(len(blob)),
		URLs: []string{other.URL + "/foreign"}}
	foreign.Digest = d.Digest
	repo2, _ := c.Repository(hostOf(reg), "c/d")
	reg.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="registry"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		errcode.Write(w, errcode.BlobUnknown.New(""))
	})
	rc, err = repo2.Fetch(context.Background(), foreign)
	if err != nil {
		t.Fatalf("fetch foreign layer: %v", err)
	}
	got, _ = io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, blob) || leaked.Load() != 0 {
		t.Fatalf("foreign layer: %q, %d requests with credentials", got, leaked.Load())
	}
}

func TestParseChallenge(t *testing.T) {
	for _, tc := range []struct {
		name, in, scheme, realm, scope string
	}{
		{"bearer", `Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"`, "bearer", "https://auth.example/token", "repository:a/b:pull,push"},
		{"basic", `Basic realm="Registry Realm"`, "basic", "Registry Realm", ""},
		{"escaped quote", `Bearer realm="https://a/\"t\"",service=x`, "bearer", `https://a/"t"`, ""},
		{"unknown scheme", `Negotiate abc`, "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch := parseChallenge([]string{tc.in})
			if tc.scheme == "" {
				if ch != nil {
					t.Fatalf("got %+v", ch)
				}
				return
			}
			if ch == nil || ch.scheme != tc.scheme || ch.params["realm"] != tc.realm || ch.params["scope"] != tc.scope {
				t.Fatalf("got %+v", ch)
			}
		})
	}
}

func TestCredentialsFiles(t *testing.T) {
	dir := t.TempDir()
	enc := func(u, p string) string { return base64.StdEncoding.EncodeToString([]byte(u + ":" + p)) }
	authFile := filepath.Join(dir, "auth.json")
	dockerFile := filepath.Join(dir, "config.json")
	os.WriteFile(authFile, []byte(`{"auths":{"reg.example:5000":{"auth":"`+enc("podman", "p1")+`"}}}`), 0o600)
	os.WriteFile(dockerFile, []byte(`{"auths":{"https://index.docker.io/v1/":{"auth":"`+enc("hub", "p2")+`"},"reg.example:5000":{"auth":"`+enc("docker", "p3")+`"},"http://other.example/v2/":{"auth":"`+enc("o", "p4")+`"}},"credHelpers":{"helped.example":"wharftest"},"HttpHeaders":{"X":"y"}}`), 0o600)
	// a credential helper on PATH
	bin := filepath.Join(dir, "bin")
	os.Mkdir(bin, 0o755)
	os.WriteFile(filepath.Join(bin, "docker-credential-wharftest"), []byte("#!/bin/sh\nread host\n[ \"$1\" = get ] && echo '{\"ServerURL\":\"'$host'\",\"Username\":\"helper\",\"Secret\":\"p5\"}'\n"), 0o755)
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	s := &Credentials{Files: []string{authFile, dockerFile}, WriteFile: dockerFile}
	for _, tc := range []struct{ host, user, pass string }{
		{"reg.example:5000", "podman", "p1"},
		{"docker.io", "hub", "p2"},
		{"registry-1.docker.io", "hub", "p2"},
		{"other.example", "o", "p4"},
		{"helped.example", "helper", "p5"},
		{"nowhere.example", "", ""},
	} {
		t.Run(tc.host, func(t *testing.T) {
			c, err := s.Get(tc.host)
			if err != nil || c.Username != tc.user || c.Password != tc.pass {
				t.Fatalf("Get(%s) = %+v, %v", tc.host, c, err)
			}
		})
	}
	t.Run("store and erase keep other fields", func(t *testing.T) {
		if err := s.Store("new.example", Credential{Username: "n", Password: "p6"}); err != nil {
			t.Fatal(err)
		}
		if c, _ := s.Get("new.example"); c.Username != "n" || c.Password != "p6" {
			t.Fatalf("after store: %+v", c)
		}
		if err := s.Erase("new.example"); err != nil {
			t.Fatal(err)
		}
		if c, _ := s.Get("new.example"); !c.empty() {
			t.Fatalf("after erase: %+v", c)
		}
		if err := s.Erase("new.example"); !errors.Is(err, errdef.ErrNotFound) {
			t.Fatalf("erase again: %v", err)
		}
		b, _ := os.ReadFile(dockerFile)
		if !strings.Contains(string(b), "HttpHeaders") || !strings.Contains(string(b), "credHelpers") {
			t.Fatalf("other fields lost: %s", b)
		}
	})
}

// A push whose content does not match its descriptor never reaches the commit.
func TestPushNeverCommitsBadContent(t *testing.T) {
	var commits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPost:
			w.Header().Set("Location", "/v2/a/b/blobs/uploads/1")
			w.WriteHeader(http.StatusAccepted)
		case http.MethodPatch:
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Location", "/v2/a/b/blobs/uploads/1")
			w.WriteHeader(http.StatusAccepted)
		case http.MethodPut:
			b, err := io.ReadAll(r.Body)
			if err != nil || int64(len(b)) != r.ContentLength {
				return // the client gave up mid-body
			}
			h := sha256.Sum256(b)
			_ = h
			commits.Add(1)
			w.WriteHeader(http.StatusCreated)
		case http.MethodDelete:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer srv.Close()
	good := bytes.Repeat([]byte("x"), 200_000)
	bad := append(bytes.Repeat([]byte("x"), 199_999), 'y')
	for _, chunk := range []int64{0, 65536} {
		for _, tc := range []struct {
			name    string
			content []byte
			want    error
		}{
			{"digest", bad, errdef.ErrDigestMismatch},
			{"short", good[:150_000], errdef.ErrSizeMismatch},
			{"long", append(bytes.Clone(good), 'z'), errdef.ErrSizeMismatch},
		} {
			t.Run(fmt.Sprintf("%s/chunk%d", tc.name, chunk), func(t *testing.T) {
				commits.Store(0)
				repo, _ := testClient(t, Options{ChunkSize: chunk}).Repository(hostOf(srv), "a/b")
				err := repo.Push(context.Background(), blobDesc(good), bytes.NewReader(tc.content))
				if !errors.Is(err, tc.want) {
					t.Fatalf("push: %v, want %v", err, tc.want)
				}
				if commits.Load() != 0 {
					t.Fatalf("the registry committed a bad blob")
				}
			})
		}
	}
}

// TLS: a registry with a private CA is trusted with CACertFile, refused without it, and
// reached anyway with Insecure; a loopback registry without TLS is reached over plain HTTP.
func TestTLS(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	defer tlsSrv.Close()
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	defer plain.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	var pemBuf bytes.Buffer
	pemBuf.WriteString("-----BEGIN CERTIFICATE-----\n")
	enc := base64.StdEncoding.EncodeToString(tlsSrv.Certificate().Raw)
	for len(enc) > 64 {
		pemBuf.WriteString(enc[:64] + "\n")
		enc = enc[64:]
	}
	pemBuf.WriteString(enc + "\n-----END CERTIFICATE-----\n")
	os.WriteFile(ca, pemBuf.Bytes(), 0o644)
	for _, tc := range []struct {
		name string
		host string
		opts Options
		ok   bool
	}{
		{"cacert", hostOf2(tlsSrv), Options{CACertFile: ca}, true},
		{"unknown authority", hostOf2(tlsSrv), Options{}, false},
		{"insecure", hostOf2(tlsSrv), Options{Insecure: true}, true},
		{"plain loopback", hostOf(plain), Options{}, true},
		{"plain forced", hostOf(plain), Options{PlainHTTP: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := testClient(t, tc.opts).Ping(context.Background(), tc.host)
			if (err == nil) != tc.ok {
				t.Fatalf("ping: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func hostOf2(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "https://") }

func TestRetryOnDroppedConnection(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= 2 {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"name": "a/b", "tags": []string{"x"}})
	}))
	defer srv.Close()
	repo, _ := testClient(t, Options{}).Repository(hostOf(srv), "a/b")
	tags, err := repo.Tags(context.Background())
	if err != nil || len(tags) != 1 || n.Load() != 3 {
		t.Fatalf("tags = %v, %v after %d requests", tags, err, n.Load())
	}
}

// An identity token (from a credential helper's "<token>" user) is exchanged with the
// OAuth2 refresh-token grant.
func TestIdentityToken(t *testing.T) {
	realm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		if r.Method != http.MethodPost || r.Form.Get("grant_type") != "refresh_token" || r.Form.Get("refresh_token") != "idtok" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"access_token": "acc"})
	}))
	defer realm.Close()
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer acc" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+realm.URL+`",service="s"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer reg.Close()
	c := testClient(t, Options{Credentials: func(string) (Credential, error) { return Credential{IdentityToken: "idtok"}, nil }})
	if err := c.Ping(context.Background(), hostOf(reg)); err != nil {
		t.Fatal(err)
	}
}

// A chunk the registry fails on is sent again from the offset it reports.
func TestChunkRetry(t *testing.T) {
	blob := bytes.Repeat([]byte("chunky"), 50_000) // 300 KB
	d := blobDesc(blob)
	var mu sync.Mutex
	var got []byte
	patches, failed := 0, false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Location", "/v2/a/b/blobs/uploads/1")
		switch r.Method {
		case http.MethodPost:
			w.WriteHeader(http.StatusAccepted)
		case http.MethodPatch:
			patches++
			b, _ := io.ReadAll(r.Body)
			var start int
			fmt.Sscanf(r.Header.Get("Content-Range"), "%d-", &start)
			if start != len(got) {
				w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
				return
			}
			if patches == 3 && !failed { // keep half the chunk, then fail
				failed = true
				got = append(got, b[:len(b)/2]...)
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			got = append(got, b...)
			w.WriteHeader(http.StatusAccepted)
		case http.MethodGet:
			w.Header().Set("Range", fmt.Sprintf("0-%d", len(got)-1))
			w.WriteHeader(http.StatusNoContent)
		case http.MethodPut:
			if r.URL.Query().Get("digest") != d.Digest.String() || !bytes.Equal(got, blob) {
				errcode.Write(w, errcode.DigestInvalid.New(""))
				return
			}
			w.WriteHeader(http.StatusCreated)
		}
	}))
	defer srv.Close()
	repo, _ := testClient(t, Options{ChunkSize: 64 << 10}).Repository(hostOf(srv), "a/b")
	if err := repo.Push(context.Background(), d, bytes.NewReader(blob)); err != nil {
		t.Fatalf("push: %v", err)
	}
	if !failed {
		t.Fatal("the fault was not exercised")
	}
}
