package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	imagecopy "github.com/wharfoci/wharf/image/copy"
	"github.com/wharfoci/wharf/image/layout"
)

// fakeTerm is a terminal of a fixed width that interprets what the renderer writes: text,
// \r, \n, and the CSI sequences cursor up (A), erase to end of line (K) and of screen (J).
type fakeTerm struct {
	t             *testing.T
	width, height int
	rows          [][]rune
	row, col      int
	writes        int
	wrapped       bool
}

func (f *fakeTerm) size() (int, int) { return f.width, f.height }

func (f *fakeTerm) Write(p []byte) (int, error) {
	f.writes++
	rs := []rune(string(p))
	for i := 0; i < len(rs); i++ {
		for f.row >= len(f.rows) {
			f.rows = append(f.rows, nil)
		}
		switch c := rs[i]; c {
		case '\r':
			f.col = 0
		case '\n':
			f.row, f.col = f.row+1, 0
		case 0x1b:
			if i+1 >= len(rs) || rs[i+1] != '[' {
				f.t.Fatalf("lone escape in %q", p)
			}
			j := i + 2
			for j < len(rs) && rs[j] >= '0' && rs[j] <= '9' {
				j++
			}
			n := 1
			if j > i+2 {
				n, _ = strconv.Atoi(string(rs[i+2 : j]))
			}
			if j >= len(rs) {
				f.t.Fatalf("unterminated sequence in %q", p)
			}
			switch rs[j] {
			case 'A':
				f.row = max(f.row-n, 0)
			case 'K':
				if f.col < len(f.rows[f.row]) {
					f.rows[f.row] = f.rows[f.row][:f.col]
				}
			case 'J':
				if f.col < len(f.rows[f.row]) {
					f.rows[f.row] = f.rows[f.row][:f.col]
				}
				f.rows = f.rows[:f.row+1]
			default:
				f.t.Fatalf("unexpected sequence %q", string(rs[i:j+1]))
			}
			i = j
		default:
			if f.col >= f.width {
				f.wrapped = true
				f.row, f.col = f.row+1, 0
				for f.row >= len(f.rows) {
					f.rows = append(f.rows, nil)
				}
			}
			for len(f.rows[f.row]) <= f.col {
				f.rows[f.row] = append(f.rows[f.row], ' ')
			}
			f.rows[f.row][f.col] = c
			f.col++
		}
	}
	return len(p), nil
}

// screen is the non-empty lines on the fake terminal, trailing spaces trimmed.
func (f *fakeTerm) screen() []string {
	var out []string
	for _, r := range f.rows {
		if s := strings.TrimRight(string(r), " "); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func testDigest(s string) digest.Digest { return digest.FromString(s) }

func newTestRenderer(t *testing.T, width, height int) (*barRenderer, *fakeTerm, *time.Time) {
	term := &fakeTerm{t: t, width: width, height: height}
	r := newBarRenderer(term, term.size, 0)
	now := time.Unix(1000, 0)
	r.now = func() time.Time { return now }
	r.start = now
	return r, term, &now
}

func TestBarRenderer(t *testing.T) {
	a, b, c := testDigest("a"), testDigest("b"), testDigest("c")
	la := fmt.Sprintf("%-7s %-8s %s", "copying", "layer", shortDigest(a))
	lb := fmt.Sprintf("%-7s %-8s %s", "copying", "config", shortDigest(b))
	doneA := blobLine("copied", ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: a, Size: 4 << 20})

	t.Run("bars appear, are redrawn in place, finished blobs become lines", func(t *testing.T) {
		r, term, now := newTestRenderer(t, 100, 24)
		r.expect(c, 1<<20) // not started yet: counted in the total
		r.update(a, la, 0, 4<<20)
		r.update(b, lb, 100, 1000)
		r.paint()
		s := term.screen()
		if len(s) != 3 || !strings.HasPrefix(s[0], la) || !strings.HasPrefix(s[1], lb) || !strings.HasPrefix(s[2], "total   0/3 blobs") {
			t.Fatalf("first frame:\n%s", strings.Join(s, "\n"))
		}
		if !strings.Contains(s[2], "5.0 MiB") {
			t.Errorf("total bytes are not 4 MiB + 1 MiB + 1000 B:\n%s", s[2])
		}

		*now = now.Add(2 * time.Second)
		r.update(a, la, 2<<20, 4<<20)
		r.paint()
		s = term.screen()
		if len(s) != 3 || !strings.Contains(s[0], "[====") || !strings.Contains(s[0], "2.0 MiB / 4.0 MiB") || !strings.Contains(s[0], "1.0 MiB/s") {
			t.Fatalf("redrawn frame (half of a at 1 MiB/s):\n%s", strings.Join(s, "\n"))
		}

		r.finish(a, doneA, 4<<20, true)
		r.paint()
		s = term.screen()
		if len(s) != 3 || s[0] != doneA || !strings.HasPrefix(s[1], lb) || !strings.HasPrefix(s[2], "total   1/3 blobs") {
			t.Fatalf("after a finished:\n%s", strings.Join(s, "\n"))
		}

		r.Close()
		if s = term.screen(); len(s) != 1 || s[0] != doneA {
			t.Fatalf("after Close, only the log stays:\n%s", strings.Join(s, "\n"))
		}
		writes := term.writes
		r.update(c, "x", 1, 2)
		r.finish(b, "late", 1000, true)
		r.paint()
		r.Close()
		if term.writes != writes {
			t.Fatalf("%d writes after Close", term.writes-writes)
		}
		if term.wrapped {
			t.Fatal("a line wrapped")
		}
	})

	t.Run("nothing changes, nothing moves: no redraw", func(t *testing.T) {
		r, term, _ := newTestRenderer(t, 80, 24)
		r.finish(a, doneA, 1, false)
		r.paint()
		writes := term.writes
		r.paint()
		if term.writes != writes {
			t.Fatal("idle renderer redrew")
		}
		r.Close()
	})

	t.Run("close without output writes nothing", func(t *testing.T) {
		r, term, _ := newTestRenderer(t, 80, 24)
		r.Close()
		if term.writes != 0 {
			t.Fatalf("%d writes", term.writes)
		}
	})

	t.Run("lines fit the width", func(t *testing.T) {
		for _, w := range []int{20, 40, 60, 80, 200} {
			r, term, _ := newTestRenderer(t, w, 24)
			r.update(a, la, 1<<30, 3<<30)
			r.paint()
			if term.wrapped {
				t.Fatalf("width %d: a line wrapped:\n%s", w, strings.Join(term.screen(), "\n"))
			}
			for _, l := range term.screen() {
				if n := len([]rune(l)); n > w-1 {
					t.Errorf("width %d: line of %d: %q", w, n, l)
				}
			}
			if w >= 80 && !strings.Contains(term.screen()[0], "[") {
				t.Errorf("width %d: no bar: %q", w, term.screen()[0])
			}
			r.Close()
		}
	})

	t.Run("more bars than rows", func(t *testing.T) {
		r, term, _ := newTestRenderer(t, 80, 6)
		for i := range 10 {
			d := testDigest(strconv.Itoa(i))
			r.update(d, fmt.Sprintf("copying layer %d", i), 1, 10)
		}
		r.paint()
		s := term.screen()
		if len(s) != 5 || s[3] != "… and 7 more in flight" || !strings.HasPrefix(s[4], "total   0/10 blobs") {
			t.Fatalf("small terminal:\n%s", strings.Join(s, "\n"))
		}
		r.Close()
		if len(term.screen()) != 0 {
			t.Fatalf("after Close:\n%s", strings.Join(term.screen(), "\n"))
		}
	})

	t.Run("concurrent transfers", func(t *testing.T) {
		term := &fakeTerm{t: t, width: 80, height: 10}
		r := newBarRenderer(term, term.size, time.Millisecond)
		var wg sync.WaitGroup
		want := map[string]bool{}
		for i := range 16 {
			d := testDigest(strconv.Itoa(i))
			line := blobLine("copied", ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: d, Size: 100})
			want[line] = true
			wg.Go(func() {
				for n := range 100 {
					r.update(d, "copying "+shortDigest(d), int64(n), 100)
					if n%10 == 0 {
						time.Sleep(100 * time.Microsecond)
					}
				}
				r.finish(d, line, 100, true)
			})
		}
		wg.Wait()
		r.Close()
		s := term.screen()
		for _, l := range s {
			if !want[l] {
				t.Errorf("unexpected line %q", l)
			}
			delete(want, l)
		}
		if len(want) > 0 || term.wrapped {
			t.Fatalf("missing %d lines (wrapped %v):\n%s", len(want), term.wrapped, strings.Join(s, "\n"))
		}
	})

	t.Run("redrawn by its goroutine", func(t *testing.T) {
		term := &fakeTerm{t: t, width: 80, height: 24}
		r := newBarRenderer(term, term.size, time.Millisecond)
		for i := range 50 {
			r.update(a, la, int64(i), 50)
			time.Sleep(100 * time.Microsecond)
		}
		r.finish(a, doneA, 50, true)
		r.Close()
		if s := term.screen(); len(s) != 1 || s[0] != doneA {
			t.Fatalf("after Close:\n%s", strings.Join(s, "\n"))
		}
	})
}

func TestDrawBar(t *testing.T) {
	for _, tc := range []struct {
		name        string
		done, total int64
		want        string
	}{
		{"empty", 0, 100, "          "},
		{"half", 50, 100, "====>     "},
		{"full", 100, 100, "=========="},
		{"over", 150, 100, "=========="},
		{"unknown size", 5, 0, "=========="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := drawBar(10, tc.done, tc.total); got != tc.want {
				t.Fatalf("drawBar(10, %d, %d) = %q, want %q", tc.done, tc.total, got, tc.want)
			}
		})
	}
}

func TestCopyProgressModes(t *testing.T) {
	layer := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: testDigest("layer"), Size: 3 << 20}
	config := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: testDigest("config"), Size: 512}
	events := []imagecopy.Progress{
		{Descriptor: layer, State: imagecopy.Transferring},
		{Descriptor: layer, Done: 1 << 20, State: imagecopy.Transferring},
		{Descriptor: config, Done: 512, State: imagecopy.Skipped},
		{Descriptor: layer, Done: 3 << 20, State: imagecopy.Copied},
	}
	for _, tc := range []struct {
		name  string
		mode  progressMode
		check func(t *testing.T, out string)
	}{
		{"plain", progressPlain, func(t *testing.T, out string) {
			want := "skipped config   " + shortDigest(config.Digest) + "  512 B\n" +
				"copied  layer    " + shortDigest(layer.Digest) + "  3.0 MiB\n"
			if out != want {
				t.Fatalf("got %q, want %q", out, want)
			}
		}},
		{"quiet", progressQuiet, func(t *testing.T, out string) {
			if out != "" {
				t.Fatalf("got %q", out)
			}
		}},
		{"json", progressJSON, func(t *testing.T, out string) {
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 2 {
				t.Fatalf("got %q", out)
			}
			var ev blobEvent
			if err := json.Unmarshal([]byte(lines[1]), &ev); err != nil || ev != (blobEvent{"copied", layer.MediaType, layer.Digest, layer.Size}) {
				t.Fatalf("%q: %+v, %v", lines[1], ev, err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			p := newCopyProgress(tc.mode, &buf)
			for _, ev := range events {
				p.report(ev)
			}
			p.close()
			if p.copied != 1 || p.skipped != 1 || p.bytes != layer.Size {
				t.Errorf("counted %d copied, %d skipped, %d bytes", p.copied, p.skipped, p.bytes)
			}
			tc.check(t, buf.String())
		})
	}
}

func TestPickProgressMode(t *testing.T) {
	var buf bytes.Buffer
	for _, tc := range []struct {
		name string
		opts globalOptions
		want progressMode
	}{
		{"plain", globalOptions{}, progressPlain},
		{"quiet", globalOptions{Quiet: true}, progressQuiet},
		{"json", globalOptions{JSON: true}, progressJSON},
		{"quiet wins", globalOptions{JSON: true, Quiet: true}, progressQuiet},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := pickProgressMode(&tc.opts, &buf); got != tc.want {
				t.Fatalf("got %d, want %d", got, tc.want)
			}
		})
	}
}

func TestBarLine(t *testing.T) {
	label := fmt.Sprintf("%-7s %-8s %s", "copying", "layer", shortDigest(testDigest("a")))
	for _, tc := range []struct {
		name            string
		width           int
		bar, rate, full bool
	}{
		{"wide", 200, true, true, true},
		{"80 columns", 80, true, true, true},
		{"no room for the bar", 70, false, true, true},
		{"no room for the rate", 60, false, false, true},
		{"too narrow for the bytes", 40, false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := barLine(tc.width, label, 3<<20, 8<<20, 5<<20)
			if n := len([]rune(l)); n > tc.width-1 {
				t.Fatalf("%d columns: %q", n, l)
			}
			if !strings.HasPrefix(l, label) {
				t.Fatalf("no label: %q", l)
			}
			if got := strings.Contains(l, "["); got != tc.bar {
				t.Errorf("bar %v, want %v: %q", got, tc.bar, l)
			}
			if got := strings.Contains(l, "5.0 MiB/s"); got != tc.rate {
				t.Errorf("rate %v, want %v: %q", got, tc.rate, l)
			}
			if got := strings.Contains(l, "3.0 MiB / 8.0 MiB"); got != tc.full {
				t.Errorf("bytes %v, want %v: %q", got, tc.full, l)
			}
			if tc.full && (strings.HasSuffix(l, "MiB/") || strings.HasSuffix(l, "Mi")) {
				t.Errorf("a field is cut: %q", l)
			}
		})
	}
}

// The total bar counts what the copy announces (imagecopy.Expected) before it starts; nothing
// below a document the destination already has enters it.
func TestCopyProgressTotal(t *testing.T) {
	f := newFixture(t)
	l, err := layout.Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// totalLine paints and returns the total bar's line.
	totalLine := func(t *testing.T, p *copyProgress, term *fakeTerm) string {
		t.Helper()
		p.bars.dirty = true
		p.bars.paint()
		s := term.screen()
		return s[len(s)-1]
	}
	newProgress := func(t *testing.T) (*copyProgress, *fakeTerm) {
		term := &fakeTerm{t: t, width: 100, height: 24}
		p := &copyProgress{mode: progressBars, w: term, bars: newBarRenderer(term, term.size, 0)}
		t.Cleanup(p.close)
		return p, term
	}
	t.Run("expected before they start", func(t *testing.T) {
		p, term := newProgress(t)
		for _, d := range []ocispec.Descriptor{f.manifest, f.layer, f.manifest} {
			p.report(imagecopy.Progress{Descriptor: d, State: imagecopy.Expected})
		}
		if got := totalLine(t, p, term); !strings.HasPrefix(got, "total   0/2 blobs") {
			t.Fatalf("manifest and layer: %q", got)
		}
		p.report(imagecopy.Progress{Descriptor: f.layer, Done: 1, State: imagecopy.Transferring})
		p.report(imagecopy.Progress{Descriptor: f.manifest, Done: f.manifest.Size, State: imagecopy.Skipped})
		if got := totalLine(t, p, term); !strings.HasPrefix(got, "total   1/2 blobs") {
			t.Fatalf("a layer in flight, a manifest skipped: %q", got)
		}
		if p.copied != 0 || p.skipped != 1 {
			t.Fatalf("expected blobs counted as finished: %d copied, %d skipped", p.copied, p.skipped)
		}
	})
	for _, tc := range []struct {
		name, ref string
		all       bool
		preload   bool // the other platform's image is at the destination already
		want      string
	}{
		{"this platform's image", "multi", false, false, "total   3/3 blobs"},            // manifest, config, layer
		{"every platform", "multi", true, false, "total   7/7 blobs"},                    // index, 2 × (manifest, config, layer)
		{"every platform, some already there", "multi", true, true, "total   5/5 blobs"}, // the other config and layer never expected
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, term := newProgress(t)
			dst, err := layout.Init(filepath.Join(t.TempDir(), "dst"))
			if err != nil {
				t.Fatal(err)
			}
			defer dst.Close()
			if tc.preload {
				if _, err := imagecopy.CopyRoot(t.Context(), l, f.otherManifest, dst, "", imagecopy.Options{}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := imagecopy.Copy(t.Context(), l, tc.ref, dst, "x", imagecopy.Options{AllPlatforms: tc.all, Progress: p.report}); err != nil {
				t.Fatal(err)
			}
			if got := totalLine(t, p, term); !strings.HasPrefix(got, tc.want) {
				t.Fatalf("%q, want %q", got, tc.want)
			}
		})
	}
}
