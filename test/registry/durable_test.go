//go:build integration

package registry

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/internal/testutil"
)

// call is one completed system call of an strace log (goroutines move between threads: the
// pid says little): its pid, text (name and arguments,
// "unfinished"/"resumed" halves joined) and return value.
type call struct {
	pid  string
	text string
	ret  string
}

var (
	straceLine = regexp.MustCompile(`^(\d+)\s+(.*)$`)
	retRE      = regexp.MustCompile(`\)\s+=\s+(-?\d+|\?)`)
)

// parseStrace reads `strace -f` output into completed calls, in the order they returned.
func parseStrace(t *testing.T, path string) []call {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pending := map[string]string{}
	var calls []call
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		m := straceLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		pid, text := m[1], m[2]
		if i := strings.Index(text, " <unfinished ...>"); i >= 0 {
			pending[pid] = text[:i]
			continue
		}
		if strings.HasPrefix(text, "<... ") {
			if i := strings.Index(text, " resumed>"); i >= 0 {
				text = pending[pid] + text[i+len(" resumed>"):]
				delete(pending, pid)
			}
		}
		r := retRE.FindStringSubmatch(text)
		if r == nil {
			continue
		}
		calls = append(calls, call{pid: pid, text: text, ret: r[1]})
	}
	return calls
}

// succeeded reports whether c is the call written as head ("fsync(13)") and returned 0.
func succeeded(c call, head string) bool {
	return c.ret == "0" && strings.HasPrefix(c.text, head) && strings.HasPrefix(strings.TrimSpace(c.text[len(head):]), "=")
}

// TestTagWriteIsDurable watches `wharf serve` with strace while a manifest is pushed under a
// tag: the tag file is fsynced before it is renamed into place, its directory is fsynced after
// the rename, and both happen before the 201 is written to the client.
func TestTagWriteIsDurable(t *testing.T) {
	testutil.Need(t, "strace")
	dir := t.TempDir()
	log := filepath.Join(dir, "strace.log")
	addr := freeAddr(t)
	cmd := exec.Command("strace", "-f", "-qq", "-s", "96", "-o", log,
		"-e", "trace=openat,openat2,fsync,fdatasync,renameat,renameat2,write,writev",
		testutil.Bin(t, "wharf"), "serve", "--addr", addr, "--root", filepath.Join(dir, "root"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			cmd.Wait()
		}
	}
	defer stop()
	url := "http://" + addr
	for i := 0; ; i++ {
		if resp, err := http.Get(url + "/v2/"); err == nil {
			resp.Body.Close()
			break
		}
		if i == 200 {
			t.Fatal("wharf serve under strace does not answer")
		}
		time.Sleep(50 * time.Millisecond)
	}

	put := func(method, path, ct string, body []byte, want int) {
		t.Helper()
		req, _ := http.NewRequest(method, url+path, bytes.NewReader(body))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %s", method, path, resp.Status)
		}
	}
	layer := []byte("durable layer")
	cfg, _ := json.Marshal(ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromBytes(layer)}}})
	for _, b := range [][]byte{layer, cfg} {
		put(http.MethodPost, "/v2/durable/blobs/uploads/?digest="+digest.FromBytes(b).String(), "application/octet-stream", b, http.StatusCreated)
	}
	m, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))},
		Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(layer), Size: int64(len(layer))}}})
	put(http.MethodPut, "/v2/durable/manifests/v1", ocispec.MediaTypeImageManifest, m, http.StatusCreated)
	time.Sleep(200 * time.Millisecond)
	stop()

	calls := parseStrace(t, log)
	if os.Getenv("DEBUG_STRACE") != "" {
		b, _ := os.ReadFile(log)
		t.Log(string(b))
	}
	find := func(from int, what string, match func(call) bool) int {
		t.Helper()
		for i := from; i < len(calls); i++ {
			if match(calls[i]) {
				return i
			}
		}
		t.Fatalf("strace: no %s after call %d", what, from)
		return -1
	}
	// the temporary tag file: openat2(DIRFD, ".wharf-tmp-v1-…") = FD
	tmpRE := regexp.MustCompile(`^openat2\((\d+), "(\.wharf-tmp-v1-[0-9a-f]+)"`)
	open := find(0, "temporary tag file", func(c call) bool { return tmpRE.MatchString(c.text) && c.ret != "-1" })
	mm := tmpRE.FindStringSubmatch(calls[open].text)
	dirfd, tmp, fd := mm[1], mm[2], calls[open].ret
	sync := find(open, "fsync of the tag file", func(c call) bool { return succeeded(c, "fsync("+fd+")") })
	ren := find(sync, "rename of the tag file", func(c call) bool {
		return strings.HasPrefix(c.text, "renameat") && strings.Contains(c.text, `"`+tmp+`", `+dirfd+`, "v1"`) && c.ret == "0"
	})
	dsync := find(ren, "fsync of the tags directory", func(c call) bool { return succeeded(c, "fsync("+dirfd+")") })
	resp := find(dsync, "the 201 answer", func(c call) bool {
		return (strings.HasPrefix(c.text, "write(") || strings.HasPrefix(c.text, "writev(")) && strings.Contains(c.text, "HTTP/1.1 201")
	})
	testutil.Report(t, "tag v1: fsync(file) call %d < rename %d < fsync(dir) %d < 201 written %d (of %d calls traced)", sync, ren, dsync, resp, len(calls))
}
