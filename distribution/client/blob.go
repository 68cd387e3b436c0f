package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/errdef"
)

// blobReader reads a blob, resuming with "Range: bytes=N-" when the connection breaks.
type blobReader struct {
	repo    *Repository
	ctx     context.Context
	desc    ocispec.Descriptor
	body    io.ReadCloser
	off     int64
	resumes int
}

func (b *blobReader) what() string { return fmt.Sprintf("fetch blob %s@%s", b.repo, b.desc.Digest) }

func (b *blobReader) open() error {
	req := &request{method: http.MethodGet, host: b.repo.host, path: b.repo.path("blobs", b.desc.Digest.String()), scopes: []string{pullScope(b.repo.Name)}}
	if b.off > 0 {
		req.header = http.Header{"Range": {"bytes=" + strconv.FormatInt(b.off, 10) + "-"}}
	}
	resp, err := b.repo.client.do(b.ctx, req)
	if err != nil {
		return fmt.Errorf("%s: %w", b.what(), err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		if resp.ContentLength >= 0 && resp.ContentLength != b.desc.Size {
			drain(resp)
			return fmt.Errorf("%s: %w: the registry sends %d bytes, descriptor says %d", b.what(), errdef.ErrSizeMismatch, resp.ContentLength, b.desc.Size)
		}
		if b.off > 0 { // the registry ignored Range: skip what was read already
			if _, err := io.CopyN(io.Discard, resp.Body, b.off); err != nil {
				resp.Body.Close()
				return fmt.Errorf("%s: %w: %w", b.what(), errdef.ErrUnavailable, err)
			}
		}
	case http.StatusPartialContent:
		start, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != b.off || (total >= 0 && total != b.desc.Size) {
			drain(resp)
			return fmt.Errorf("%s: %w: asked for bytes %d-, got Content-Range %q", b.what(), errdef.ErrSizeMismatch, b.off, resp.Header.Get("Content-Range"))
		}
	default:
		return responseError(resp, b.what())
	}
	b.body = resp.Body
	return nil
}

// parseContentRange parses "bytes START-END/TOTAL" (TOTAL may be "*", returned as -1).
func parseContentRange(s string) (start, total int64, ok bool) {
	s, found := strings.CutPrefix(strings.TrimSpace(s), "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, tot, found := strings.Cut(s, "/")
	if !found {
		return 0, 0, false
	}
	a, b, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	first, err := strconv.ParseUint(a, 10, 63)
	if err != nil {
		return 0, 0, false
	}
	end, err := strconv.ParseUint(b, 10, 63)
	if err != nil || end < first {
		return 0, 0, false
	}
	total = -1
	if tot != "*" {
		t, err := strconv.ParseUint(tot, 10, 63)
		if err != nil || t <= end {
			return 0, 0, false
		}
		total = int64(t)
	}
	return int64(first), total, true
}

func (b *blobReader) Read(p []byte) (int, error) {
	for {
		left := b.desc.Size - b.off
		if left <= 0 {
			return 0, io.EOF
		}
		if int64(len(p)) > left {
			p = p[:left]
		}
		if b.body == nil {
			if err := b.open(); err != nil {
				return 0, err
			}
		}
		n, err := b.body.Read(p)
		b.off += int64(n)
		if err == io.EOF && b.off < b.desc.Size {
			err = io.ErrUnexpectedEOF
		}
		if err == nil || err == io.EOF {
			if b.off == b.desc.Size {
				return n, io.EOF
			}
			return n, nil
		}
		// The connection broke: resume from b.off.
		b.body.Close()
		b.body = nil
		if b.ctx.Err() != nil {
			return n, context.Cause(b.ctx)
		}
		if b.resumes >= b.repo.client.opts.MaxRetries {
			return n, fmt.Errorf("%s: %w: connection lost at byte %d of %d after %d resumptions: %w", b.what(), errdef.ErrUnavailable, b.off, b.desc.Size, b.resumes, err)
		}
		b.resumes++
		if serr := b.repo.client.sleep(b.ctx, b.resumes-1, ""); serr != nil {
			return n, serr
		}
		if n > 0 {
			return n, nil
		}
	}
}

func (b *blobReader) Close() error {
	if b.body != nil {
		err := b.body.Close()
		b.body = nil
		return err
	}
	return nil
}

// fetchURLs fetches a foreign layer from the urls of its descriptor: plain GETs with no
// credentials (they belong to the registry, not to whoever hosts the layer).
func (r *Repository) fetchURLs(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	var errs []error
	for _, u := range d.URLs {
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") {
			errs = append(errs, fmt.Errorf("%q: %w: not an http(s) URL", u, errdef.ErrInvalidArgument))
			continue
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, pu.String(), nil)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		req.Header.Set("User-Agent", r.client.opts.UserAgent)
		resp, err := r.client.bare.Do(req)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if resp.StatusCode != http.StatusOK || (resp.ContentLength >= 0 && resp.ContentLength != d.Size) {
			drain(resp)
			errs = append(errs, fmt.Errorf("GET %s: status %d, %d bytes", pu.Redacted(), resp.StatusCode, resp.ContentLength))
			continue
		}
		return struct {
			io.Reader
			io.Closer
		}{io.LimitReader(resp.Body, d.Size), resp.Body}, nil
	}
	return nil, fmt.Errorf("fetch foreign layer %s: %w: %w", d.Digest, errdef.ErrNotFound, errors.Join(errs...))
}

// holdback passes through a verified stream but keeps its last bytes until the verifying
// reader has confirmed size and digest: when the content is wrong the request body ends
// short and the registry never commits it.
type holdback struct {
	v    io.Reader
	left int64
	err  error
	sent int64
}

func (h *holdback) Read(p []byte) (int, error) {
	if h.err != nil {
		return 0, h.err
	}
	if h.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > h.left {
		p = p[:h.left]
	}
	n, err := h.v.Read(p)
	h.left -= int64(n)
	if err != nil && err != io.EOF {
		h.err = err
		return 0, err
	}
	if err == io.EOF && h.left > 0 {
		h.err = io.ErrUnexpectedEOF
		return 0, h.err
	}
	if h.left == 0 && err == nil {
		var one [1]byte
		if m, ferr := h.v.Read(one[:]); m > 0 || ferr != io.EOF {
			if ferr == nil || ferr == io.EOF {
				ferr = fmt.Errorf("%w: content is longer than its descriptor", errdef.ErrSizeMismatch)
			}
			h.err = ferr
			return 0, ferr
		}
	}
	h.sent += int64(n)
	return n, nil
}

// pushBlob uploads a blob: POST for a session, then one PUT ?digest= with the content
// (monolithic) or PATCHes of ChunkSize bytes and an empty PUT (chunked).
func (r *Repository) pushBlob(ctx context.Context, d ocispec.Descriptor, rd io.Reader) error {
	what := fmt.Sprintf("push blob %s@%s", r, d.Digest)
	if !content.Verifies(rd, d) { // image/copy hands over verified readers already
		rd = content.NewVerifyReader(rd, d)
	}
	hb := &holdback{v: rd, left: d.Size}
	if d.Size == 0 {
		if _, err := hb.Read(nil); err != nil && err != io.EOF {
			return fmt.Errorf("%s: %w", what, err)
		}
		var one [1]byte
		if n, err := hb.v.Read(one[:]); n > 0 || err != io.EOF {
			if err == nil || err == io.EOF {
				err = errdef.ErrSizeMismatch
			}
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	scopes := []string{pushScope(r.Name)}
	resp, err := r.client.do(ctx, &request{method: http.MethodPost, host: r.host, path: "/v2/" + r.Name + "/blobs/uploads/", scopes: scopes})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if resp.StatusCode != http.StatusAccepted {
		return responseError(resp, what)
	}
	drain(resp)
	loc, err := r.location(resp)
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			if resp, err := r.client.do(context.WithoutCancel(ctx), &request{method: http.MethodDelete, host: r.host, url: loc, scopes: scopes, noRetry: true}); err == nil {
				drain(resp)
			}
		}
	}()
	chunk := r.client.opts.ChunkSize
	if chunk > 0 && d.Size > chunk {
		if loc, err = r.uploadChunks(ctx, loc, hb, chunk, scopes, what); err != nil {
			return err
		}
		resp, err = r.client.do(ctx, &request{method: http.MethodPut, host: r.host, url: withDigest(loc, d), scopes: scopes,
			header: http.Header{"Content-Type": {"application/octet-stream"}}, body: []byte{}})
	} else {
		resp, err = r.client.do(ctx, &request{method: http.MethodPut, host: r.host, url: withDigest(loc, d), scopes: scopes,
			header: http.Header{"Content-Type": {"application/octet-stream"}}, stream: hb, length: d.Size})
	}
	if hb.err != nil {
		if resp != nil {
			drain(resp)
		}
		return fmt.Errorf("%s: %w", what, hb.err)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		return responseError(resp, what)
	}
	drain(resp)
	committed = true
	if h := resp.Header.Get("Docker-Content-Digest"); h != "" && h != d.Digest.String() {
		return fmt.Errorf("%s: %w: the registry stored it as %s", what, errdef.ErrDigestMismatch, h)
	}
	return nil
}

func withDigest(loc string, d ocispec.Descriptor) string {
	u, err := url.Parse(loc)
	if err != nil {
		return loc
	}
	q := u.Query()
	q.Set("digest", d.Digest.String())
	u.RawQuery = q.Encode()
	return u.String()
}

// uploadChunks sends the content in PATCHes of at most chunk bytes and returns the last
// Location. A chunk that fails is sent again from the offset the registry reports.
func (r *Repository) uploadChunks(ctx context.Context, loc string, hb *holdback, chunk int64, scopes []string, what string) (string, error) {
	buf := make([]byte, chunk)
	var off int64
	for {
		n, rerr := io.ReadFull(hb, buf)
		if rerr != nil && rerr != io.EOF && rerr != io.ErrUnexpectedEOF {
			return "", fmt.Errorf("%s: %w", what, rerr)
		}
		if hb.err != nil {
			return "", fmt.Errorf("%s: %w", what, hb.err)
		}
		data := buf[:n]
		for attempt := 0; len(data) > 0; attempt++ {
			resp, err := r.client.do(ctx, &request{method: http.MethodPatch, host: r.host, url: loc, scopes: scopes, noRetry: true,
				header: http.Header{"Content-Type": {"application/octet-stream"},
					"Content-Range": {fmt.Sprintf("%d-%d", off, off+int64(len(data))-1)}},
				body: data})
			if err == nil && resp.StatusCode == http.StatusAccepted {
				drain(resp)
				if loc, err = r.location(resp); err != nil {
					return "", err
				}
				off += int64(len(data))
				break
			}
			if err == nil {
				if resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
					return "", responseError(resp, what)
				}
				err = responseError(resp, what)
			}
			if attempt >= r.client.opts.MaxRetries {
				return "", fmt.Errorf("%s: chunk at %d: %w", what, off, err)
			}
			if serr := r.client.sleep(ctx, attempt, ""); serr != nil {
				return "", serr
			}
			// Ask where the upload stands and send what the registry lacks.
			got, serr := r.uploadOffset(ctx, loc, scopes)
			if serr != nil {
				return "", fmt.Errorf("%s: %w (after %v)", what, serr, err)
			}
			if got < off || got > off+int64(len(data)) {
				return "", fmt.Errorf("%s: %w: the registry holds %d bytes, %d were sent", what, errdef.ErrInvalidState, got, off)
			}
			data = data[got-off:]
			off = got
		}
		if rerr != nil { // EOF: the last chunk was sent
			return loc, nil
		}
	}
}

// uploadOffset asks the registry how many bytes an upload holds (GET Location → Range 0-N).
func (r *Repository) uploadOffset(ctx context.Context, loc string, scopes []string) (int64, error) {
	resp, err := r.client.do(ctx, &request{method: http.MethodGet, host: r.host, url: loc, scopes: scopes})
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		return 0, responseError(resp, "upload status")
	}
	drain(resp)
	rng := resp.Header.Get("Range")
	if rng == "" {
		return 0, nil
	}
	_, end, ok := strings.Cut(strings.TrimPrefix(rng, "bytes="), "-")
	if !ok {
		return 0, fmt.Errorf("upload status: %w: Range %q", errdef.ErrInvalidArgument, rng)
	}
	e, err := strconv.ParseInt(end, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("upload status: %w: Range %q", errdef.ErrInvalidArgument, rng)
	}
	return e + 1, nil
}
