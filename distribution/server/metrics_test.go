package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wharfoci/wharf/distribution/server"
)

func TestMetrics(t *testing.T) {
	reg, err := server.New(server.Config{Root: t.TempDir(), LogLevel: "error"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(reg)
	t.Cleanup(func() { srv.Close(); reg.Close() })
	get := func(url string) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	get(srv.URL + "/v2/")
	get(srv.URL + "/v2/a/tags/list")
	body := "0123456789"
	resp, err := http.Post(srv.URL+"/v2/a/blobs/uploads/?digest=sha256:84d89877f0d4041efb6bf91a16f0248f2fd573e6af05c19f96bedb9f882f7882", "application/octet-stream", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("monolithic upload: %d", resp.StatusCode)
	}
	rec := httptest.NewRecorder()
	reg.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	out := rec.Body.String()
	for _, want := range []string{
		`wharf_registry_http_requests_total{code="200",method="GET",route="base"} 1`,
		`wharf_registry_http_requests_total{code="404",method="GET",route="tags"} 1`,
		`wharf_registry_http_requests_total{code="201",method="POST",route="uploads"} 1`,
		`wharf_registry_http_request_bytes_total{route="uploads"} 10`,
		`wharf_registry_http_request_duration_seconds_count{method="GET",route="base"} 1`,
		`wharf_registry_http_requests_in_flight 0`,
		`wharf_registry_upload_writers_parked 0`,
		`go_goroutines`, `process_resident_memory_bytes`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if t.Failed() {
		t.Log(out)
	}
}
