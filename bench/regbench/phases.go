package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// settleTime is the pause, after a sync(2), before each target's run: the previous run's
// writeback does not land in this one's timings.
const settleTime = time.Second

// target is one registry to drive.
type target struct {
	name string
	url  *url.URL
	pid  int // the server process sampled for CPU time and RSS; 0: none
}

// targetList is the repeatable -target NAME=URL[,PID] flag.
type targetList []target

func (l *targetList) String() string {
	var s []string
	for _, t := range *l {
		s = append(s, t.name+"="+t.url.String())
	}
	return strings.Join(s, " ")
}

func (l *targetList) Set(v string) error {
	name, rest, ok := strings.Cut(v, "=")
	if !ok || name == "" || strings.ContainsAny(name, " \t,") {
		return fmt.Errorf("want NAME=URL[,PID], not %q", v)
	}
	raw, pidStr, hasPid := strings.Cut(rest, ",")
	u, err := url.Parse(trimURL(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("target %s: not an http(s) URL: %q", name, raw)
	}
	t := target{name: name, url: u}
	if hasPid {
		if t.pid, err = strconv.Atoi(pidStr); err != nil || t.pid < 0 {
			return fmt.Errorf("target %s: bad pid %q", name, pidStr)
		}
	}
	for _, o := range *l {
		if o.name == name {
			return fmt.Errorf("target %s given twice", name)
		}
	}
	*l = append(*l, t)
	return nil
}

// rotated returns the targets in the order of repetition rep (1-based): each repetition starts
// one target further, so with two targets each goes first every other time.
func (l targetList) rotated(rep int) []target {
	k := (rep - 1) % len(l)
	return append(append([]target{}, l[k:]...), l[:k]...)
}

// row is the result of one phase against one target: a JSON line of the rows file.
type row struct {
	Rep        int     `json:"rep"`
	Target     string  `json:"target"`
	PID        int     `json:"pid"` // the server process sampled; 0: none (no CPU time or RSS)
	Phase      string  `json:"phase"`
	Unit       string  `json:"unit"` // MB/s or op/s: what Rate measures
	Clients    int     `json:"clients"`
	Ops        int     `json:"ops"`
	Bytes      int64   `json:"bytes"`
	Requests   int64   `json:"requests"`
	Wall       float64 `json:"wall_s"`
	Rate       float64 `json:"rate"` // MB/s (10^6 bytes) or operations/s, of the operations that succeeded
	Errors     int64   `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	ServerCPU  float64 `json:"server_cpu_s"`
	ServerRSS  float64 `json:"server_rss_max_mb"`  // highest VmRSS sampled during the phase
	ServerPeak float64 `json:"server_peak_rss_mb"` // VmHWM at the end of the phase
	ClientCPU  float64 `json:"client_cpu_s"`
	LoadAvg    string  `json:"loadavg_before"`
}

// phase is one measured step: ops operations spread over clients workers.
type phase struct {
	name    string
	clients int
	ops     int
	unit    string
	// op performs operation i and returns the bytes it moved (for MB/s).
	op func(w *worker, i int) (int64, error)
}

// runConfig is what a run needs beyond its targets.
type runConfig struct {
	data    *dataset
	clients int
	verify  bool
	rep     int
	prefix  string // repositories are PREFIX/big, PREFIX/slices, PREFIX/small1, PREFIX/small16
	settle  time.Duration
	log     io.Writer
}

// phases returns the phases in the order they run; later ones read what earlier ones pushed.
//
//	push-big-1     1 client pushes the big blob (POST, one streamed PATCH, PUT ?digest=)
//	pull-big-1     1 client pulls it
//	push-big-16    C clients push its 16 slices, each a blob of its own (SIZE_MB in all)
//	pull-big-16    C clients pull the whole big blob at once (C x SIZE_MB)
//	push-small-1   1 client pushes SMALL_N images: for the layer and the config HEAD then
//	               upload, then the manifest by tag
//	push-small-16  C clients push SMALL_N other images
//	pull-small-1   1 client pulls the first SMALL_N images (manifest by tag, config, layer)
//	pull-small-16  C clients pull the other SMALL_N
//	head-tagged-16 C clients HEAD every blob of the repository holding SMALL_N tags
//	head-empty-16  C clients HEAD the big blob as often, in a repository without manifests
func (c runConfig) phases() []phase {
	d := c.data
	imgs := d.smallImages()
	n := len(imgs) / 2
	repo := func(s string) string { return c.prefix + "/" + s }
	bigVerify := d.Big
	if !c.verify {
		bigVerify = ""
	}
	// a failed read makes every small phase fail, saying why
	small, smallErr := os.ReadFile(filepath.Join(d.dir, "small.bin"))
	smallRepo := func(i int) string {
		if i < n {
			return repo("small1")
		}
		return repo("small16")
	}
	pushImage := func(w *worker, i int) (int64, error) {
		im := imgs[i]
		if smallErr != nil {
			return 0, fmt.Errorf("read small layers: %w", smallErr)
		}
		r := smallRepo(i)
		if err := w.push(r, im.layer.Digest, bytes.NewReader(small[im.layerOff:im.layerOff+im.layerLen]), im.layerLen); err != nil {
			return 0, err
		}
		if err := w.push(r, im.config.Digest, bytes.NewReader(im.configBody), im.config.Size); err != nil {
			return 0, err
		}
		return im.layerLen, w.putManifest(r, tagOf(i), mediaTypeManifest, im.manifest)
	}
	pullImage := func(w *worker, i int) (int64, error) {
		im := imgs[i]
		r := smallRepo(i)
		if err := w.fetch("/v2/"+r+"/manifests/"+tagOf(i), mediaTypeManifest, int64(len(im.manifest)), im.manifestDigest); err != nil {
			return 0, err
		}
		if err := w.fetch("/v2/"+r+"/blobs/"+im.config.Digest.String(), "", im.config.Size, im.config.Digest); err != nil {
			return 0, err
		}
		return im.layerLen, w.fetch("/v2/"+r+"/blobs/"+im.layer.Digest.String(), "", im.layerLen, im.layer.Digest)
	}
	openBig := func(off, size int64, f func(io.Reader) error) error {
		fh, err := os.Open(d.bigPath())
		if err != nil {
			return err
		}
		defer fh.Close()
		if _, err := fh.Seek(off, io.SeekStart); err != nil {
			return err
		}
		// an *io.LimitedReader of an *os.File: net/http can send it with sendfile(2)
		return f(io.LimitReader(fh, size))
	}
	C := c.clients
	return []phase{
		{"push-big-1", 1, 1, "MB/s", func(w *worker, _ int) (int64, error) {
			return d.BigSize, openBig(0, d.BigSize, func(r io.Reader) error { return w.upload(repo("big"), d.Big, r, d.BigSize) })
		}},
		{"pull-big-1", 1, 1, "MB/s", func(w *worker, _ int) (int64, error) {
			return d.BigSize, w.fetch("/v2/"+repo("big")+"/blobs/"+d.Big.String(), "", d.BigSize, bigVerify)
		}},
		{"push-big-16", C, nSlices, "MB/s", func(w *worker, i int) (int64, error) {
			sz := d.sliceSize()
			return sz, openBig(int64(i)*sz, sz, func(r io.Reader) error { return w.upload(repo("slices"), d.Slices[i], r, sz) })
		}},
		{"pull-big-16", C, C, "MB/s", func(w *worker, _ int) (int64, error) {
			return d.BigSize, w.fetch("/v2/"+repo("big")+"/blobs/"+d.Big.String(), "", d.BigSize, bigVerify)
		}},
		{"push-small-1", 1, n, "op/s", func(w *worker, i int) (int64, error) { return pushImage(w, i) }},
		{"push-small-16", C, n, "op/s", func(w *worker, i int) (int64, error) { return pushImage(w, n+i) }},
		{"pull-small-1", 1, n, "op/s", func(w *worker, i int) (int64, error) { return pullImage(w, i) }},
		{"pull-small-16", C, n, "op/s", func(w *worker, i int) (int64, error) { return pullImage(w, n+i) }},
		{"head-tagged-16", C, 2 * n, "op/s", func(w *worker, i int) (int64, error) {
			im := imgs[n+i/2]
			dg := im.layer.Digest
			if i%2 == 1 {
				dg = im.config.Digest
			}
			return 0, w.head("/v2/" + repo("small16") + "/blobs/" + dg.String())
		}},
		{"head-empty-16", C, 2 * n, "op/s", func(w *worker, _ int) (int64, error) {
			return 0, w.head("/v2/" + repo("big") + "/blobs/" + d.Big.String())
		}},
	}
}

func tagOf(i int) string { return fmt.Sprintf("img-%05d", i) }

// runAll runs every phase against each target in turn (after a sync and the settle pause) and
// writes one JSON row per target and phase to out. A phase's failed operations are counted in
// its row, not returned: the error is only for what stops the run.
func runAll(c runConfig, targets []target, out io.Writer) error {
	phases := c.phases()
	enc := json.NewEncoder(out)
	for _, t := range targets {
		if t.pid > 0 && procName(t.pid) == "" {
			return fmt.Errorf("target %s: no process %d to sample", t.name, t.pid)
		}
		if err := ping(t); err != nil {
			return err
		}
		syscall.Sync()
		time.Sleep(c.settle)
		fmt.Fprintf(c.log, "regbench: rep %d: %s (%s, pid %d %s)\n", c.rep, t.name, t.url, t.pid, procName(t.pid))
		for _, p := range phases {
			r := runPhase(t, p)
			r.Rep = c.rep
			if err := enc.Encode(r); err != nil {
				return fmt.Errorf("write row: %w", err)
			}
			note := ""
			if r.Errors > 0 {
				note = fmt.Sprintf("  %d errors: %.200s", r.Errors, r.FirstError)
			}
			fmt.Fprintf(c.log, "  %-15s %8.0f ms %10.1f %s  server cpu %.2f s%s\n", p.name, r.Wall*1000, r.Rate, p.unit, r.ServerCPU, note)
		}
	}
	return nil
}

// ping checks that a registry answers GET /v2/ at the target's URL (200, or 401 for one that
// wants credentials, which the phases will then report as errors).
func ping(t target) error {
	w := newWorker(t.url)
	defer w.close()
	w.hc.Timeout = 5 * time.Second
	resp, err := w.hc.Get(w.url("/v2/"))
	if err != nil {
		return fmt.Errorf("target %s: ping: %w", t.name, err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 && resp.StatusCode != 401 {
		return fmt.Errorf("target %s: GET %s/v2/: status %d, want a registry", t.name, t.url, resp.StatusCode)
	}
	return nil
}

// runPhase runs p against t: p.clients workers take the operations in turn; the server's RSS is
// sampled every 20 ms meanwhile.
func runPhase(t target, p phase) row {
	la, _ := os.ReadFile("/proc/loadavg")
	r := row{Target: t.name, PID: t.pid, Phase: p.name, Unit: p.unit, Clients: p.clients, Ops: p.ops, LoadAvg: strings.TrimSpace(string(la))}
	workers := make([]*worker, p.clients)
	for i := range workers {
		workers[i] = newWorker(t.url)
	}
	var maxRSS atomic.Int64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if s := sampleProc(t.pid); s.rssKB > maxRSS.Load() {
				maxRSS.Store(s.rssKB)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()

	var next, errs, bytesDone, okOps atomic.Int64
	var firstErr atomic.Value
	before, cli0 := sampleProc(t.pid), selfCPU()
	start := time.Now()
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= p.ops {
					return
				}
				n, err := p.op(w, i)
				if err != nil {
					if errs.Add(1) == 1 {
						firstErr.Store(err.Error())
					}
					continue
				}
				okOps.Add(1)
				bytesDone.Add(n)
			}
		}()
	}
	wg.Wait()
	r.Wall = time.Since(start).Seconds()
	after, cli1 := sampleProc(t.pid), selfCPU()
	close(stop)
	sampler.Wait()
	for _, w := range workers {
		r.Requests += w.reqs
		w.close()
	}
	r.Bytes, r.Errors = bytesDone.Load(), errs.Load()
	if v, ok := firstErr.Load().(string); ok {
		r.FirstError = v
	}
	if p.unit == "MB/s" {
		r.Rate = float64(r.Bytes) / 1e6 / r.Wall
	} else {
		r.Rate = float64(okOps.Load()) / r.Wall
	}
	r.ServerCPU = after.cpu - before.cpu
	r.ServerRSS = float64(max(maxRSS.Load(), after.rssKB)) / 1024
	r.ServerPeak = float64(after.peakRSSK) / 1024
	r.ClientCPU = cli1 - cli0
	return r
}
