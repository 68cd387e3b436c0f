//go:build integration

package runtime

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// leakedDir opens a host directory and returns it n times: given to the runtime as ExtraFiles
// it is inherited at 3…3+n-1 without close-on-exec, as a careless caller (or a runtime bug:
// CVE-2024-21626 leaked a cgroup directory) would leave it. The directory is the canary: a
// process running there could write into the host.
func leakedDir(t *testing.T, n int) (string, []*os.File) {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	files := make([]*os.File, n)
	for i := range files {
		files[i] = f
	}
	return dir, files
}

func withCwd(cwd string) func(cfg map[string]any) {
	return func(cfg map[string]any) { obj(cfg, "process")["cwd"] = cwd }
}

// TestCwdOutsideRoot: a process.cwd that reaches a host directory through a descriptor
// (/proc/self/fd/N) is refused — for a descriptor the runtime was given and leaks, for one
// --preserve-fds passes on purpose, and for exec — and no process runs there.
func TestCwdOutsideRoot(t *testing.T) {
	e := newEnv(t)
	const escape = "touch escaped; echo ran in $(pwd)"
	refused := func(t *testing.T, r result, canary string) {
		t.Helper()
		if r.code == 0 {
			t.Fatalf("the process ran: %s", r)
		}
		if msg := e.lastLogError(); !strings.Contains(msg, "outside the container's root") {
			t.Fatalf("error %q (%s), want the working directory named outside the container's root", msg, r)
		}
		if _, err := os.Stat(filepath.Join(canary, "escaped")); err == nil {
			t.Fatal("the process wrote into the host directory")
		}
	}
	t.Run("leaked descriptor", func(t *testing.T) {
		canary, files := leakedDir(t, 7) // fds 3…9; the init's own take 3 and 4
		b := bundle(t, plain, withCwd("/proc/self/fd/9"), "sh", "-c", escape)
		cmd := e.cmd("run", "--bundle", b, "cwd-leak")
		cmd.ExtraFiles = files
		refused(t, e.runCmd(cmd), canary)
	})
	t.Run("preserved descriptor", func(t *testing.T) {
		canary, files := leakedDir(t, 1)
		b := bundle(t, plain, withCwd("/proc/self/fd/3"), "sh", "-c", escape)
		cmd := e.cmd("run", "--bundle", b, "--preserve-fds", "1", "cwd-preserved")
		cmd.ExtraFiles = files
		refused(t, e.runCmd(cmd), canary)
	})
	t.Run("the init's own descriptors", func(t *testing.T) {
		// whatever the init holds while it builds the container (the host's /proc/self/fd it
		// opens the exec fifo through, the Go runtime's cgroup files…) never becomes the cwd
		outside := 0
		for n := 3; n <= 12; n++ {
			b := bundle(t, plain, withCwd("/proc/self/fd/"+strconv.Itoa(n)), "sh", "-c", "echo ran")
			r := e.run("run", "--bundle", b, "cwd-own")
			if r.code == 0 || strings.Contains(r.stdout, "ran") {
				t.Fatalf("cwd /proc/self/fd/%d: the process ran: %s", n, r)
			}
			if strings.Contains(e.lastLogError()+r.stderr, "outside the container's root") {
				outside++
			}
			e.run("delete", "--force", "cwd-own")
		}
		if outside == 0 {
			t.Fatal("no descriptor of the init was refused as outside the root: the check was not reached")
		}
	})
	t.Run("exec", func(t *testing.T) {
		e.ok("run", "-d", "--bundle", bundle(t, plain, nil, "sleep", "30"), "cwd-exec")
		defer e.run("delete", "--force", "cwd-exec")
		canary, files := leakedDir(t, 7)
		cmd := e.cmd("exec", "--cwd", "/proc/self/fd/9", "cwd-exec", "sh", "-c", escape)
		cmd.ExtraFiles = files
		refused(t, e.runCmd(cmd), canary)
		// and the same exec with a cwd inside the container runs
		cmd = e.cmd("exec", "--cwd", "/tmp", "cwd-exec", "sh", "-c", "pwd")
		cmd.ExtraFiles = files
		if r := e.runCmd(cmd); r.code != 0 || r.stdout != "/tmp\n" {
			t.Fatalf("exec --cwd /tmp: %s", r)
		}
	})
}

// openFds parses `ls -l /proc/self/fd` run as the container's process: descriptor → target,
// without the one ls reads the directory through (closed by the time ls reads its link, so
// shown without a target).
func openFds(t *testing.T, out string) map[int]string {
	t.Helper()
	fds := map[int]string{}
	own := 0
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, "l") {
			continue // "total 0", or what the process printed
		}
		left, target, ok := strings.Cut(l, " -> ")
		f := strings.Fields(left)
		fd, err := strconv.Atoi(f[len(f)-1])
		if err != nil {
			t.Fatalf("ls -l line %q", l)
		}
		if !ok {
			own++
			continue
		}
		fds[fd] = target
	}
	if own != 1 || len(fds) == 0 {
		t.Fatalf("ls -l /proc/self/fd: %q", out)
	}
	return fds
}

func fdNumbers(fds map[int]string) []int {
	var n []int
	for fd := range fds {
		n = append(n, fd)
	}
	slices.Sort(n)
	return n
}

// TestNoLeakedFds: the container's process holds stdio and what LISTEN_FDS and
// --preserve-fds ask for, nothing else — not the runtime's own descriptors (its log file, the
// state directory's lock, the sync socket, the exec fifo), nor what its caller leaked to it.
func TestNoLeakedFds(t *testing.T) {
	e := newEnv(t)
	ls := []string{"ls", "-l", "/proc/self/fd"}
	passed := filepath.Join(t.TempDir(), "passed")
	if err := os.WriteFile(passed, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	passedFile := func() *os.File {
		f, err := os.Open(passed)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	_, leaked := leakedDir(t, 6)
	for _, tc := range []struct {
		name  string
		args  []string
		extra []*os.File
		want  []int
	}{
		{"run", []string{"run", "--bundle", bundle(t, plain, nil, ls...), "fd-run"}, leaked, []int{0, 1, 2}},
		{"run --preserve-fds 1", []string{"run", "--bundle", bundle(t, plain, nil, ls...), "--preserve-fds", "1", "fd-preserve"},
			append([]*os.File{passedFile()}, leaked...), []int{0, 1, 2, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := e.cmd(tc.args...)
			cmd.ExtraFiles = tc.extra
			r := e.runCmd(cmd)
			if r.code != 0 {
				t.Fatal(r)
			}
			fds := openFds(t, r.stdout)
			if got := fdNumbers(fds); !slices.Equal(got, tc.want) {
				t.Fatalf("open descriptors %v (%v), want %v", got, fds, tc.want)
			}
			if len(tc.want) > 3 && fds[3] != passed {
				t.Fatalf("fd 3 is %s, want %s", fds[3], passed)
			}
		})
	}
	t.Run("exec", func(t *testing.T) {
		e.ok("run", "-d", "--bundle", bundle(t, plain, nil, "sleep", "30"), "fd-exec")
		defer e.run("delete", "--force", "fd-exec")
		cmd := e.cmd(append([]string{"exec", "fd-exec"}, ls...)...)
		cmd.ExtraFiles = leaked
		r := e.runCmd(cmd)
		if got := fdNumbers(openFds(t, r.stdout)); r.code != 0 || !slices.Equal(got, []int{0, 1, 2}) {
			t.Fatalf("exec: open descriptors %v (%s), want 0 1 2", got, r)
		}
	})
	t.Run("LISTEN_FDS", func(t *testing.T) {
		// systemd's socket activation: LISTEN_PID names the runtime (the shell execs it)
		b := bundle(t, plain, nil, "sh", "-c", `echo "env $LISTEN_FDS $LISTEN_PID"; exec ls -l /proc/self/fd`)
		cmd := e.cmd("run", "--bundle", b, "--preserve-fds", "1", "fd-listen")
		cmd.Args = append([]string{"sh", "-c", `LISTEN_FDS=2 LISTEN_PID=$$ exec "$@"`, "sh"}, cmd.Args...)
		cmd.Path = "/bin/sh"
		cmd.ExtraFiles = append([]*os.File{passedFile(), passedFile(), passedFile()}, leaked...)
		r := e.runCmd(cmd)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "env 2 1\n") {
			t.Fatalf("LISTEN_FDS=2: %s", r)
		}
		if got := fdNumbers(openFds(t, r.stdout)); !slices.Equal(got, []int{0, 1, 2, 3, 4, 5}) {
			t.Fatalf("LISTEN_FDS=2 --preserve-fds 1: open descriptors %v, want 0 to 5", got)
		}
	})
	t.Run("preserve-fds beyond what the runtime was given", func(t *testing.T) {
		// the runtime holds its log file at 3: asking for a descriptor it was not given is
		// refused, never filled with one of its own
		b := bundle(t, plain, nil, ls...)
		r := e.run("run", "--bundle", b, "--preserve-fds", "1", "fd-none")
		if r.code == 0 || !strings.Contains(e.lastLogError(), "pass descriptor 3") {
			t.Fatalf("run --preserve-fds 1 without fd 3: %s (%s)", r, e.lastLogError())
		}
	})
}
