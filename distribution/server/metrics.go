package server

import (
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the registry's Prometheus metrics, on a registry of their own (several servers
// may live in one process): requests by route, method and status, their latency, the bytes
// received and sent, requests in flight and parked upload writers, plus Go's and the process's.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	received *prometheus.CounterVec
	sent     *prometheus.CounterVec
	inFlight prometheus.Gauge
}

func newMetrics(g *Registry) *metrics {
	const ns, sub = "wharf", "registry"
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "http_requests_total",
			Help: "HTTP requests answered, by route, method and status code."}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}}, []string{"route", "method"}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "http_request_bytes_total",
			Help: "Bytes of request bodies read, by route."}, []string{"route"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "http_response_bytes_total",
			Help: "Bytes of response bodies written, by route."}, []string{"route"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "http_requests_in_flight",
			Help: "HTTP requests being answered."}),
	}
	parked := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "upload_writers_parked",
		Help: "Upload sessions whose writer stays open between requests."}, func() float64 { return float64(g.uploads.len()) })
	m.reg.MustRegister(m.requests, m.duration, m.received, m.sent, m.inFlight, parked,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

var routeNames = map[routeKind]string{
	routeNone: "unknown", routeBase: "base", routeCatalog: "catalog", routeBlob: "blob", routeUploads: "uploads",
	routeUpload: "upload", routeManifest: "manifest", routeTags: "tags", routeReferrers: "referrers",
}

// observe records one answered request.
func (m *metrics) observe(kind routeKind, method string, status int, in, out int64, d time.Duration) {
	route := routeNames[kind]
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		method = "other" // a label per arbitrary method would let clients grow the series
	}
	if status == 0 {
		status = http.StatusOK
	}
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route, method).Observe(d.Seconds())
	if in > 0 {
		m.received.WithLabelValues(route).Add(float64(in))
	}
	if out > 0 {
		m.sent.WithLabelValues(route).Add(float64(out))
	}
}

// MetricsHandler serves the registry's metrics in the Prometheus text format (Serve puts it at
// /metrics on Config.MetricsAddr).
func (g *Registry) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(g.metrics.reg, promhttp.HandlerOpts{})
}

// countingBody counts what a handler reads of a request body.
type countingBody struct {
	io.ReadCloser
	n atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}
