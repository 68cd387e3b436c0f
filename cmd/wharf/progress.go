package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/term"

	"github.com/wharfoci/wharf/image"
	imagecopy "github.com/wharfoci/wharf/image/copy"
)

// progressMode is how wharf copy shows its progress on stderr.
type progressMode int

const (
	progressPlain progressMode = iota // a line per finished blob (stderr is not a terminal)
	progressQuiet                     // nothing (--quiet)
	progressJSON                      // a JSON object per finished blob (--json, stderr not a terminal)
	progressBars                      // live bars redrawn in place (stderr is a terminal)
)

// pickProgressMode chooses the mode: --quiet silences; on a terminal a person watches, so bars
// (--json only changes stdout); otherwise a log, as JSON lines with --json.
func pickProgressMode(opts *globalOptions, stderr io.Writer) progressMode {
	switch {
	case opts.Quiet:
		return progressQuiet
	case isTerminal(stderr):
		return progressBars
	case opts.JSON:
		return progressJSON
	}
	return progressPlain
}

// copyProgress receives the copy's progress events (from several goroutines at once), counts
// the blobs for the summary and shows them as its mode says. With bars, a barRenderer's
// goroutine alone writes to the terminal; call close before writing anything else to it.
type copyProgress struct {
	mode progressMode
	w    io.Writer
	bars *barRenderer // progressBars only

	mu              sync.Mutex
	copied, skipped int
	bytes           int64
}

func newCopyProgress(mode progressMode, stderr io.Writer) *copyProgress {
	p := &copyProgress{mode: mode, w: stderr}
	if mode == progressBars {
		p.bars = newBarRenderer(stderr, terminalSize(stderr), 100*time.Millisecond)
	}
	return p
}

// report is the imagecopy.Options.Progress callback. What the copy expects to visit goes into
// the total bar (the copy announces it as it learns of it: nothing below a document the
// destination already has), transfers get a bar each, and every finished blob is counted and
// shown as the mode says.
func (p *copyProgress) report(ev imagecopy.Progress) {
	d := ev.Descriptor
	switch ev.State {
	case imagecopy.Expected:
		if p.bars != nil {
			p.bars.expect(d.Digest, d.Size)
		}
		return
	case imagecopy.Transferring:
		if p.bars != nil {
			p.bars.update(d.Digest, fmt.Sprintf("%-7s %-8s %s", "copying", image.KindName(d.MediaType), shortDigest(d.Digest)), ev.Done, d.Size)
		}
		return
	}
	verb := "copied"
	switch ev.State {
	case imagecopy.Skipped:
		verb = "skipped"
	case imagecopy.Mounted:
		verb = "mounted"
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch ev.State {
	case imagecopy.Skipped:
		p.skipped++
	case imagecopy.Mounted:
		p.copied++
	default:
		p.copied++
		p.bytes += d.Size
	}
	switch p.mode {
	case progressPlain:
		fmt.Fprintln(p.w, blobLine(verb, d))
	case progressJSON:
		b, _ := json.Marshal(blobEvent{Event: verb, MediaType: d.MediaType, Digest: d.Digest, Size: d.Size})
		p.w.Write(append(b, '\n'))
	case progressBars:
		p.bars.finish(d.Digest, blobLine(verb, d), d.Size, ev.State == imagecopy.Copied)
	}
}

// blobEvent is the line `wharf copy --json` prints on stderr (when not a terminal) per blob.
type blobEvent struct {
	Event     string        `json:"event"` // copied, skipped or mounted
	MediaType string        `json:"mediaType"`
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
}

// blobLine is the line logged for a finished blob, on a terminal or not.
func blobLine(verb string, d ocispec.Descriptor) string {
	return fmt.Sprintf("%-7s %-8s %s  %s", verb, image.KindName(d.MediaType), shortDigest(d.Digest), humanBytes(d.Size))
}

// close ends the live display (bars): finished lines are printed, bars erased. Idempotent.
func (p *copyProgress) close() {
	if p.bars != nil {
		p.bars.Close()
	}
}

// terminalSize returns a function giving w's terminal size, read again at every redraw so a
// resized window is followed; 80×24 when it cannot be read.
func terminalSize(w io.Writer) func() (int, int) {
	f, _ := w.(*os.File)
	return func() (int, int) {
		if f != nil {
			if wd, ht, err := term.GetSize(int(f.Fd())); err == nil && wd > 0 && ht > 0 {
				return wd, ht
			}
		}
		return 80, 24
	}
}

// barRenderer draws a bar per transfer in flight and a total bar at the bottom of a terminal,
// below a log of finished lines. Updates only change its state; one goroutine redraws every
// interval (when something changed or bytes are moving), as one write that moves the cursor up
// over the previous bars, prints the new log lines and the bars, and clears what is left below.
// Lines are cut to the terminal's width so that no bar wraps (which would break the count of
// lines to move up over), and only as many bars as the terminal's height allows are shown.
type barRenderer struct {
	w    io.Writer
	size func() (width, height int)
	now  func() time.Time

	mu       sync.Mutex
	start    time.Time
	active   []*bar // in flight, in the order they started
	byKey    map[digest.Digest]*bar
	pending  []string                // finished lines not yet printed
	known    map[digest.Digest]int64 // every blob of the copy known so far, and its size
	finished map[digest.Digest]bool
	doneSize int64 // bytes of the finished blobs, however finished
	moved    int64 // bytes transferred by finished blobs (for the rate)
	drawn    int   // bar lines on the screen, the cursor on the line below them
	dirty    bool
	closed   bool

	once sync.Once
	stop chan struct{}
	exit chan struct{}
}

type bar struct {
	key         digest.Digest
	label       string
	done, total int64
	start       time.Time
}

// newBarRenderer starts a renderer on w. With interval 0 no goroutine is started and redraws
// happen only when paint is called (for tests).
func newBarRenderer(w io.Writer, size func() (int, int), interval time.Duration) *barRenderer {
	r := &barRenderer{
		w: w, size: size, now: time.Now,
		byKey: map[digest.Digest]*bar{}, known: map[digest.Digest]int64{}, finished: map[digest.Digest]bool{},
		stop: make(chan struct{}), exit: make(chan struct{}),
	}
	r.start = r.now()
	if interval <= 0 {
		close(r.exit)
		return r
	}
	go func() {
		defer close(r.exit)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-t.C:
				r.paint()
			}
		}
	}()
	return r
}

// expect adds a blob to the total before it starts.
func (r *barRenderer) expect(key digest.Digest, size int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.known[key]; !ok {
		r.known[key] = size
		r.dirty = true
	}
}

// update sets a transfer's bytes so far, showing its bar from the first call.
func (r *barRenderer) update(key digest.Digest, label string, done, total int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.finished[key] {
		return
	}
	r.known[key] = total
	b := r.byKey[key]
	if b == nil {
		b = &bar{key: key, label: label, total: total, start: r.now()}
		r.byKey[key] = b
		r.active = append(r.active, b)
	}
	b.done = done
	r.dirty = true
}

// finish replaces a transfer's bar (if any) by line in the log above the bars. moved says its
// bytes were transferred (not skipped or mounted), for the rate.
func (r *barRenderer) finish(key digest.Digest, line string, size int64, moved bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.finished[key] {
		return
	}
	r.finished[key] = true
	r.known[key] = size
	r.doneSize += size
	if moved {
		r.moved += size
	}
	if b := r.byKey[key]; b != nil {
		delete(r.byKey, key)
		for i, a := range r.active {
			if a == b {
				r.active = append(r.active[:i], r.active[i+1:]...)
				break
			}
		}
	}
	r.pending = append(r.pending, line)
	r.dirty = true
}

// Close stops the redraws, prints the finished lines still pending and erases the bars. Nothing
// is written to w after it returns.
func (r *barRenderer) Close() {
	r.once.Do(func() {
		close(r.stop)
		<-r.exit
		r.mu.Lock()
		defer r.mu.Unlock()
		r.active, r.byKey = nil, nil
		r.render(false)
		r.closed = true
	})
}

// paint redraws when something changed or bytes are moving (the rates change).
func (r *barRenderer) paint() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || (!r.dirty && len(r.active) == 0) {
		return
	}
	r.render(true)
}

// render writes one frame; withTotal false (Close) leaves no bars at all.
func (r *barRenderer) render(withTotal bool) {
	if !withTotal && r.drawn == 0 && len(r.pending) == 0 {
		return // nothing on the screen to erase or add
	}
	width, height := r.size()
	var buf bytes.Buffer
	if r.drawn > 0 {
		fmt.Fprintf(&buf, "\r\x1b[%dA", r.drawn)
	}
	for _, l := range r.pending {
		buf.WriteString(l)
		buf.WriteString("\x1b[K\n")
	}
	r.pending = r.pending[:0]
	var lines []string
	if withTotal {
		now := r.now()
		// Room for the bars: the terminal's height less the total, a "more" line and the line the
		// cursor rests on.
		room := max(height-3, 1)
		for i, b := range r.active {
			if i == room && len(r.active) > room+1 {
				lines = append(lines, fmt.Sprintf("… and %d more in flight", len(r.active)-room))
				break
			}
			lines = append(lines, barLine(width, b.label, b.done, b.total, rate(b.done, now.Sub(b.start))))
		}
		var total, moved int64 = 0, r.moved
		for _, s := range r.known {
			total += s
		}
		done := r.doneSize
		for _, b := range r.active {
			done += b.done
			moved += b.done
		}
		label := fmt.Sprintf("%-7s %d/%d %s", "total", len(r.finished), len(r.known), plural2(len(r.known), "blob", "blobs"))
		lines = append(lines, barLine(width, label, done, total, rate(moved, now.Sub(r.start))))
	}
	for _, l := range lines {
		buf.WriteString(l)
		buf.WriteString("\x1b[K\n")
	}
	buf.WriteString("\x1b[J")
	r.drawn, r.dirty = len(lines), false
	r.w.Write(buf.Bytes())
}

// rate is n bytes over d, per second.
func rate(n int64, d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(float64(n) / d.Seconds())
}

// The columns of a bar line: label (as wide as a finished line's verb, kind and short digest),
// bar, bytes done and total, rate.
const (
	barLabelWidth = 7 + 1 + 8 + 1 + 12
	barMaxWidth   = 40
	barMinWidth   = 5
)

// barLine lays out one bar line in at most width-1 columns (the last column is left alone: a
// character there wraps on some terminals). The label and bytes always show; the rate and
// then the bar are left out, whole, when the terminal is too narrow for them.
func barLine(width int, label string, done, total, perSec int64) string {
	if len(label) < barLabelWidth {
		label += strings.Repeat(" ", barLabelWidth-len(label))
	}
	label += "  "
	nums := fmt.Sprintf("%9s / %-9s", humanBytes(done), humanBytes(total))
	speed := fmt.Sprintf(" %11s", humanBytes(perSec)+"/s")
	avail := width - 1 - len(label) - len(nums)
	withSpeed := avail >= len(speed)
	if withSpeed {
		avail -= len(speed)
	}
	line := label
	if bw := min(avail-3, barMaxWidth); bw >= barMinWidth {
		line += "[" + drawBar(bw, done, total) + "] "
	}
	line += nums
	if withSpeed {
		line += speed
	}
	return cut(line, width-1)
}

// drawBar is a bar of w cells filled in proportion done/total: "=====>    ".
func drawBar(w int, done, total int64) string {
	fill := w
	if total > 0 && done < total {
		fill = int(float64(w) * float64(done) / float64(total))
	}
	switch {
	case fill >= w:
		return strings.Repeat("=", w)
	case fill <= 0:
		return strings.Repeat(" ", w)
	}
	return strings.Repeat("=", fill-1) + ">" + strings.Repeat(" ", w-fill)
}

// cut shortens s to n characters (runes: "…" is one column).
func cut(s string, n int) string {
	if n < 1 {
		return ""
	}
	rs := []rune(s)
	if len(rs) <= n {
		return s
	}
	return string(rs[:n])
}
