package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// More sessions than maxParked, each in several chunks, interleaved: parked writers are taken
// and put back, evicted ones are reopened, and every upload completes with its own content.
// A registry restarted on the same root (what a kill leaves on disk, plus Close) continues the
// sessions where their last 202 left them.
func TestParkedUploads(t *testing.T) {
	root := t.TempDir()
	start := func() (*httptest.Server, *Registry) {
		g, err := New(Config{Root: root, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return httptest.NewServer(g), g
	}
	srv, g := start()
	n := maxParked + 6
	locs := make([]string, n)
	data := make([][]byte, n)
	patch := func(base string, i int, part []byte, from int) {
		t.Helper()
		resp := do(t, "PATCH", base+locs[i], part, "Content-Type", "application/octet-stream",
			"Content-Range", fmt.Sprintf("%d-%d", from, from+len(part)-1))
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("session %d: PATCH at %d: %d", i, from, resp.StatusCode)
		}
		locs[i] = resp.Header.Get("Location")
	}
	for i := range n {
		data[i] = []byte(fmt.Sprintf("upload %d %0400d", i, i))
		resp := do(t, "POST", srv.URL+"/v2/parked/r/blobs/uploads/", nil)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST %d: %d", i, resp.StatusCode)
		}
		locs[i] = resp.Header.Get("Location")
	}
	for i := range n {
		patch(srv.URL, i, data[i][:100], 0)
	}
	for i := n - 1; i >= 0; i-- {
		if resp := do(t, "GET", srv.URL+locs[i], nil); resp.StatusCode != http.StatusNoContent || resp.Header.Get("Range") != "0-99" {
			t.Fatalf("session %d status: %d %q", i, resp.StatusCode, resp.Header.Get("Range"))
		}
		patch(srv.URL, i, data[i][100:200], 100)
	}
	srv.Close()
	g.Close()

	srv, g = start()
	defer func() { srv.Close(); g.Close() }()
	for i := range n {
		if resp := do(t, "GET", srv.URL+locs[i], nil); resp.Header.Get("Range") != "0-199" {
			t.Fatalf("session %d after restart: range %q", i, resp.Header.Get("Range"))
		}
		patch(srv.URL, i, data[i][200:], 200)
		d := digest.FromBytes(data[i])
		sep := "?"
		if strings.Contains(locs[i], "?") {
			sep = "&"
		}
		resp := do(t, "PUT", srv.URL+locs[i]+sep+"digest="+string(d), nil)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("session %d: PUT: %d", i, resp.StatusCode)
		}
		if got := do(t, "GET", srv.URL+"/v2/parked/r/blobs/"+string(d), nil); got.StatusCode != http.StatusOK {
			t.Fatalf("session %d: GET blob: %d", i, got.StatusCode)
		}
	}
	if resp := do(t, "GET", srv.URL+locs[0], nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("committed session still answers: %d", resp.StatusCode)
	}
}

// An upload session idle for longer than UploadMaxAge is purged: its status is then unknown.
func TestPurgeStaleUploads(t *testing.T) {
	srv, g := newTestServer(t)
	var locs []string
	for range 2 {
		resp := do(t, "POST", srv.URL+"/v2/purge/r/blobs/uploads/", nil)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST: %d", resp.StatusCode)
		}
		locs = append(locs, resp.Header.Get("Location"))
	}
	g.uploads.closeAll() // parked writers hold their ingests: in use, never purged
	names, _ := filepath.Glob(filepath.Join(g.root, "uploads", "*.data"))
	if len(names) != 2 {
		t.Fatalf("ingests: %v", names)
	}
	old := time.Now().Add(-8 * 24 * time.Hour)
	// Age the first session only.
	resp := do(t, "PATCH", srv.URL+locs[1], []byte("young"), "Content-Type", "application/octet-stream")
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("PATCH: %d", resp.StatusCode)
	}
	g.uploads.closeAll()
	for _, n := range names {
		if st, err := os.Stat(n); err == nil && st.Size() == 0 {
			if err := os.Chtimes(n, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // one purge, then return
	g.purgeUploads(ctx, 0)
	if resp := do(t, "GET", srv.URL+locs[0], nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("stale session: %d, want 404", resp.StatusCode)
	}
	if resp := do(t, "GET", srv.URL+locs[1], nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("young session: %d, want 204", resp.StatusCode)
	}
}
