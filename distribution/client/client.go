package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wharfoci/wharf/distribution/errcode"
	"github.com/wharfoci/wharf/distribution/reference"
	"github.com/wharfoci/wharf/errdef"
)

// DefaultChunkSize is the PATCH size of a chunked upload when Options.ChunkSize is negative.
const DefaultChunkSize = 16 << 20

// Options configure a Client. The zero value talks HTTPS with the system roots to every host
// but localhost, anonymously, uploads monolithically and retries 4 times.
type Options struct {
	// PlainHTTP speaks plain HTTP to every host. PlainHTTPHosts always get plain HTTP;
	// loopback hosts (localhost, 127.0.0.0/8, ::1) get HTTPS when they speak it, else plain
	// HTTP, as docker does.
	PlainHTTP bool
	// PlainHTTPHosts are hosts ("host:port" as written in references) spoken to over HTTP.
	PlainHTTPHosts []string
	// Insecure skips TLS certificate verification and falls back to plain HTTP when a host
	// does not speak TLS.
	Insecure bool
	// CACertFile is a PEM file of certificate authorities trusted in addition to the system's.
	CACertFile string
	// Credentials returns the credentials for a registry host (nil: anonymous). See
	// Credentials.Get for the one reading docker and containers configuration.
	Credentials func(host string) (Credential, error)
	// ChunkSize > 0 uploads blobs in PATCH requests of at most that many bytes (each kept in
	// memory so that a failed chunk is sent again); 0 uploads each blob in one request; a
	// negative value means DefaultChunkSize.
	ChunkSize int64
	// MaxRetries bounds the retries of one request on 5xx, 429 and connection errors, and the
	// Range resumptions of one blob download (default 4; negative: none).
	MaxRetries int
	// RetryBackoff is the first retry's delay, doubled at each retry (default 250ms).
	RetryBackoff time.Duration
	// UserAgent is sent with every request (default "wharf").
	UserAgent string
	// Transport replaces the HTTP transport (tests); TLS options are then ignored.
	Transport http.RoundTripper
}

// Client talks to registries. It holds the connections, the scheme learned for each host and
// the cached tokens; it is safe for concurrent use and meant to be shared by every Repository
// of one command.
type Client struct {
	opts Options
	hc   *http.Client
	bare *http.Client // no credentials ever: foreign-layer urls

	mu      sync.Mutex
	auth    map[string]*challenge // host → the last challenge it sent
	tokens  map[string]token      // host + " " + scopes → bearer token
	schemes map[string]string     // host → "https" or "http" once known
	creds   map[string]Credential // host → credentials, once asked for
}

// New returns a client with opts.
func New(opts Options) (*Client, error) {
	if opts.MaxRetries == 0 {
		opts.MaxRetries = 4
	} else if opts.MaxRetries < 0 {
		opts.MaxRetries = 0
	}
	if opts.RetryBackoff <= 0 {
		opts.RetryBackoff = 250 * time.Millisecond
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "wharf"
	}
	if opts.ChunkSize < 0 {
		opts.ChunkSize = DefaultChunkSize
	}
	rt := opts.Transport
	if rt == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 32
		tr.ForceAttemptHTTP2 = true
		tr.DisableCompression = true // blobs are compressed already; gzip transfer breaks Range
		tr.WriteBufferSize = 256 << 10
		tr.ReadBufferSize = 256 << 10
		tlsConf := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: opts.Insecure}
		if opts.CACertFile != "" {
			pool, err := x509.SystemCertPool()
			if err != nil || pool == nil {
				pool = x509.NewCertPool()
			}
			pem, err := os.ReadFile(opts.CACertFile)
			if err != nil {
				return nil, fmt.Errorf("read CA certificates: %w", err)
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("read CA certificates %s: %w: no PEM certificate", opts.CACertFile, errdef.ErrInvalidArgument)
			}
			tlsConf.RootCAs = pool
		}
		tr.TLSClientConfig = tlsConf
		rt = tr
	}
	c := &Client{opts: opts, auth: map[string]*challenge{}, tokens: map[string]token{}, schemes: map[string]string{}, creds: map[string]Credential{}}
	c.hc = &http.Client{Transport: rt, CheckRedirect: checkRedirect}
	c.bare = &http.Client{Transport: rt, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		req.Header.Del("Authorization")
		return nil
	}}
	return c, nil
}

// checkRedirect follows up to 10 redirects and drops the credentials when a redirect leaves
// the host they were meant for (a blob store behind the registry, say).
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if req.URL.Host != via[0].URL.Host || req.URL.Scheme != via[0].URL.Scheme {
		req.Header.Del("Authorization")
	}
	return nil
}

// Endpoint returns the host requests for a registry domain go to: Docker Hub's API lives at
// registry-1.docker.io.
func Endpoint(domain string) string {
	if domain == reference.DefaultDomain || domain == "index.docker.io" {
		return "registry-1.docker.io"
	}
	return domain
}

func (c *Client) scheme(host string) string {
	c.mu.Lock()
	s, ok := c.schemes[host]
	c.mu.Unlock()
	if ok {
		return s
	}
	if c.opts.PlainHTTP {
		return "http"
	}
	for _, h := range c.opts.PlainHTTPHosts {
		if h == host {
			return "http"
		}
	}
	return "https"
}

// notTLS reports whether a TLS connection failed because the server speaks plain HTTP.
func notTLS(err error) bool {
	s := err.Error()
	return strings.Contains(s, "server gave HTTP response to HTTPS client") || strings.Contains(s, "first record does not look like a TLS handshake")
}

func isLoopback(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.Trim(h, "[]")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// request is one API call. body, when set, is sent again on a retry; stream is sent once.
type request struct {
	method  string
	host    string
	path    string // with the query
	url     string // absolute URL (an upload Location), instead of host+path
	header  http.Header
	body    []byte
	stream  io.Reader
	length  int64 // of stream; -1 unknown
	scopes  []string
	noRetry bool
}

func (r *request) target(scheme string) string {
	if r.url != "" {
		return r.url
	}
	return scheme + "://" + r.host + r.path
}

// do sends r: it answers authentication challenges, retries on 429, 5xx and connection errors
// with exponential backoff (only for requests whose body can be sent again) and returns the
// response whatever its status.
func (c *Client) do(ctx context.Context, r *request) (*http.Response, error) {
	retries := c.opts.MaxRetries
	if r.stream != nil || r.noRetry {
		retries = 0
	}
	authTried := false
	for attempt := 0; ; attempt++ {
		scheme := c.scheme(r.host)
		req, err := http.NewRequestWithContext(ctx, r.method, r.target(scheme), nil)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w: %v", r.method, r.path, errdef.ErrInvalidArgument, err)
		}
		for k, v := range r.header {
			req.Header[k] = v
		}
		req.Header.Set("User-Agent", c.opts.UserAgent)
		switch {
		case r.stream != nil:
			req.Body = io.NopCloser(r.stream)
			req.ContentLength = r.length
			if r.length == 0 {
				req.Body = http.NoBody
			}
		case r.body != nil:
			req.Body = io.NopCloser(bytes.NewReader(r.body))
			req.ContentLength = int64(len(r.body))
			req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(r.body)), nil }
		}
		if req.URL.Host == r.host {
			if err := c.authorize(ctx, req, r.host, r.scopes); err != nil {
				return nil, err
			}
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, context.Cause(ctx)
			}
			if (c.opts.Insecure || isLoopback(r.host)) && scheme == "https" && notTLS(err) {
				c.mu.Lock()
				c.schemes[r.host] = "http"
				c.mu.Unlock()
				if r.stream == nil {
					attempt--
					continue
				}
			}
			if attempt < retries && retryable(err) {
				if err := c.sleep(ctx, attempt, ""); err != nil {
					return nil, err
				}
				continue
			}
			return nil, fmt.Errorf("%s %s: %w: %w", r.method, redact(req), errdef.ErrUnavailable, err)
		}
		if resp.StatusCode == http.StatusUnauthorized && !authTried && r.stream == nil {
			authTried = true
			ch := parseChallenge(resp.Header.Values("WWW-Authenticate"))
			drain(resp)
			if ch == nil {
				return nil, fmt.Errorf("%s %s: %w: 401 without a WWW-Authenticate challenge", r.method, redact(req), errdef.ErrUnauthorized)
			}
			if err := c.answer(ctx, r.host, ch, r.scopes); err != nil {
				return nil, fmt.Errorf("%s %s: %w", r.method, redact(req), err)
			}
			attempt--
			continue
		}
		if attempt < retries && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented) {
			ra := resp.Header.Get("Retry-After")
			drain(resp)
			if err := c.sleep(ctx, attempt, ra); err != nil {
				return nil, err
			}
			continue
		}
		return resp, nil
	}
}

// sleep waits before retry attempt+1: Retry-After when the server said, else the backoff
// doubled at each attempt, with jitter, capped at 10s.
func (c *Client) sleep(ctx context.Context, attempt int, retryAfter string) error {
	d := c.opts.RetryBackoff << attempt
	if s, err := strconv.Atoi(retryAfter); err == nil && s >= 0 {
		d = time.Duration(s) * time.Second
	}
	d = d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
	if d > 10*time.Second {
		d = 10 * time.Second
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// retryable reports whether a transport error is worth another attempt: resets, refused or
// dropped connections, timeouts.
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNABORTED)
}

func redact(req *http.Request) string { return req.URL.Redacted() }

// drain discards what is left of a response body (so the connection is reused) and closes it.
func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// responseError turns a failed response into an error naming what was asked, with the spec
// error codes decoded by errcode (errors.Is finds the errdef class).
func responseError(resp *http.Response, what string) error {
	defer resp.Body.Close()
	return fmt.Errorf("%s: %w", what, errcode.FromResponse(resp))
}
