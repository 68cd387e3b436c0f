//go:build integration

package registry

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// stream is a deterministic pseudo-random byte stream of a given size, readable from any offset.
type stream struct {
	size, off int64
}

func (s *stream) Read(p []byte) (int, error) {
	if s.off >= s.size {
		return 0, io.EOF
	}
	if int64(len(p)) > s.size-s.off {
		p = p[:s.size-s.off]
	}
	for i := range p {
		o := uint64(s.off) + uint64(i)
		p[i] = byte((o / 8 * 0x9E3779B97F4A7C15) >> (8 * (o % 8)))
	}
	s.off += int64(len(p))
	return len(p), nil
}

func streamDigest(size int64) digest.Digest {
	h := sha256.New()
	io.CopyBuffer(h, &stream{size: size}, make([]byte, 1<<20))
	return digest.NewDigest(digest.SHA256, h)
}

func bigSize() int64 {
	if v, err := strconv.ParseInt(os.Getenv("WHARF_TEST_BIG_MB"), 10, 64); err == nil && v > 0 {
		return v << 20
	}
	return 1 << 30
}

func TestStreamOffsets(t *testing.T) {
	var whole bytes.Buffer
	io.Copy(&whole, &stream{size: 1000})
	for _, off := range []int64{0, 1, 7, 8, 13, 999} {
		var part bytes.Buffer
		s := &stream{size: 1000, off: off}
		buf := make([]byte, 5)
		io.CopyBuffer(&part, s, buf)
		if !bytes.Equal(part.Bytes(), whole.Bytes()[off:]) {
			t.Fatalf("stream from offset %d differs", off)
		}
	}
}

// TestKillDuringBigPush: kill -9 during a big streamed PATCH, restart on the same root, ask the
// upload where it stands, resume it from there and commit: the blob is complete and correct.
func TestKillDuringBigPush(t *testing.T) {
	size := bigSize()
	want := streamDigest(size)
	r := startRegistry(t, "")
	loc := r.must("POST", "/v2/big/blobs/uploads/", nil, 202).header.Get("Location")

	// Stream the blob; kill the server once more than half of it has been sent.
	pr, pw := io.Pipe()
	go func() {
		src := &stream{size: size}
		buf := make([]byte, 1<<20)
		var sent int64
		killed := false
		for {
			n, err := src.Read(buf)
			if n > 0 {
				if _, werr := pw.Write(buf[:n]); werr != nil {
					return
				}
				sent += int64(n)
			}
			if !killed && sent > size/2 {
				time.Sleep(200 * time.Millisecond) // let the server take in what was sent
				r.kill9()
				killed = true
			}
			if err != nil {
				pw.Close()
				return
			}
		}
	}()
	req, _ := http.NewRequest("PATCH", r.URL+loc, pr)
	req.Header.Set("Content-Type", "application/octet-stream")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("PATCH survived the kill: %d", resp.StatusCode)
	}
	pr.Close()

	r.start() // same root, same address
	st := r.must("GET", loc, nil, 204)
	rng, ok := strings.CutPrefix(st.header.Get("Range"), "0-")
	last, err := strconv.ParseInt(rng, 10, 64)
	if !ok || err != nil {
		t.Fatalf("upload status range %q", st.header.Get("Range"))
	}
	off := last + 1
	if off < size/4 {
		t.Fatalf("resumed at offset %d: the upload lost what it had before the kill (more than %d bytes)", off, size/2)
	}
	t.Logf("killed after more than %d of %d bytes; the upload resumes at %d", size/2, size, off)

	req, _ = http.NewRequest("PATCH", r.URL+loc, &stream{size: size, off: off})
	req.ContentLength = size - off
	req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", off, size-1))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Fatalf("resumed PATCH: %d", resp.StatusCode)
	}
	put := r.must("PUT", resp.Header.Get("Location")+"?digest="+string(want), nil, 201)
	if put.header.Get("Docker-Content-Digest") != string(want) {
		t.Fatalf("PUT digest header %q", put.header.Get("Docker-Content-Digest"))
	}
	head := r.must("HEAD", "/v2/big/blobs/"+string(want), nil, 200)
	if head.header.Get("Content-Length") != strconv.FormatInt(size, 10) {
		t.Fatalf("HEAD length %s", head.header.Get("Content-Length"))
	}
	get, err := http.Get(r.URL + "/v2/big/blobs/" + string(want))
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, _ := io.CopyBuffer(h, get.Body, make([]byte, 1<<20))
	get.Body.Close()
	if got := digest.NewDigest(digest.SHA256, h); n != size || got != want {
		t.Fatalf("pulled %d bytes hashing to %s", n, got)
	}
}

// TestKillDuringManifestPush: kill -9 while clients push manifests (with subjects, so that
// referrer entries are written too). After a restart every acknowledged manifest is there, every
// tag and referrer resolves to a complete manifest, and every blob in the store hashes to its name.
func TestKillDuringManifestPush(t *testing.T) {
	r := startRegistry(t, "")
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	cd := digest.FromBytes(config)
	r.must("POST", "/v2/m/blobs/uploads/?digest="+string(cd), config, 201)
	subject := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[]}`, cd, len(config))
	sd := digest.FromString(subject)
	r.must("PUT", "/v2/m/manifests/subject", []byte(subject), 201, "Content-Type", "application/vnd.oci.image.manifest.v1+json")

	var mu sync.Mutex
	acked := map[string]digest.Digest{} // tag → digest
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				tag := fmt.Sprintf("w%d-%d", w, i)
				m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%d},"annotations":{"n":"%s %s"}}`,
					cd, len(config), sd, len(subject), tag, strings.Repeat("x", i%5000))
				resp, err := r.do("PUT", "/v2/m/manifests/"+tag, strings.NewReader(m), "Content-Type", "application/vnd.oci.image.manifest.v1+json")
				if err != nil {
					return
				}
				if resp.status == 201 {
					mu.Lock()
					acked[tag] = digest.FromString(m)
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(700 * time.Millisecond)
	r.kill9()
	close(stop)
	wg.Wait()
	if len(acked) == 0 {
		t.Fatalf("no manifest was acknowledged before the kill")
	}
	r.start()

	var tl struct{ Tags []string }
	json.Unmarshal(r.must("GET", "/v2/m/tags/list", nil, 200).body, &tl)
	listed := map[string]bool{}
	for _, tag := range tl.Tags {
		listed[tag] = true
		resp := r.must("GET", "/v2/m/manifests/"+tag, nil, 200)
		if d := digest.FromBytes(resp.body); string(d) != resp.header.Get("Docker-Content-Digest") {
			t.Errorf("tag %s: body hashes to %s, header says %s", tag, d, resp.header.Get("Docker-Content-Digest"))
		}
	}
	for tag, d := range acked {
		if !listed[tag] {
			t.Errorf("acknowledged tag %s lost", tag)
		}
		r.must("HEAD", "/v2/m/manifests/"+string(d), nil, 200)
	}
	var idx struct{ Manifests []struct{ Digest string } }
	json.Unmarshal(r.must("GET", "/v2/m/referrers/"+string(sd), nil, 200).body, &idx)
	for _, m := range idx.Manifests {
		r.must("GET", "/v2/m/manifests/"+m.Digest, nil, 200)
	}
	if len(idx.Manifests) < len(acked) {
		t.Errorf("referrers lists %d manifests, %d were acknowledged", len(idx.Manifests), len(acked))
	}
	verifyStore(t, r.root)
	t.Logf("%d manifests acknowledged before the kill, %d tags after the restart", len(acked), len(tl.Tags))
}

// verifyStore checks that every blob in the CAS hashes to its name.
func verifyStore(t *testing.T, root string) {
	t.Helper()
	dir := filepath.Join(root, "blobs", "sha256")
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Errorf("read blob %s: %v", e.Name(), err)
			continue
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != e.Name() {
			t.Errorf("blob %s is corrupt (hashes to %x)", e.Name(), sum)
		}
	}
}

// TestConcurrentPushSameBlob: 16 clients push the same blob at once; all succeed, one copy.
func TestConcurrentPushSameBlob(t *testing.T) {
	r := startRegistry(t, "")
	size := int64(32 << 20)
	d := streamDigest(size)
	var wg sync.WaitGroup
	codes := make([]int, 16)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := r.do("POST", "/v2/same/blobs/uploads/", http.NoBody)
			if err != nil {
				return
			}
			req, _ := http.NewRequest("PATCH", r.URL+resp.header.Get("Location"), &stream{size: size})
			pr, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			pr.Body.Close()
			put, err := r.do("PUT", pr.Header.Get("Location")+"?digest="+string(d), http.NoBody)
			if err == nil {
				codes[i] = put.status
			}
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != 201 {
			t.Errorf("client %d: status %d", i, c)
		}
	}
	ents, _ := os.ReadDir(filepath.Join(r.root, "blobs", "sha256"))
	if len(ents) != 1 || ents[0].Name() != d.Encoded() {
		t.Fatalf("store holds %d blobs, want the one copy of %s", len(ents), d)
	}
	if ents, _ := os.ReadDir(filepath.Join(r.root, "uploads")); len(ents) != 0 {
		t.Errorf("%d ingest files left behind", len(ents))
	}
	r.must("HEAD", "/v2/same/blobs/"+string(d), nil, 200)
}

// TestMalformedRequests: malformed names, digests, ranges, bodies and raw HTTP get a 4xx and
// the server keeps serving.
func TestMalformedRequests(t *testing.T) {
	r := startRegistry(t, "")
	blob := []byte("some content")
	d := digest.FromBytes(blob)
	r.must("POST", "/v2/ok/blobs/uploads/?digest="+string(d), blob, 201)
	loc := r.must("POST", "/v2/ok/blobs/uploads/", nil, 202).header.Get("Location")
	mt := "application/vnd.oci.image.manifest.v1+json"
	cases := []struct {
		name, method, path string
		body               []byte
		hdr                []string
	}{
		{"name-upper", "GET", "/v2/OK/tags/list", nil, nil},
		{"name-dotdot", "GET", "/v2/ok/../../etc/blobs/" + string(d), nil, nil},
		{"name-trailing-sep", "HEAD", "/v2/ok-/blobs/" + string(d), nil, nil},
		{"name-long", "GET", "/v2/" + strings.Repeat("a", 300) + "/tags/list", nil, nil},
		{"name-percent", "GET", "/v2/ok%00/tags/list", nil, nil},
		{"digest-short", "GET", "/v2/ok/blobs/sha256:abc", nil, nil},
		{"digest-upper", "GET", "/v2/ok/blobs/" + strings.ToUpper(string(d)), nil, nil},
		{"digest-alg", "GET", "/v2/ok/blobs/sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709", nil, nil},
		{"digest-dots", "GET", "/v2/ok/blobs/sha256:" + strings.Repeat(".", 64), nil, nil},
		{"digest-sha512-short", "HEAD", "/v2/ok/blobs/sha512:" + strings.Repeat("a", 64), nil, nil},
		{"range-inverted", "GET", "/v2/ok/blobs/" + string(d), nil, []string{"Range", "bytes=9-2"}},
		{"range-past-end", "GET", "/v2/ok/blobs/" + string(d), nil, []string{"Range", "bytes=100-200"}},
		{"range-negative", "GET", "/v2/ok/blobs/" + string(d), nil, []string{"Range", "bytes=--5"}},
		{"range-huge", "GET", "/v2/ok/blobs/" + string(d), nil, []string{"Range", "bytes=99999999999999999999-"}},
		{"chunk-out-of-order", "PATCH", loc, []byte("abc"), []string{"Content-Range", "10-12"}},
		{"chunk-range-garbage", "PATCH", loc, []byte("abc"), []string{"Content-Range", "a-b"}},
		{"chunk-range-negative", "PATCH", loc, []byte("abc"), []string{"Content-Range", "-1-1"}},
		{"chunk-length-mismatch", "PATCH", loc, []byte("abc"), []string{"Content-Range", "0-99"}},
		{"upload-unknown", "PATCH", "/v2/ok/blobs/uploads/ffffffffffffffffffffffffffffffff", []byte("x"), nil},
		{"upload-bad-id", "GET", "/v2/ok/blobs/uploads/xyz", nil, nil},
		{"put-wrong-digest", "POST", "/v2/ok/blobs/uploads/?digest=" + string(digest.FromString("nope")), []byte("data"), nil},
		{"put-bad-digest", "POST", "/v2/ok/blobs/uploads/?digest=sha256:zz", []byte("data"), nil},
		{"mount-bad-digest", "POST", "/v2/ok/blobs/uploads/?mount=sha256:../x&from=ok", nil, nil},
		{"manifest-empty", "PUT", "/v2/ok/manifests/t", []byte{}, []string{"Content-Type", mt}},
		{"manifest-garbage", "PUT", "/v2/ok/manifests/t", []byte("\x00\xff{{{"), []string{"Content-Type", mt}},
		{"manifest-dup-keys", "PUT", "/v2/ok/manifests/t", []byte(`{"schemaVersion":2,"schemaVersion":2,"mediaType":"` + mt + `","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + string(d) + `","size":12},"layers":[]}`), []string{"Content-Type", mt}},
		{"manifest-bad-desc-digest", "PUT", "/v2/ok/manifests/t", []byte(`{"schemaVersion":2,"mediaType":"` + mt + `","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:../../x","size":1},"layers":[]}`), []string{"Content-Type", mt}},
		{"manifest-negative-size", "PUT", "/v2/ok/manifests/t", []byte(`{"schemaVersion":2,"mediaType":"` + mt + `","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + string(d) + `","size":-1},"layers":[]}`), []string{"Content-Type", mt}},
		{"manifest-schema1", "PUT", "/v2/ok/manifests/t", []byte(`{"schemaVersion":1}`), []string{"Content-Type", "application/vnd.docker.distribution.manifest.v1+prettyjws"}},
		{"manifest-huge", "PUT", "/v2/ok/manifests/t", bytes.Repeat([]byte("a"), 5<<20), []string{"Content-Type", mt}},
		{"manifest-tag-bad", "PUT", "/v2/ok/manifests/.bad", []byte("{}"), []string{"Content-Type", mt}},
		{"tags-n-garbage", "GET", "/v2/ok/tags/list?n=abc", nil, nil},
		{"catalog-n-negative", "GET", "/v2/_catalog?n=-5", nil, nil},
		{"referrers-bad", "GET", "/v2/ok/referrers/notadigest", nil, nil},
		{"method-bad", "TRACE", "/v2/ok/blobs/" + string(d), nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader = http.NoBody
			if tc.body != nil {
				body = bytes.NewReader(tc.body)
			}
			resp, err := r.do(tc.method, tc.path, body, tc.hdr...)
			if err != nil {
				t.Fatalf("%s %s: %v", tc.method, tc.path, err)
			}
			if resp.status < 400 || resp.status >= 500 {
				t.Fatalf("%s %s: status %d, want 4xx: %s", tc.method, tc.path, resp.status, resp.body)
			}
			r.must("GET", "/v2/", nil, 200)
		})
	}
	t.Run("raw-http", func(t *testing.T) {
		for _, raw := range []string{
			"GARBAGE\r\n\r\n",
			"GET /v2/../../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
			"PATCH " + loc + " HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort",
			"PUT /v2/ok/manifests/t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
			"GET /v2/ HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-A: b\r\n", 20000) + "\r\n",
		} {
			c, err := net.Dial("tcp", r.addr)
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(2 * time.Second))
			io.WriteString(c, raw)
			if tcp, ok := c.(*net.TCPConn); ok {
				tcp.CloseWrite()
			}
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], "5") {
				t.Errorf("raw request %.30q: %s", raw, line)
			}
			r.must("GET", "/v2/", nil, 200)
		}
	})
	// The upload is still usable (a cut-off chunk keeps what arrived), and the blob is intact.
	rng := strings.TrimPrefix(r.must("GET", loc, nil, 204).header.Get("Range"), "0-")
	off, _ := strconv.Atoi(rng)
	if off > 0 || rng != "0" {
		off++
	}
	r.must("PATCH", loc, []byte("abc"), 202, "Content-Range", fmt.Sprintf("%d-%d", off, off+2))
	got := r.must("GET", "/v2/ok/blobs/"+string(d), nil, 200)
	if !bytes.Equal(got.body, blob) {
		t.Fatalf("blob changed")
	}
	if strings.Contains(r.log.String(), "panic") {
		t.Fatalf("server log has a panic:\n%s", tail(r.log.String()))
	}
}

// `wharf serve --metrics-addr` answers Prometheus scrapes on its own listener, counting what
// the registry answered.
func TestMetricsEndpoint(t *testing.T) {
	maddr := freeAddr(t)
	r := startRegistry(t, "", "--metrics-addr", maddr)
	for i := 0; i < 3; i++ {
		resp, err := http.Get(r.URL + "/v2/nope/manifests/latest")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	resp, err := http.Get("http://" + maddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `wharf_registry_http_requests_total{code="404",method="GET",route="manifest"} 3`) {
		t.Fatalf("metrics: %d\n%s", resp.StatusCode, b)
	}
}
