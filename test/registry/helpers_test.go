//go:build integration

package registry

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wharfoci/wharf/internal/testutil"
)

// registry is one running server process.
type registry struct {
	t     *testing.T
	addr  string
	root  string
	cmd   *exec.Cmd
	log   *bytes.Buffer
	URL   string
	extra []string // more `wharf serve` arguments
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startRegistry starts a server on root (a fresh directory when root is ""), with the extra
// `wharf serve` arguments.
func startRegistry(t *testing.T, root string, extra ...string) *registry {
	t.Helper()
	if root == "" {
		root = t.TempDir()
	}
	r := &registry{t: t, addr: freeAddr(t), root: root, log: &bytes.Buffer{}, extra: extra}
	r.URL = "http://" + r.addr
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *registry) start() {
	r.t.Helper()
	r.cmd = exec.Command(testutil.Bin(r.t, "wharf"), append([]string{"serve", "--addr", r.addr, "--root", r.root}, r.extra...)...)
	r.cmd.Stdout = r.log
	r.cmd.Stderr = r.log
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(r.URL + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.t.Fatalf("registry did not start:\n%s", r.log.String())
}

// kill9 kills the server with SIGKILL and reaps it.
func (r *registry) kill9() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGKILL)
	r.cmd.Wait()
	r.cmd = nil
}

// stop sends SIGTERM and waits for a graceful exit.
func (r *registry) stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- r.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			r.t.Errorf("registry exited with %v after SIGTERM:\n%s", err, tail(r.log.String()))
		}
	case <-time.After(15 * time.Second):
		r.cmd.Process.Kill()
		<-done
		r.t.Errorf("registry did not stop within 15s of SIGTERM")
	}
	r.cmd = nil
}

func tail(s string) string {
	lines := strings.Split(s, "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r *registry) do(method, path string, body io.Reader, hdr ...string) (response, error) {
	url := path
	if !strings.HasPrefix(url, "http") {
		url = r.URL + path
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return response{}, err
	}
	if b, ok := body.(*bytes.Reader); ok {
		req.ContentLength = int64(b.Len())
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}, err
}

func (r *registry) must(method, path string, body []byte, want int, hdr ...string) response {
	r.t.Helper()
	var rd io.Reader = http.NoBody
	if body != nil {
		rd = bytes.NewReader(body)
	}
	resp, err := r.do(method, path, rd, hdr...)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, path, err)
	}
	if resp.status != want {
		r.t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.status, want, resp.body)
	}
	return resp
}
