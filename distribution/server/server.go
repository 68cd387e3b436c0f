package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/content/local"
	"github.com/wharfoci/wharf/distribution/errcode"
	"github.com/wharfoci/wharf/distribution/reference"
	"github.com/wharfoci/wharf/errdef"
)

// DefaultAddr and DefaultRoot are used when neither flags, environment nor config file set them.
const (
	DefaultAddr = "127.0.0.1:5000"
	DefaultRoot = ".wharf/registry"
)

// Config configures a registry. The zero value serves DefaultRoot on DefaultAddr.
type Config struct {
	// Addr is the TCP address to listen on (Serve only).
	Addr string `json:"addr,omitempty"`
	// Root is the storage directory (created if needed).
	Root string `json:"root,omitempty"`
	// LogLevel is debug, info (the default: one access log line per request), warn or error.
	LogLevel string `json:"logLevel,omitempty"`
	// LogFormat is text (the default) or json.
	LogFormat string `json:"logFormat,omitempty"`
	// NoAnonymousMount refuses POST ?mount= without from= (then answered by a new upload).
	NoAnonymousMount bool `json:"noAnonymousMount,omitempty"`
	// ShutdownTimeout bounds the graceful shutdown (default 10s).
	ShutdownTimeout Duration `json:"shutdownTimeout,omitempty"`
	// TLSCert and TLSKey are PEM files of the certificate (chain) and its key: with both set the
	// registry serves HTTPS (TLS 1.2 and later), with neither plain HTTP.
	TLSCert string `json:"tlsCertificate,omitempty"`
	TLSKey  string `json:"tlsKey,omitempty"`
	// UploadMaxAge is how long an upload session may sit without a byte written before Serve
	// removes it (default 168h, as distribution's upload purging; negative: never). Serve
	// purges at start and then every UploadMaxAge/2, at most every 24h.
	UploadMaxAge Duration `json:"uploadMaxAge,omitempty"`
	// MetricsAddr, when set, is where Serve answers GET /metrics (Prometheus text format) on a
	// listener of its own, as distribution's debug address.
	MetricsAddr string `json:"metricsAddr,omitempty"`
	// Auth, when set, requires a bearer token from a token service on every request (see
	// TokenAuth); without it the registry is open to anyone who can reach it.
	Auth *AuthConfig `json:"auth,omitempty"`
	// Logger, when set, receives the logs instead of a handler built from LogLevel and LogFormat.
	Logger *slog.Logger `json:"-"`
}

// AuthConfig chooses how requests are authorized (as distribution's auth section).
type AuthConfig struct {
	Token *TokenAuth `json:"token,omitempty"`
}

// Duration is a time.Duration written as a string ("10s") in the config file.
type Duration time.Duration

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// LoadConfig reads a JSON config file (none when file is ""), then applies the environment:
// WHARF_REGISTRY_ADDR, WHARF_REGISTRY_ROOT, WHARF_REGISTRY_LOG_LEVEL, WHARF_REGISTRY_LOG_FORMAT,
// WHARF_REGISTRY_TLS_CERT, WHARF_REGISTRY_TLS_KEY, WHARF_REGISTRY_METRICS_ADDR.
// Command-line flags are applied by the caller after it.
func LoadConfig(file string) (Config, error) {
	var c Config
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return c, fmt.Errorf("read config: %w", err)
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return c, fmt.Errorf("parse config %s: %w: %v", file, errdef.ErrInvalidArgument, err)
		}
	}
	for env, dst := range map[string]*string{
		"WHARF_REGISTRY_ADDR": &c.Addr, "WHARF_REGISTRY_ROOT": &c.Root,
		"WHARF_REGISTRY_LOG_LEVEL": &c.LogLevel, "WHARF_REGISTRY_LOG_FORMAT": &c.LogFormat,
		"WHARF_REGISTRY_TLS_CERT": &c.TLSCert, "WHARF_REGISTRY_TLS_KEY": &c.TLSKey,
		"WHARF_REGISTRY_METRICS_ADDR": &c.MetricsAddr,
	} {
		if v := os.Getenv(env); v != "" {
			*dst = v
		}
	}
	return c, nil
}

// Registry is the registry's http.Handler. It is safe for concurrent use; only one Registry (in
// any process) may serve a root at a time.
type Registry struct {
	cfg      Config
	root     string
	repos    string
	store    *local.Store
	log      *slog.Logger
	logOut   *bufferedWriter
	lock     *os.File
	anonyMnt bool
	uploads  parkedUploads
	auth     *tokenAuth // nil: no authorization
	metrics  *metrics
}

// New opens the storage under cfg.Root and returns the registry handler. Close releases it.
func New(cfg Config) (*Registry, error) {
	if cfg.Root == "" {
		cfg.Root = DefaultRoot
	}
	var auth *tokenAuth
	if cfg.Auth != nil {
		if cfg.Auth.Token == nil {
			return nil, fmt.Errorf("auth: %w: only token authorization is supported", errdef.ErrInvalidArgument)
		}
		var err error
		if auth, err = loadTokenAuth(cfg.Auth.Token); err != nil {
			return nil, err
		}
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("create registry root: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(root, ".lock"), os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open registry lock: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("lock registry root %s: %w: another registry serves it", root, errdef.ErrInvalidState)
	}
	store, err := local.New(root, local.WithIngestDir(filepath.Join(root, "uploads")))
	if err != nil {
		lock.Close()
		return nil, err
	}
	// We hold the root: what killed pushes left behind can go (uploads stay, to be resumed).
	if err := store.RemoveTemporary(); err != nil {
		store.Close()
		lock.Close()
		return nil, err
	}
	// with authorization, a mount needs a source the client may read: never anonymous
	g := &Registry{cfg: cfg, root: root, repos: filepath.Join(root, "repositories"), store: store, lock: lock,
		anonyMnt: !cfg.NoAnonymousMount && auth == nil, auth: auth}
	g.metrics = newMetrics(g)
	if cfg.Logger != nil {
		g.log = cfg.Logger
	} else {
		g.logOut = newBufferedWriter(os.Stderr)
		g.log = newLogger(g.logOut, cfg.LogLevel, cfg.LogFormat)
	}
	return g, nil
}

// Close releases the store and the root lock, and flushes the logs.
func (g *Registry) Close() error {
	g.uploads.closeAll()
	if g.logOut != nil {
		g.logOut.Close()
	}
	g.store.Close()
	return g.lock.Close()
}

// Logger is the registry's logger.
func (g *Registry) Logger() *slog.Logger { return g.log }

// Serve runs a registry on cfg.Addr until ctx is done, then shuts down gracefully: it stops
// accepting, lets requests in flight finish (up to cfg.ShutdownTimeout) and returns nil.
// ready, when not nil, is called with the listening address.
func Serve(ctx context.Context, cfg Config, ready func(addr net.Addr)) error {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return fmt.Errorf("serve: %w: TLS needs both a certificate and a key", errdef.ErrInvalidArgument)
	}
	var tlsCfg *tls.Config
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("serve: load TLS certificate %s: %w", cfg.TLSCert, err)
		}
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	g, err := New(cfg)
	if err != nil {
		return err
	}
	defer g.Close()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{
		Handler:           g,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       5 * time.Minute,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	g.log.Info("registry listening", "addr", ln.Addr().String(), "root", g.root, "tls", tlsCfg != nil)
	if ready != nil {
		ready(ln.Addr())
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	if cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			srv.Close()
			return fmt.Errorf("listen on %s (metrics): %w", cfg.MetricsAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", g.MetricsHandler())
		msrv := &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second}
		defer msrv.Close()
		g.log.Info("metrics listening", "addr", mln.Addr().String())
		go func() {
			if err := msrv.Serve(mln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("metrics: %w", err)
			}
		}()
	}
	go g.purgeUploads(ctx, time.Duration(cfg.UploadMaxAge))
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	timeout := time.Duration(cfg.ShutdownTimeout)
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	g.log.Info("registry shutting down", "timeout", timeout.String())
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		return fmt.Errorf("shut down: %w", err)
	}
	return nil
}

// DefaultUploadMaxAge is Config.UploadMaxAge's default.
const DefaultUploadMaxAge = 7 * 24 * time.Hour

// purgeUploads removes stale upload sessions (Config.UploadMaxAge) until ctx is done.
func (g *Registry) purgeUploads(ctx context.Context, maxAge time.Duration) {
	if maxAge < 0 {
		return
	}
	if maxAge == 0 {
		maxAge = DefaultUploadMaxAge
	}
	every := min(maxAge/2, 24*time.Hour)
	for {
		n, err := g.store.RemoveStaleIngests(time.Now().Add(-maxAge), false)
		switch {
		case err != nil:
			g.log.Warn("purge stale uploads", "err", err)
		case n > 0:
			g.log.Info("purged stale uploads", "count", n, "maxAge", maxAge.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// ServeHTTP routes a distribution-spec request.
func (g *Registry) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	start := time.Now()
	w := &statusWriter{ResponseWriter: rw}
	rt := parseRoute(r.URL.Path)
	body := &countingBody{ReadCloser: r.Body}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = body
	}
	g.metrics.inFlight.Inc()
	defer func() {
		if p := recover(); p != nil {
			g.log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(p))
			if w.status == 0 {
				errcode.Write(w, errcode.Unknown.New("internal error"))
			}
		}
		g.metrics.inFlight.Dec()
		g.metrics.observe(rt.kind, r.Method, w.status, body.n.Load(), w.bytes, time.Since(start))
		g.accessLog(r, w, start)
	}()
	w.Header().Set("Docker-Distribution-Api-Version", "registry/2.0")
	if rt.kind == routeNone {
		errcode.Write(w, &errcode.Error{Code: errcode.NameUnknown, Message: "no such endpoint: " + r.URL.Path, Status: http.StatusNotFound})
		return
	}
	if rt.kind != routeBase && rt.kind != routeCatalog && reference.ValidateRepository(rt.name) != nil {
		errcode.Write(w, errcode.NameInvalid.Errorf("invalid repository name %q", rt.name))
		return
	}
	if g.auth != nil {
		ar, ok := g.authorize(w, r, rt)
		if !ok {
			return
		}
		r = ar
	}
	switch rt.kind {
	case routeBase:
		if !methodIs(w, r, http.MethodGet, http.MethodHead) {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "2")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			w.Write([]byte("{}"))
		}
	case routeCatalog:
		if methodIs(w, r, http.MethodGet) {
			g.getCatalog(w, r)
		}
	case routeBlob:
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			g.getBlob(w, r, rt)
		case http.MethodDelete:
			g.deleteBlob(w, r, rt)
		default:
			methodNotAllowed(w, "GET, HEAD, DELETE")
		}
	case routeUploads:
		if methodIs(w, r, http.MethodPost) {
			g.startUpload(w, r, rt)
		}
	case routeUpload:
		if !validUploadID(rt.ref) {
			errcode.Write(w, errcode.BlobUploadUnknown.Errorf("upload %q is unknown", rt.ref))
			return
		}
		switch r.Method {
		case http.MethodGet:
			g.uploadStatus(w, r, rt)
		case http.MethodPatch:
			g.patchUpload(w, r, rt)
		case http.MethodPut:
			g.putUpload(w, r, rt)
		case http.MethodDelete:
			g.cancelUpload(w, r, rt)
		default:
			methodNotAllowed(w, "GET, PATCH, PUT, DELETE")
		}
	case routeManifest:
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			g.getManifest(w, r, rt)
		case http.MethodPut:
			g.putManifest(w, r, rt)
		case http.MethodDelete:
			g.deleteManifest(w, r, rt)
		default:
			methodNotAllowed(w, "GET, HEAD, PUT, DELETE")
		}
	case routeTags:
		if methodIs(w, r, http.MethodGet) {
			g.listTags(w, r, rt)
		}
	case routeReferrers:
		if methodIs(w, r, http.MethodGet) {
			g.getReferrers(w, r, rt)
		}
	}
}

func methodIs(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	methodNotAllowed(w, strings.Join(methods, ", "))
	return false
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	errcode.Write(w, &errcode.Error{Code: errcode.Unsupported, Message: "method not allowed", Status: http.StatusMethodNotAllowed})
}

// validDigest checks a digest from a request (content.ValidateDigest).
func (g *Registry) validDigest(d digest.Digest) error { return content.ValidateDigest(d) }

// serverError answers an unexpected failure (I/O): 500 with a generic message, logged.
func (g *Registry) serverError(w http.ResponseWriter, r *http.Request, err error) {
	g.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err.Error())
	errcode.Write(w, errcode.Unknown.New("internal error"))
}

func setInt(h http.Header, k string, v int64) { h.Set(k, strconv.FormatInt(v, 10)) }

func isNotFound(err error) bool { return errors.Is(err, errdef.ErrNotFound) }
