//go:build integration

package runtime

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/internal/testutil"
)

// rtToolsModule is the runtime-tools version the suite is built from: the Go module proxy
// refuses @master and the only tag, v0.9.0, is from 2019.
const rtToolsModule = "github.com/opencontainers/runtime-tools@v0.9.1-0.20251205004911-5e639034dcdc"

// The verdicts of a validation program.
const (
	verdictPass     = "pass"     // at least one ok, no not ok, exit 0
	verdictFail     = "fail"     // a not ok, a non-zero exit, or an error and no test point
	verdictNoResult = "noresult" // no test point and no error: nothing was checked

	expectRacy = "racy" // in the expected-verdicts file: any verdict is accepted
)

// TestRuntimeTools runs every validation program of the OCI runtime-tools suite against
// wharf-runtime (its own --root) and compares the verdicts with
// testdata/runtime-tools-expected.txt: the test fails when a program gives another verdict
// than the one listed there (any for a racy one), or other than pass for a program not listed
// — a listed program that passes must come off the list. The TAP output, stderr and the
// table of each run stay in .cache/suites/runtime-tools/results/RUNTIME.
// WHARF_RT_TOOLS_RUNTIME=/usr/sbin/runc runs the same programs against another runtime and
// only reports (the list is wharf-runtime's); WHARF_RT_TOOLS_ONLY="create state" runs only
// these programs; WHARF_RT_TOOLS_TIMEOUT (default 120s) bounds each program.
func TestRuntimeTools(t *testing.T) {
	rt := rtBin(t)
	name := "wharf-runtime"
	if other := os.Getenv("WHARF_RT_TOOLS_RUNTIME"); other != "" {
		rt, name = other, filepath.Base(other)
	}
	timeout := 120 * time.Second
	if s := os.Getenv("WHARF_RT_TOOLS_TIMEOUT"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("WHARF_RT_TOOLS_TIMEOUT: %v", err)
		}
		timeout = d
	}
	expected, err := readExpected("testdata/runtime-tools-expected.txt")
	if err != nil {
		t.Fatal(err)
	}
	src := buildRuntimeTools(t)
	progs, err := filepath.Glob(filepath.Join(src, "validation", "*", "*.t"))
	if err != nil {
		t.Fatal(err)
	}
	if only := strings.Fields(strings.ReplaceAll(os.Getenv("WHARF_RT_TOOLS_ONLY"), ",", " ")); len(only) > 0 {
		keep := progs[:0]
		for _, p := range progs {
			for _, o := range only {
				if progName(p) == o {
					keep = append(keep, p)
				}
			}
		}
		progs = keep
	}
	if len(progs) == 0 {
		t.Fatalf("no validation program in %s", src)
	}
	sort.Slice(progs, func(i, j int) bool { return progName(progs[i]) < progName(progs[j]) })

	r := newToolsRunner(t, src, rt, name)
	t.Logf("runtime-tools %s: %d programs against %s (timeout %s each); results in %s", rtToolsModule, len(progs), rt, timeout, r.results)
	var results []toolsResult
	for _, p := range progs {
		res := r.run(p, timeout)
		t.Logf("%-32s %5d %6d %5d %4d %-8s %s", res.name, res.ok, res.notOK, res.skip, res.exit, res.verdict, res.problem)
		results = append(results, res)
	}

	var table strings.Builder
	fmt.Fprintf(&table, "%-32s %5s %6s %5s %4s %-8s %s\n", "program", "ok", "notok", "skip", "exit", "verdict", "first problem")
	n := map[string]int{}
	expectedFails := 0
	var wrong []string
	for _, res := range results {
		fmt.Fprintf(&table, "%-32s %5d %6d %5d %4d %-8s %s\n", res.name, res.ok, res.notOK, res.skip, res.exit, res.verdict, res.problem)
		n[res.verdict]++
		e, listed := expected[res.name]
		want := verdictPass
		if listed {
			want = e.verdict
		}
		if res.verdict == verdictFail && (want == verdictFail || want == expectRacy) {
			expectedFails++
		}
		if res.verdict != want && want != expectRacy {
			wrong = append(wrong, fmt.Sprintf("%s: %s, want %s", res.name, res.verdict, want))
		}
	}
	t.Logf("verdicts:\n%s", table.String())
	writeFile(t, filepath.Join(r.results, "summary.txt"), table.String())
	var noresult []string
	for _, res := range results {
		if res.verdict == verdictNoResult {
			noresult = append(noresult, res.name)
		}
	}
	if len(noresult) > 0 {
		t.Logf("no result (nothing checked, no error): %s", strings.Join(noresult, " "))
	}
	label := "runtime-tools"
	if name != "wharf-runtime" {
		label += " (" + name + ")"
	}
	testutil.Report(t, "%s: pass=%d fail=%d (expected %d) noresult=%d", label, n[verdictPass], n[verdictFail], expectedFails, n[verdictNoResult])
	if len(wrong) == 0 {
		return
	}
	if name != "wharf-runtime" {
		t.Logf("%s against wharf-runtime's expectations (not checked):\n  %s", name, strings.Join(wrong, "\n  "))
		return
	}
	t.Errorf("verdicts that differ from testdata/runtime-tools-expected.txt (a listed program that passes must come off the list):\n  %s",
		strings.Join(wrong, "\n  "))
}

// expectation is one line of the expected-verdicts file.
type expectation struct{ verdict, reason string }

// readExpected reads the expected verdicts: "PROGRAM VERDICT REASON...", one program a line,
// VERDICT fail, noresult or racy, the reason mandatory; # starts a comment line.
func readExpected(path string) (map[string]expectation, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string]expectation{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		fields := strings.Fields(l)
		if len(fields) < 3 || (fields[1] != verdictFail && fields[1] != verdictNoResult && fields[1] != expectRacy) {
			return nil, fmt.Errorf("%s:%d: want PROGRAM fail|noresult|racy REASON", path, line)
		}
		if _, dup := m[fields[0]]; dup {
			return nil, fmt.Errorf("%s:%d: %s listed twice", path, line, fields[0])
		}
		m[fields[0]] = expectation{fields[1], strings.Join(fields[2:], " ")}
	}
	return m, sc.Err()
}

// buildRuntimeTools returns the directory of the runtime-tools sources with runtimetest and
// one program per validation (validation/NAME/NAME.t) built, building them once into
// .cache/suites/runtime-tools/VERSION from the Go module proxy.
func buildRuntimeTools(t *testing.T) string {
	t.Helper()
	goBin := goTool(t)
	base := testutil.CacheDir(t, filepath.Join("suites", "runtime-tools"))
	lock, err := os.OpenFile(filepath.Join(base, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	version := rtToolsModule[strings.Index(rtToolsModule, "@")+1:]
	src := filepath.Join(base, version)
	if _, err := os.Stat(filepath.Join(src, ".built")); err == nil {
		return src
	}
	env := append(os.Environ(), "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local")
	goCmd := func(dir string, extraEnv []string, args ...string) []byte {
		t.Helper()
		cmd := exec.Command(goBin, args...)
		cmd.Dir, cmd.Env = dir, append(env, extraEnv...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	t.Logf("building runtime-tools %s into %s", version, src)
	var mod struct{ Dir, Version string }
	// outside any module: wharf's go.mod and go.sum are not touched
	if err := json.Unmarshal(goCmd(t.TempDir(), nil, "mod", "download", "-json", rtToolsModule), &mod); err != nil || mod.Dir == "" {
		t.Fatalf("go mod download %s: no module directory (%v)", rtToolsModule, err)
	}
	tmp := src + ".building"
	os.RemoveAll(tmp)
	testutil.Run(t, "cp", "-r", mod.Dir, tmp)
	testutil.Run(t, "chmod", "-R", "u+w", tmp)
	// the module zip has vendor/modules.txt without the packages
	if err := os.RemoveAll(filepath.Join(tmp, "vendor")); err != nil {
		t.Fatal(err)
	}
	goCmd(tmp, []string{"CGO_ENABLED=0"}, "build", "-tags", "netgo osusergo", "-ldflags", "-extldflags -static", "-o", "runtimetest", "./cmd/runtimetest")
	files, _ := filepath.Glob(filepath.Join(tmp, "validation", "*", "*.go"))
	for _, f := range files {
		if filepath.Base(filepath.Dir(f)) == "util" {
			continue
		}
		rel, _ := filepath.Rel(tmp, f)
		goCmd(tmp, nil, "build", "-o", strings.TrimSuffix(rel, ".go")+".t", rel)
	}
	if _, err := os.Stat(filepath.Join(tmp, "rootfs-"+goruntime.GOARCH+".tar.gz")); err != nil {
		t.Fatalf("runtime-tools has no root file system for this machine: %v", err)
	}
	if err := os.RemoveAll(src); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, src); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(src, ".built"), mod.Version+"\n")
	return src
}

// goTool is the go command: on PATH, else in GOROOT or /usr/local/go.
func goTool(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	for _, p := range []string{filepath.Join(os.Getenv("GOROOT"), "bin", "go"), "/usr/local/go/bin/go"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	testutil.SkipOrFail(t, "the go command is needed to build runtime-tools")
	return ""
}

func progName(path string) string { return strings.TrimSuffix(filepath.Base(path), ".t") }

// toolsRunner runs validation programs against one runtime, called through a wrapper that
// gives it a private --root, with a private TMPDIR for the bundles.
type toolsRunner struct {
	t                            *testing.T
	src, rt, state, tmp, results string
	wrapper                      string
}

func newToolsRunner(t *testing.T, src, rt, name string) *toolsRunner {
	t.Helper()
	w := shortTempDir(t, "wrtt")
	r := &toolsRunner{t: t, src: src, rt: rt, state: filepath.Join(w, "state"), tmp: filepath.Join(w, "tmp"),
		results: filepath.Join(testutil.CacheDir(t, filepath.Join("suites", "runtime-tools")), "results", name),
		wrapper: filepath.Join(w, "runtime")}
	os.RemoveAll(r.results)
	for _, d := range []string{r.state, r.tmp, r.results} {
		mkdir(t, d)
	}
	writeFile(t, r.wrapper, fmt.Sprintf("#!/bin/sh\nexec %s --root %s \"$@\"\n", shellQuote(rt), shellQuote(r.state)))
	if err := os.Chmod(r.wrapper, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.clean)
	return r
}

// toolsResult is what one program did: its TAP counts (skips apart), exit code (124 for a
// timeout), verdict and first problem.
type toolsResult struct {
	name                  string
	ok, notOK, skip, exit int
	verdict, problem      string
}

var (
	tapOK      = regexp.MustCompile(`^ok `)
	tapNotOK   = regexp.MustCompile(`^not ok `)
	tapSkip    = regexp.MustCompile(`^(not )?ok .*# (SKIP|skip)`)
	tapPlan    = regexp.MustCompile(`(?m)^1\.\.[0-9]+`)
	tapError   = regexp.MustCompile(`"error": "([^"]*)`)
	logMessage = regexp.MustCompile(`.*msg="`)
)

// run runs the program prog (in the sources' directory, where it finds runtimetest and the
// root file system) under timeout, then removes what it left, and judges its output.
func (r *toolsRunner) run(prog string, timeout time.Duration) toolsResult {
	name := progName(prog)
	tapPath, errPath := filepath.Join(r.results, name+".tap"), filepath.Join(r.results, name+".stderr")
	tapFile, err := os.Create(tapPath)
	if err != nil {
		r.t.Fatal(err)
	}
	errFile, err := os.Create(errPath)
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	cmd := exec.CommandContext(ctx, prog)
	cmd.Dir, cmd.Stdout, cmd.Stderr = r.src, tapFile, errFile
	cmd.Env = append(os.Environ(), "RUNTIME="+r.wrapper, "TMPDIR="+r.tmp)
	// a timeout kills the program's whole process group: the runtimes it started too
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	timedOut := ctx.Err() != nil
	cancel()
	tapFile.Close()
	errFile.Close()
	r.clean()

	res := toolsResult{name: name}
	var ee *exec.ExitError
	switch {
	case timedOut:
		res.exit = 124
	case errors.As(err, &ee):
		res.exit = ee.ExitCode()
	case err != nil:
		res.exit = 127
		res.problem = err.Error()
	}
	tap, _ := os.ReadFile(tapPath)
	stderr, _ := os.ReadFile(errPath)
	judge(&res, string(tap), string(stderr), timeout)
	return res
}

// judge counts the TAP test points of a program's output and gives its verdict: pass (an
// ok, no not ok, exit 0), fail (a not ok or a non-zero exit; with neither and no test point,
// an error or a missing plan) or noresult (no test point, no error).
func judge(res *toolsResult, tap, stderr string, timeout time.Duration) {
	var firstNotOK string
	for _, l := range strings.Split(tap, "\n") {
		skipped := tapSkip.MatchString(l)
		switch {
		case skipped:
			res.skip++
		case tapOK.MatchString(l):
			res.ok++
		case tapNotOK.MatchString(l):
			res.notOK++
			if firstNotOK == "" {
				firstNotOK = l
			}
		}
	}
	problem := res.problem
	if problem == "" {
		if m := tapError.FindStringSubmatch(tap); m != nil {
			problem = m[1]
		}
	}
	if problem == "" {
		problem = firstNotOK
	}
	if problem == "" && res.exit != 0 {
		var last string
		for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
			if !strings.HasPrefix(l, "exit status") {
				last = l
			}
		}
		problem = logMessage.ReplaceAllString(last, "")
	}
	if problem == "" && res.exit == 124 {
		problem = fmt.Sprintf("timeout after %s", timeout)
	}
	if problem == "" && !tapPlan.MatchString(tap) {
		problem = "no TAP plan in the output"
	}
	switch {
	case res.notOK > 0 || res.exit != 0:
		res.verdict = verdictFail
	case res.ok > 0:
		res.verdict = verdictPass
	case problem != "":
		res.verdict = verdictFail
	default:
		res.verdict = verdictNoResult
	}
	if res.verdict == verdictPass {
		problem = ""
	}
	if len(problem) > 80 {
		problem = problem[:80]
	}
	res.problem = problem
}

// clean removes what a program may have left: containers in the runtime's root, mounts under
// the bundles' directory, and the cgroups named by the suite's cgroupsPath values
// (/cgrouptest and testdir/cgrouptest/container), when empty.
func (r *toolsRunner) clean() {
	if out, err := exec.Command(r.rt, "--root", r.state, "list", "-q").Output(); err == nil {
		for _, id := range strings.Fields(string(out)) {
			exec.Command(r.rt, "--root", r.state, "delete", "--force", id).Run()
		}
	}
	for _, p := range []string{"testdir/cgrouptest/container", "testdir/cgrouptest", "testdir", "cgrouptest"} {
		for _, d := range globDirs("/sys/fs/cgroup/*/" + p) {
			os.Remove(d)
		}
	}
	// the bundles the program did not remove (a directory still busy in a mount namespace
	// that outlived its container goes with the test's temporary directory)
	ents, _ := os.ReadDir(r.tmp)
	for _, e := range ents {
		if err := removeAll(filepath.Join(r.tmp, e.Name())); err != nil {
			r.t.Logf("clean up after a validation program: %v", err)
		}
	}
}
