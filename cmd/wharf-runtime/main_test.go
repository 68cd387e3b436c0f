package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/runtime"
)

// The command line, in process (run with its writers) or as a process: the test binary is
// wharf-runtime itself when mainEnv is set. Nothing here needs root: containers are state
// directories written as create would, around a child process of the test.

const mainEnv = "WHARF_RUNTIME_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// result is one command line's outcome.
type result struct {
	code           int
	stdout, stderr string
}

// wr runs wharf-runtime's command line in process.
func wr(args ...string) result {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return result{code, out.String(), errb.String()}
}

// binary runs the test binary as wharf-runtime, with env added.
func binary(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), mainEnv+"=1"), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestVersion(t *testing.T) {
	want := "wharf-runtime version " + runtime.Version + "\ncommit: unknown\nspec: " + specs.Version + "\n"
	for _, flag := range []string{"--version", "-v"} {
		if r := wr(flag); r.code != 0 || r.stdout != want || r.stderr != "" {
			t.Fatalf("%s: %+v, want %q", flag, r, want)
		}
	}
	// make build sets the commit
	defer func(v string) { version = v }(version)
	version = "v1.2-3-gabcdef"
	if r := wr("--version"); !strings.Contains(r.stdout, "\ncommit: v1.2-3-gabcdef\n") || strings.Count(r.stdout, "\n") != 3 {
		t.Fatalf("--version: %q", r.stdout)
	}
}

// TestGlobalFlags: runc's global flags parse before or after the command and reach the
// runtime; the ones wharf-runtime does not use are accepted.
func TestGlobalFlags(t *testing.T) {
	root := t.TempDir()
	for _, tc := range []struct {
		name  string
		args  []string
		check func(g *globalOptions) bool
	}{
		{"root", []string{"--root", root, "list"}, func(g *globalOptions) bool { return g.root == root }},
		{"root after the command", []string{"list", "--root", root}, func(g *globalOptions) bool { return g.root == root }},
		{"default root", []string{"list", "-q"}, func(g *globalOptions) bool { return g.root == runtime.DefaultRoot }},
		{"debug", []string{"--debug", "--root", root, "list"}, func(g *globalOptions) bool { return g.debug && g.runtime().Debugf != nil }},
		{"systemd-cgroup", []string{"--systemd-cgroup", "--root", root, "list"}, func(g *globalOptions) bool { return g.runtime().SystemdCgroup }},
		{"log-format json", []string{"--log-format", "json", "--root", root, "list"}, func(g *globalOptions) bool { return g.logFormat == "json" }},
		{"log-format default", []string{"--root", root, "list"}, func(g *globalOptions) bool { return g.logFormat == "text" }},
		{"rootless alone", []string{"--rootless", "--root", root, "list"}, func(g *globalOptions) bool { return g.rootless == "true" }},
		{"rootless=false", []string{"--rootless=false", "--root", root, "list"}, func(g *globalOptions) bool { return g.rootless == "false" }},
		{"criu", []string{"--criu", "/usr/sbin/criu", "--root", root, "list"}, func(g *globalOptions) bool { return g.criu == "/usr/sbin/criu" }},
		{"log", []string{"--log", filepath.Join(root, "log"), "--root", root, "list"}, func(g *globalOptions) bool { return g.logFile != nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			g := &globalOptions{stdout: &out, stderr: &errb}
			if code := runWith(g, tc.args); code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			if !tc.check(g) {
				t.Fatalf("options %+v", g)
			}
		})
	}
}

var rfc3339 = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)

// TestErrorLines: an error is one log line, runc's way: logrus text or JSON on stderr, or in
// the --log file with "wharf-runtime CMD failed: ERROR" on stderr (what containerd's shim and
// conmon read).
func TestErrorLines(t *testing.T) {
	root := t.TempDir()
	const msg = "container nope does not exist: not found"
	t.Run("json on stderr", func(t *testing.T) {
		r := wr("--root", root, "--log-format", "json", "state", "nope")
		var l struct{ Level, Msg, Time string }
		if err := json.Unmarshal([]byte(r.stderr), &l); err != nil || r.code != 1 || strings.Count(r.stderr, "\n") != 1 {
			t.Fatalf("%+v: %v", r, err)
		}
		if l.Level != "error" || l.Msg != msg || !rfc3339.MatchString(l.Time) {
			t.Fatalf("line %+v", l)
		}
	})
	t.Run("text on stderr", func(t *testing.T) {
		r := wr("--root", root, "state", "nope")
		want := regexp.MustCompile(`^time="[^"]+" level=error msg="` + regexp.QuoteMeta(msg) + `"\n$`)
		if r.code != 1 || !want.MatchString(r.stderr) {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("json in the log file", func(t *testing.T) {
		log := filepath.Join(t.TempDir(), "log.json")
		if err := os.WriteFile(log, []byte(`{"level":"info","msg":"before","time":"2020-01-01T00:00:00Z"}`+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		r := wr("--root", root, "--log", log, "--log-format", "json", "delete", "nope")
		if r.code != 1 || r.stderr != "wharf-runtime delete failed: "+msg+"\n" {
			t.Fatalf("%+v", r)
		}
		b, _ := os.ReadFile(log)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		var l struct{ Level, Msg string }
		if len(lines) != 2 || json.Unmarshal([]byte(lines[1]), &l) != nil || l.Level != "error" || l.Msg != msg {
			t.Fatalf("log file (appended to): %q", b)
		}
	})
	t.Run("a bad log format, in the log file", func(t *testing.T) {
		log := filepath.Join(t.TempDir(), "log")
		r := wr("--log", log, "--log-format", "xml", "list")
		if r.code != 1 || r.stderr != "wharf-runtime list failed: invalid --log-format \"xml\": want text or json\n" {
			t.Fatalf("%+v", r)
		}
		if b, _ := os.ReadFile(log); !strings.Contains(string(b), " level=error msg=") {
			t.Fatalf("log file: %q", b)
		}
	})
}

// logMsg is the msg of the one JSON error line of stderr.
func logMsg(t *testing.T, r result) string {
	t.Helper()
	var l struct{ Level, Msg string }
	if err := json.Unmarshal([]byte(r.stderr), &l); err != nil || l.Level != "error" || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("stderr %q: want one JSON error line (%v)", r.stderr, err)
	}
	return l.Msg
}

// TestUsageErrors: wrong arguments and flags are errors (exit 1, as runc) named in one line.
func TestUsageErrors(t *testing.T) {
	root := t.TempDir()
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"--bogus", "list"}, "unknown flag: --bogus"},
		{"unknown command flag", []string{"state", "--bogus", "x"}, "unknown flag: --bogus"},
		{"state without id", []string{"state"}, "state: want a container id, got 0 argument(s): invalid argument"},
		{"state with two", []string{"state", "a", "b"}, "got 2 argument(s)"},
		{"start without id", []string{"start"}, "start: want a container id"},
		{"delete without id", []string{"delete"}, "delete: want a container id"},
		{"list with an argument", []string{"list", "x"}, "list: want no arguments, got 1"},
		{"list format", []string{"list", "--format", "yaml"}, `invalid --format "yaml": want table or json`},
		{"kill without id", []string{"kill"}, "kill: want ID [SIGNAL]"},
		{"kill with three", []string{"kill", "a", "KILL", "x"}, "kill: want ID [SIGNAL]"},
		{"kill bad signal", []string{"kill", "a", "SIGNOPE"}, `parse signal "SIGNOPE": unknown signal`},
		{"exec without id", []string{"exec"}, "requires at least 1 arg(s)"},
		{"ps without id", []string{"ps"}, "requires at least 1 arg(s)"},
		{"invalid id", []string{"state", "a/b"}, `invalid container id "a/b"`},
		{"log file", []string{"--log", "/nonexistent/dir/log", "list"}, "open log file /nonexistent/dir/log"},
		{"update resources", []string{"update", "-r", bad, "x"}, "parse resources " + bad},
		{"update resources file", []string{"update", "-r", bad + ".missing", "x"}, "read resources " + bad + ".missing"},
		{"create without config", []string{"create", "--bundle", t.TempDir(), "x"}, "config.json: not found"},
		{"run without bundle", []string{"run", "--bundle", "/nonexistent", "x"}, "config.json: not found"},
		{"spec with an argument", []string{"spec", "x"}, "spec: want no arguments"},
		{"features with an argument", []string{"features", "x"}, "features: want no arguments"},
		{"interval", []string{"events", "--interval", "soon", "x"}, `invalid argument "soon" for "--interval"`},
		{"preserve-fds", []string{"create", "--preserve-fds", "many", "x"}, `invalid argument "many" for "--preserve-fds"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := wr(append([]string{"--root", root, "--log-format", "json"}, tc.args...)...)
			if msg := logMsg(t, r); r.code != 1 || !strings.Contains(msg, tc.want) || r.stdout != "" {
				t.Fatalf("%+v; want exit 1 and an error about %q", r, tc.want)
			}
		})
	}
	t.Run("unknown command", func(t *testing.T) {
		// found unknown before any flag is read: logged in the default text format
		r := wr("--log-format", "json", "bogus")
		if r.code != 1 || !strings.Contains(r.stderr, `level=error msg="unknown command \"bogus\" for \"wharf-runtime\""`) {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("no command is the help", func(t *testing.T) {
		if r := wr(); r.code != 0 || !strings.Contains(r.stdout, "Usage:") {
			t.Fatalf("%+v", r)
		}
	})
}

func TestExitStatus(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name string
		err  error
		code int
		msg  error
	}{
		{"success", nil, 0, nil},
		{"an error", boom, 1, boom},
		{"the container's status", exitError{code: 137}, 137, nil},
		{"a status with an error", exitError{code: 255, err: boom}, 255, boom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, err := exitStatus(tc.err); code != tc.code || err != tc.msg {
				t.Fatalf("exitStatus(%v) = %d, %v; want %d, %v", tc.err, code, err, tc.code, tc.msg)
			}
		})
	}
}

// TestProcess: the binary's own exit codes and lines, and the init entry point's guard.
func TestProcess(t *testing.T) {
	root := t.TempDir()
	if r := binary(t, nil, "--version"); r.code != 0 || strings.Count(r.stdout, "\n") != 3 {
		t.Fatalf("--version: %+v", r)
	}
	if r := binary(t, nil, "--root", root, "--log-format", "json", "kill", "nope"); r.code != 1 || !strings.Contains(r.stderr, `"msg":"container nope does not exist: not found"`) {
		t.Fatalf("kill nope: %+v", r)
	}
	// `init` is the re-executed runtime only when the runtime started it
	if r := binary(t, nil, "init"); r.code != 1 || !strings.Contains(r.stderr, `unknown command \"init\"`) {
		t.Fatalf("init without the sync socket: %+v", r)
	}
	if r := binary(t, []string{"_WHARF_INIT_SYNC=x"}, "init"); r.code != 1 || r.stderr != "wharf-runtime init: not started by wharf-runtime\n" {
		t.Fatalf("init with a bad sync socket: %+v", r)
	}
}

// TestSpec: `spec` writes runc's default config.json (tab-indented, with a final newline) and
// never replaces one.
func TestSpec(t *testing.T) {
	dir := t.TempDir()
	if r := wr("spec", "--bundle", dir); r.code != 0 || r.stdout != "" {
		t.Fatalf("spec: %+v", r)
	}
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.MarshalIndent(runtime.DefaultSpec(), "", "\t")
	if string(b) != string(want)+"\n" {
		t.Fatalf("config.json:\n%s", b)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil || s.Version != specs.Version || !s.Process.Terminal || s.Process.Args[0] != "sh" || s.Root.Path != "rootfs" {
		t.Fatalf("config.json: %v %+v", err, s)
	}
	if err := runtime.ValidateSpec(&s); err != nil {
		t.Fatal(err)
	}
	r := wr("spec", "-b", dir, "--rootless")
	if r.code != 1 || !strings.Contains(r.stderr, "config.json: file exists: "+errdef.ErrAlreadyExists.Error()) {
		t.Fatalf("spec over an existing config.json: %+v", r)
	}
}

func TestFeatures(t *testing.T) {
	r := wr("features")
	var f struct {
		OCIVersionMin, OCIVersionMax string
		Hooks                        []string
		Linux                        struct{ Namespaces []string }
		Annotations                  map[string]string
	}
	if err := json.Unmarshal([]byte(r.stdout), &f); err != nil || r.code != 0 {
		t.Fatalf("features: %v: %+v", err, r)
	}
	if f.OCIVersionMax != specs.Version || len(f.Hooks) != 6 || len(f.Linux.Namespaces) != 8 || f.Annotations["io.github.wharfoci.wharf-runtime.nsenter"] == "" {
		t.Fatalf("features: %+v", f)
	}
}

func TestListenFds(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want int
	}{
		{"none", nil, 0},
		{"ours", map[string]string{"LISTEN_PID": "42", "LISTEN_FDS": "3"}, 3},
		{"another process's", map[string]string{"LISTEN_PID": "41", "LISTEN_FDS": "3"}, 0},
		{"no pid", map[string]string{"LISTEN_FDS": "3"}, 0},
		{"not a number", map[string]string{"LISTEN_PID": "42", "LISTEN_FDS": "x"}, 0},
		{"negative", map[string]string{"LISTEN_PID": "42", "LISTEN_FDS": "-1"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := listenFds(func(k string) string { return tc.env[k] }, 42); got != tc.want {
				t.Fatalf("listenFds = %d, want %d", got, tc.want)
			}
		})
	}
}

// startTime is field 22 of /proc/PID/stat, what the runtime records to know its init.
func startTime(t *testing.T, pid int) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	n, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// fakeInit starts a process that stands for a container's init, and stops it at the end.
func fakeInit(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skipf("start sleep: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	return cmd
}

// container writes the state of container id under root as create leaves it (state.json,
// and exec.fifo while created): init pid (0: stopped), cgroups, config.
func container(t *testing.T, root, id string, pid int, created bool, cgroups map[string]string) {
	t.Helper()
	dir := filepath.Join(root, id)
	if err := os.MkdirAll(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	st := map[string]any{
		"id": id, "init_pid": pid, "bundle": "/bundles/" + id, "rootfs": "/bundles/" + id + "/rootfs",
		"created": time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC), "owner": "root", "cgroup_paths": cgroups,
		"annotations": map[string]string{"org.example": id}, "config": runtime.DefaultSpec(),
	}
	if pid > 0 {
		st["init_start_time"] = startTime(t, pid)
	}
	b, _ := json.Marshal(st)
	if err := os.WriteFile(filepath.Join(dir, "state.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if created {
		if err := os.WriteFile(filepath.Join(dir, "exec.fifo"), nil, 0o622); err != nil {
			t.Fatal(err)
		}
	}
}
