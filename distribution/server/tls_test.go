package server

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/internal/testutil"
)

// With a certificate and key the registry answers HTTPS only; half a TLS setup is refused.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := testutil.SelfSignedCert(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, Config{Addr: "127.0.0.1:0", Root: filepath.Join(dir, "root"), TLSCert: certFile, TLSKey: keyFile,
			Logger: slog.New(slog.DiscardHandler)}, func(a net.Addr) { addrc <- a })
	}()
	var addr net.Addr
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := hc.Get("https://" + addr.String() + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil {
		t.Fatalf("GET /v2/ over TLS: %d", resp.StatusCode)
	}
	if resp, err := http.Get("http://" + addr.String() + "/v2/"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatalf("plain HTTP answered 200 on the TLS port")
		}
	}
	// only half of it
	err = Serve(context.Background(), Config{Addr: "127.0.0.1:0", Root: filepath.Join(dir, "root2"), TLSCert: certFile}, nil)
	if !errors.Is(err, errdef.ErrInvalidArgument) {
		t.Fatalf("TLS certificate without key: %v", err)
	}
}
