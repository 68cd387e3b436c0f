//go:build integration

package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/internal/specdefault"
	"github.com/wharfoci/wharf/internal/testutil"
)

func TestMain(m *testing.M) {
	// Detached container inits are reparented to a subreaper, which must also reap them (a pid
	// namespace's init waits for its children to be reaped). PID 1 here does not reap, and a Go
	// test can not reap orphans without racing os/exec, so the tests run under catatonit.
	if os.Getenv("WHARF_RT_UNDER_CATATONIT") == "" {
		if cat, err := exec.LookPath("catatonit"); err == nil {
			cmd := exec.Command(cat, append([]string{"--", os.Args[0]}, os.Args[1:]...)...)
			cmd.Env = append(os.Environ(), "WHARF_RT_UNDER_CATATONIT=1")
			cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				os.Exit(ee.ExitCode())
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "run under catatonit:", err)
				os.Exit(1)
			}
			os.Exit(0)
		} else if peersRequired() {
			fmt.Fprintln(os.Stderr, "catatonit (the tests' subreaper) is missing: apt-get install catatonit")
			os.Exit(1)
		}
		// best effort without catatonit: orphans come to us (and may stay zombies)
		_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	}
	os.Exit(m.Run())
}

func peersRequired() bool { return os.Getenv("WHARF_PEERS") == "1" }

func need(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if peersRequired() {
		t.Fatalf("%s: %v", what, err)
	}
	t.Skipf("%s: %v", what, err)
}

func rtBin(t *testing.T) string {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("wharf-runtime tests need root")
	}
	return testutil.Bin(t, "wharf-runtime")
}

// env is one test's runtime: its own --root and a JSON log file.
type env struct {
	t    *testing.T
	bin  string
	root string
	log  string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, bin: rtBin(t), root: t.TempDir()}
	e.log = filepath.Join(e.root, "log.json")
	t.Cleanup(func() {
		// never leave a container behind
		r := e.run("list", "-q")
		for _, id := range strings.Fields(r.stdout) {
			e.run("delete", "--force", id)
		}
	})
	return e
}

type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
}

func (e *env) cmd(args ...string) *exec.Cmd {
	return exec.Command(e.bin, append([]string{"--root", e.root, "--log", e.log, "--log-format", "json"}, args...)...)
}

// run runs the runtime with args and waits (bounded: a hung runtime fails the test). Output
// goes to files, not pipes: a container's init inherits the runtime's stdio and outlives it.
func (e *env) run(args ...string) result {
	e.t.Helper()
	return e.runCmd(e.cmd(args...))
}

// runCmd is run for a command made by e.cmd and then changed (ExtraFiles, Env, a wrapper).
func (e *env) runCmd(cmd *exec.Cmd) result {
	e.t.Helper()
	args := cmd.Args[1:]
	outf, err := os.CreateTemp("", "rt-out")
	if err != nil {
		e.t.Fatal(err)
	}
	defer os.Remove(outf.Name())
	defer outf.Close()
	errf, err := os.CreateTemp("", "rt-err")
	if err != nil {
		e.t.Fatal(err)
	}
	defer os.Remove(errf.Name())
	defer errf.Close()
	cmd.Stdout, cmd.Stderr = outf, errf
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("start wharf-runtime: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		e.t.Fatalf("wharf-runtime %s: hung", strings.Join(args, " "))
	}
	out, _ := os.ReadFile(outf.Name())
	errb, _ := os.ReadFile(errf.Name())
	r := result{stdout: string(out), stderr: string(errb)}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("wharf-runtime %s: %v", strings.Join(args, " "), err)
	}
	return r
}

func (e *env) ok(args ...string) result {
	e.t.Helper()
	r := e.run(args...)
	if r.code != 0 {
		e.t.Fatalf("wharf-runtime %s: %s", strings.Join(args, " "), r)
	}
	return r
}

type state struct {
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Annotations map[string]string `json:"annotations"`
}

func (e *env) state(id string) state {
	e.t.Helper()
	r := e.ok("state", id)
	var s state
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		e.t.Fatalf("state %s: %v: %q", id, err, r.stdout)
	}
	return s
}

// waitStatus polls the state until it is want (bounded; time is never asserted).
func (e *env) waitStatus(id, want string) {
	e.t.Helper()
	var s state
	for i := 0; i < 500; i++ {
		if s = e.state(id); s.Status == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatalf("container %s: status %s, want %s", id, s.Status, want)
}

// hasNsenter reports whether the binary can join user and time namespaces (cgo build).
func (e *env) hasNsenter() bool {
	var f struct {
		Annotations map[string]string `json:"annotations"`
	}
	json.Unmarshal([]byte(e.ok("features").stdout), &f)
	return f.Annotations["io.github.wharfoci.wharf-runtime.nsenter"] == "true"
}

// lastLogError is the msg of the last error line of the JSON log.
func (e *env) lastLogError() string {
	b, _ := os.ReadFile(e.log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		var l struct{ Level, Msg, Time string }
		if json.Unmarshal([]byte(lines[i]), &l) == nil && l.Level == "error" && l.Time != "" {
			return l.Msg
		}
	}
	return ""
}

// bundleOpt changes what bundle writes; the zero value, plain, is the default bundle.
type bundleOpt uint

const (
	plain        bundleOpt = 0
	writableRoot bundleOpt = 1 << iota // root.readonly false
	withTerminal                       // process.terminal true
)

// defaultArgs are the process.args of a bundle made without args.
var defaultArgs = []string{"sh", "-c", "echo hello from $(hostname)"}

// bundleSpec is the config.json of a busybox bundle: ociVersion 1.0.2, root 0:0, read-only
// root (unless writableRoot), new pid, network, ipc, uts and mount namespaces, the usual /proc,
// /dev, /sys mounts, masked and read-only paths, RLIMIT_NOFILE 1024, noNewPrivileges, three
// capabilities in every set, hostname wharf, and args as process.args (defaultArgs when none).
func bundleSpec(opt bundleOpt, args []string) *specs.Spec {
	if len(args) == 0 {
		args = defaultArgs
	}
	s := specdefault.Spec() // runc spec's default, which wharf-runtime spec prints
	s.Version = "1.0.2"
	s.Process.Terminal = opt&withTerminal != 0
	s.Process.Args = args
	caps := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps, Ambient: caps}
	s.Root = &specs.Root{Path: "rootfs", Readonly: opt&writableRoot == 0}
	s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.CgroupNamespace })
	return s
}

// bundle makes a busybox bundle in a new temporary directory and returns its path: rootfs/ is
// the busybox test image's root file system (testutil.BusyboxRootfs), config.json is
// bundleSpec(opt, args), then edit, when not nil, changes it as decoded JSON (objects are
// map[string]any, arrays []any).
func bundle(t *testing.T, opt bundleOpt, edit func(cfg map[string]any), args ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "bundle")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	testutil.BusyboxRootfs(t, filepath.Join(dir, "rootfs"))
	b, err := json.Marshal(bundleSpec(opt, args))
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		var cfg map[string]any
		if err := json.Unmarshal(b, &cfg); err != nil {
			t.Fatal(err)
		}
		edit(cfg)
		if b, err = json.Marshal(cfg); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func obj(cfg map[string]any, key string) map[string]any {
	m, _ := cfg[key].(map[string]any)
	if m == nil {
		m = map[string]any{}
		cfg[key] = m
	}
	return m
}

// cgroupLeft reports the hierarchies that still hold a cgroup for the id (created with an
// empty cgroupsPath: relative to the test's own cgroup, named after the id).
func cgroupLeft(t *testing.T, id string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		name := strings.TrimPrefix(parts[1], "name=")
		if name == "" {
			name = "unified"
		}
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", name, parts[2], id)); err == nil {
			left = append(left, name)
		}
	}
	return left
}
