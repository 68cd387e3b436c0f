// Package servertest runs wharf's registry (distribution/server) in process for tests, as
// net/http/httptest does for handlers.
package servertest

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wharfoci/wharf/distribution/server"
)

// Start serves a registry on a fresh temporary root over plain HTTP on 127.0.0.1, stops it
// when the test ends, and returns its host:port.
func Start(t testing.TB) string {
	t.Helper()
	return start(t, nil)
}

// StartWithAuth serves a registry that requires tokens from ts (see Start).
func StartWithAuth(t testing.TB, ts *TokenService) string {
	t.Helper()
	return start(t, ts.Config())
}

func start(t testing.TB, auth *server.AuthConfig) string {
	t.Helper()
	reg, err := server.New(server.Config{Root: t.TempDir(), LogLevel: "error", Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(reg)
	t.Cleanup(func() { srv.Close(); reg.Close() })
	return strings.TrimPrefix(srv.URL, "http://")
}
