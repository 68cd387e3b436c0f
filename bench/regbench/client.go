package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// worker is one client: its own connections (a transport of its own, no proxy, no compression)
// and copy buffer, as a separate client process would have.
type worker struct {
	base *url.URL
	hc   *http.Client
	buf  []byte
	reqs int64 // requests sent
}

func newWorker(base *url.URL) *worker {
	tr := &http.Transport{
		Proxy:               nil,
		MaxIdleConnsPerHost: 4,
		DisableCompression:  true,
		WriteBufferSize:     256 << 10,
		ReadBufferSize:      256 << 10,
	}
	return &worker{base: base, hc: &http.Client{Transport: tr, Timeout: 30 * time.Minute}, buf: make([]byte, 256<<10)}
}

func (w *worker) close() { w.hc.CloseIdleConnections() }

// do sends req and returns the response when its status is want; any other status is an error
// that quotes the start of the body. The caller closes the body.
func (w *worker) do(req *http.Request, want int) (*http.Response, error) {
	w.reqs++
	resp, err := w.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		resp.Body.Close()
		return nil, fmt.Errorf("%s %s: status %d, want %d: %s", req.Method, req.URL.Path, resp.StatusCode, want, bytes.TrimSpace(b))
	}
	return resp, nil
}

// call sends a request without a body of interest in the response and discards it.
func (w *worker) call(method, u string, body io.Reader, size int64, want int, hdr ...string) (http.Header, error) {
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = size
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := w.do(req, want)
	if err != nil {
		return nil, err
	}
	io.CopyBuffer(discard{}, resp.Body, w.buf)
	resp.Body.Close()
	return resp.Header, nil
}

func (w *worker) url(path string) string { return w.base.String() + path }

// location resolves an upload's Location header against the registry's URL.
func (w *worker) location(h http.Header) (*url.URL, error) {
	loc := h.Get("Location")
	if loc == "" {
		return nil, fmt.Errorf("upload: no Location header")
	}
	u, err := w.base.Parse(loc)
	if err != nil {
		return nil, fmt.Errorf("upload: parse Location %q: %w", loc, err)
	}
	return u, nil
}

// exists reports whether the repository has the blob (HEAD: 200 yes, 404 no).
func (w *worker) exists(repo string, d digest.Digest) (bool, error) {
	w.reqs++
	resp, err := w.hc.Head(w.url("/v2/" + repo + "/blobs/" + d.String()))
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, fmt.Errorf("HEAD blob %s: status %d", d, resp.StatusCode)
}

// upload pushes a blob as most clients do: POST to open a session, one streamed PATCH of the
// whole body, PUT ?digest= to commit it.
func (w *worker) upload(repo string, d digest.Digest, body io.Reader, size int64) error {
	h, err := w.call("POST", w.url("/v2/"+repo+"/blobs/uploads/"), nil, 0, http.StatusAccepted)
	if err != nil {
		return err
	}
	loc, err := w.location(h)
	if err != nil {
		return err
	}
	h, err = w.call("PATCH", loc.String(), body, size, http.StatusAccepted, "Content-Type", "application/octet-stream")
	if err != nil {
		return err
	}
	if loc, err = w.location(h); err != nil {
		return err
	}
	q := loc.Query()
	q.Set("digest", d.String())
	loc.RawQuery = q.Encode()
	_, err = w.call("PUT", loc.String(), http.NoBody, 0, http.StatusCreated, "Content-Type", "application/octet-stream")
	return err
}

// push pushes a blob unless the repository has it (HEAD first, as clients do).
func (w *worker) push(repo string, d digest.Digest, body io.Reader, size int64) error {
	ok, err := w.exists(repo, d)
	if err != nil || ok {
		return err
	}
	return w.upload(repo, d, body, size)
}

func (w *worker) putManifest(repo, ref, mediaType string, body []byte) error {
	_, err := w.call("PUT", w.url("/v2/"+repo+"/manifests/"+ref), bytes.NewReader(body), int64(len(body)), http.StatusCreated, "Content-Type", mediaType)
	return err
}

// fetch GETs path and checks that the body has size bytes and, unless want is "", hashes to want.
func (w *worker) fetch(path, accept string, size int64, want digest.Digest) error {
	req, err := http.NewRequest("GET", w.url(path), nil)
	if err != nil {
		return err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := w.do(req, http.StatusOK)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var dst io.Writer = discard{}
	var h digest.Digester
	if want != "" {
		h = want.Algorithm().Digester()
		dst = h.Hash()
	}
	n, err := io.CopyBuffer(dst, resp.Body, w.buf)
	switch {
	case err != nil:
		return fmt.Errorf("GET %s: read body: %w", path, err)
	case n != size:
		return fmt.Errorf("GET %s: %d bytes, want %d", path, n, size)
	case h != nil && h.Digest() != want:
		return fmt.Errorf("GET %s: content hashes to %s, want %s", path, h.Digest(), want)
	}
	return nil
}

// head HEADs path and wants 200.
func (w *worker) head(path string) error {
	_, err := w.call("HEAD", w.url(path), nil, 0, http.StatusOK)
	return err
}

// discard is io.Discard without ReadFrom, so that io.CopyBuffer uses the worker's buffer.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// trimURL returns the URL without a trailing slash.
func trimURL(s string) string { return strings.TrimRight(s, "/") }
