package main

import (
	"bytes"
	"io"
	"math"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wharfoci/wharf/distribution/server"
)

func TestMedian(t *testing.T) {
	cases := []struct {
		name string
		in   []float64
		want float64
	}{
		{"none", nil, math.NaN()},
		{"one", []float64{3}, 3},
		{"odd", []float64{5, 1, 3}, 3},
		{"even", []float64{4, 1, 3, 2}, 2.5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := median(tc.in)
			if got != tc.want && !(math.IsNaN(got) && math.IsNaN(tc.want)) {
				t.Fatalf("median(%v) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestTargets(t *testing.T) {
	var l targetList
	for _, v := range []string{"a=http://127.0.0.1:1/", "b=http://127.0.0.1:2,42", "c=https://h:3"} {
		if err := l.Set(v); err != nil {
			t.Fatalf("Set(%q): %v", v, err)
		}
	}
	if l[0].url.String() != "http://127.0.0.1:1" || l[1].pid != 42 {
		t.Fatalf("parsed %+v", l)
	}
	for _, bad := range []string{"nourl", "x=ftp://h", "x=http://h,pid", "a=http://h"} {
		if err := l.Set(bad); err == nil {
			t.Errorf("Set(%q) succeeded", bad)
		}
	}
	names := func(ts []target) string {
		var s []string
		for _, t := range ts {
			s = append(s, t.name)
		}
		return strings.Join(s, "")
	}
	for rep, want := range map[int]string{1: "abc", 2: "bca", 3: "cab", 4: "abc"} {
		if got := names(l.rotated(rep)); got != want {
			t.Errorf("rep %d: order %s, want %s", rep, got, want)
		}
	}
}

// TestRunAndReport runs every phase against wharf's registry in process, under two target
// names, and checks that no operation fails and that the summary line has every key.
func TestRunAndReport(t *testing.T) {
	dir := t.TempDir()
	d, made, err := generate(filepath.Join(dir, "data"), 1, 6, 4)
	if err != nil || !made {
		t.Fatalf("generate: %v (made %v)", err, made)
	}
	if _, made, err := generate(filepath.Join(dir, "data"), 1, 6, 4); err != nil || made {
		t.Fatalf("generate again: %v (made %v), want the data reused", err, made)
	}
	reg, err := server.New(server.Config{Root: filepath.Join(dir, "root"), LogLevel: "error"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(reg)
	t.Cleanup(func() { srv.Close(); reg.Close() })

	var l targetList
	for _, v := range []string{"ut=" + srv.URL + "," + strconv.Itoa(os.Getpid()), "peer=" + srv.URL} {
		if err := l.Set(v); err != nil {
			t.Fatal(err)
		}
	}
	var rows bytes.Buffer
	for rep := 1; rep <= 2; rep++ {
		cfg := runConfig{data: d, clients: 3, verify: true, rep: rep, prefix: "t/r" + strconv.Itoa(rep), log: io.Discard}
		// the second target of a repetition pushes into repositories that exist: it must not matter
		if err := runAll(cfg, l.rotated(rep), &rows); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, "rows.jsonl")
	if err := os.WriteFile(p, rows.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	rs, err := readRows([]string{p})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2*2*len(cfgPhases(d)) {
		t.Fatalf("%d rows", len(rs))
	}
	for _, r := range rs {
		if r.Errors != 0 {
			t.Errorf("%s %s: %d errors: %s", r.Target, r.Phase, r.Errors, r.FirstError)
		}
	}
	var out bytes.Buffer
	if err := report(&out, rs, "ut", "peer"); err != nil {
		t.Fatalf("report: %v\n%s", err, out.String())
	}
	t.Logf("report:\n%s", out.String())
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := lines[len(lines)-1]
	re := regexp.MustCompile(`^push_big_ratio=[0-9.]+ pull_big_ratio=[0-9.]+ push_big16_ratio=[0-9.]+ pull_big16_ratio=[0-9.]+ small_push_ratio=[0-9.]+ small_pull_ratio=[0-9.]+ head_ratio=[0-9.]+ head_empty_ratio=[0-9.]+ ut_peak_rss_mb=[0-9.]+ peer_peak_rss_mb=nan$`)
	if !re.MatchString(last) {
		t.Fatalf("summary line %q\n%s", last, out.String())
	}
}

func cfgPhases(d *dataset) []phase {
	return runConfig{data: d, clients: 1, settle: time.Millisecond}.phases()
}
