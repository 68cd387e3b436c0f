package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
)

// summaryKeys names the phases of the summary line: KEY=ratio of the medians, under test / peer.
var summaryKeys = []struct{ key, phase string }{
	{"push_big_ratio", "push-big-1"},
	{"pull_big_ratio", "pull-big-1"},
	{"push_big16_ratio", "push-big-16"},
	{"pull_big16_ratio", "pull-big-16"},
	{"small_push_ratio", "push-small-16"},
	{"small_pull_ratio", "pull-small-16"},
	{"head_ratio", "head-tagged-16"},
	{"head_empty_ratio", "head-empty-16"},
}

// readRows reads the JSON rows of the files, in order.
func readRows(paths []string) ([]row, error) {
	var rows []row
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("read rows: %w", err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for n := 1; sc.Scan(); n++ {
			if strings.TrimSpace(sc.Text()) == "" {
				continue
			}
			var r row
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				f.Close()
				return nil, fmt.Errorf("parse %s:%d: %w", p, n, err)
			}
			rows = append(rows, r)
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
	}
	return rows, nil
}

// median returns the median of xs (NaN for none).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ratio returns a/b, NaN when either is NaN or b is 0.
func ratio(a, b float64) float64 {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return math.NaN()
	}
	return a / b
}

// num formats x with the given decimals, "nan" for NaN.
func num(x float64, decimals int) string {
	if math.IsNaN(x) {
		return "nan"
	}
	return fmt.Sprintf("%.*f", decimals, x)
}

// stats is what report computes from the rows.
type stats struct {
	targets, phases []string
	units           map[string]string             // phase → unit
	rate            map[string]map[string]float64 // target → phase → median rate of the rows without errors
	errs            map[string]map[string]int64   // target → phase → failed operations, all reps
	firstErr        map[string]string             // target → first error seen
	cpu, clientCPU  map[string]float64            // target → median over reps of the CPU seconds of all phases
	peak            map[string]float64            // target → highest VmHWM, MB (NaN: not sampled)
	reps            int
}

func summarize(rows []row) *stats {
	s := &stats{units: map[string]string{}, rate: map[string]map[string]float64{}, errs: map[string]map[string]int64{},
		firstErr: map[string]string{}, cpu: map[string]float64{}, clientCPU: map[string]float64{}, peak: map[string]float64{}}
	rates := map[string]map[string][]float64{}
	cpuRep := map[string]map[int]float64{}
	cliRep := map[string]map[int]float64{}
	repSeen := map[int]bool{}
	sampled := map[string]bool{} // target → its server process was sampled
	for _, r := range rows {
		if !slices.Contains(s.targets, r.Target) {
			s.targets = append(s.targets, r.Target)
			rates[r.Target], s.errs[r.Target] = map[string][]float64{}, map[string]int64{}
			cpuRep[r.Target], cliRep[r.Target] = map[int]float64{}, map[int]float64{}
			s.peak[r.Target] = math.NaN()
		}
		if !slices.Contains(s.phases, r.Phase) {
			s.phases = append(s.phases, r.Phase)
			s.units[r.Phase] = r.Unit
		}
		repSeen[r.Rep] = true
		sampled[r.Target] = sampled[r.Target] || r.PID > 0
		if r.Errors == 0 {
			rates[r.Target][r.Phase] = append(rates[r.Target][r.Phase], r.Rate)
		} else if s.firstErr[r.Target] == "" {
			s.firstErr[r.Target] = r.Phase + ": " + r.FirstError
		}
		s.errs[r.Target][r.Phase] += r.Errors
		cpuRep[r.Target][r.Rep] += r.ServerCPU
		cliRep[r.Target][r.Rep] += r.ClientCPU
		if r.ServerPeak > 0 && (math.IsNaN(s.peak[r.Target]) || r.ServerPeak > s.peak[r.Target]) {
			s.peak[r.Target] = r.ServerPeak
		}
	}
	s.reps = len(repSeen)
	for _, t := range s.targets {
		s.rate[t] = map[string]float64{}
		for _, p := range s.phases {
			s.rate[t][p] = median(rates[t][p])
		}
		var c, cc []float64
		for rep, v := range cpuRep[t] {
			c = append(c, v)
			cc = append(cc, cliRep[t][rep])
		}
		s.cpu[t], s.clientCPU[t] = median(c), median(cc)
		if !sampled[t] {
			s.cpu[t] = math.NaN()
		}
	}
	return s
}

// errRowsFailed is returned by report, after printing everything, when operations failed.
type errRowsFailed int64

func (e errRowsFailed) Error() string {
	return fmt.Sprintf("%d operations failed (rows with errors are left out of the medians)", int64(e))
}

// report prints the table (one column per target, then the ratio of ut to each other target)
// and, as its last line, the summary of ut against peer:
// push_big_ratio=.. … head_empty_ratio=.. ut_peak_rss_mb=.. peer_peak_rss_mb=..
// It returns errRowsFailed when any operation failed, and an error without printing when ut or
// peer has no rows.
func report(w io.Writer, rows []row, ut, peer string) error {
	s := summarize(rows)
	for _, t := range []string{ut, peer} {
		if !slices.Contains(s.targets, t) {
			return fmt.Errorf("report: no rows of target %s (targets: %s)", t, strings.Join(s.targets, " "))
		}
	}
	others := slices.DeleteFunc(slices.Clone(s.targets), func(t string) bool { return t == ut })
	cols := append([]string{ut}, others...)

	var b strings.Builder
	fmt.Fprintf(&b, "%-15s %5s", "phase", "unit")
	for _, t := range cols {
		fmt.Fprintf(&b, " %13s", t)
	}
	for _, o := range others {
		fmt.Fprintf(&b, " %13s", "/"+o)
	}
	fmt.Fprintf(&b, "   (median of %d reps; /X = %s / X: above 1, %s is faster)\n", s.reps, ut, ut)
	var failed int64
	for _, p := range s.phases {
		fmt.Fprintf(&b, "%-15s %5s", p, s.units[p])
		for _, t := range cols {
			mark := ""
			if s.errs[t][p] > 0 {
				mark = "*"
				failed += s.errs[t][p]
			}
			fmt.Fprintf(&b, " %13s", num(s.rate[t][p], 1)+mark)
		}
		for _, o := range others {
			fmt.Fprintf(&b, " %13s", num(ratio(s.rate[ut][p], s.rate[o][p]), 3))
		}
		b.WriteString("\n")
	}
	line := func(label string, f func(t string) string) {
		fmt.Fprintf(&b, "%-21s", label)
		for _, t := range cols {
			fmt.Fprintf(&b, " %13s", f(t))
		}
		b.WriteString("\n")
	}
	line("server CPU s", func(t string) string { return num(s.cpu[t], 1) })
	line("server peak RSS MB", func(t string) string { return num(s.peak[t], 1) })
	line("client CPU s", func(t string) string { return num(s.clientCPU[t], 1) })
	b.WriteString("(CPU: median over reps of all phases; peak RSS: the server's VmHWM, highest of the reps)\n")
	for _, t := range cols {
		if e := s.firstErr[t]; e != "" {
			fmt.Fprintf(&b, "* %s: operations failed, first: %.300s\n", t, e)
		}
	}

	var kv []string
	for _, k := range summaryKeys {
		kv = append(kv, k.key+"="+num(ratio(s.rate[ut][k.phase], s.rate[peer][k.phase]), 3))
	}
	kv = append(kv, "ut_peak_rss_mb="+num(s.peak[ut], 1), "peer_peak_rss_mb="+num(s.peak[peer], 1))
	b.WriteString(strings.Join(kv, " ") + "\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	if failed > 0 {
		return errRowsFailed(failed)
	}
	return nil
}
