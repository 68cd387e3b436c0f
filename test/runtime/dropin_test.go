//go:build integration

package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/internal/testutil"
)

// TestPeerDropins runs wharf-runtime as the runc of containerd 1.6 (through its
// io.containerd.runc.v2 shim, driven with ctr) and of podman 4.3 (through conmon), each step
// a subtest; every step must pass. The runtime's calls are logged by a wrapper and summarised.
func TestPeerDropins(t *testing.T) {
	rt := rtBin(t)
	t.Run("containerd", func(t *testing.T) { containerdDropin(t, rt) })
	t.Run("podman", func(t *testing.T) { podmanDropin(t, rt) })
}

// containerdDropin drives a private containerd (root, state, sockets and opt dir in a short
// temporary directory; CRI off) with ctr through the 16 steps of a runc drop-in check.
func containerdDropin(t *testing.T, rt string) {
	testutil.Need(t, "containerd", "ctr", "containerd-shim-runc-v2", "script")
	w := shortTempDir(t, "wctd")
	sock := filepath.Join(w, "containerd.sock")
	if len(sock) >= 100 {
		t.Fatalf("socket path %s: %d characters, must stay under 100 (set TMPDIR shorter)", sock, len(sock))
	}
	for _, d := range []string{"root", "state", "opt", "fifo", "runc-root", "bin"} {
		mkdir(t, filepath.Join(w, d))
	}
	archive := busyboxArchive(t, w)
	argv := filepath.Join(w, "runtime-argv.log")
	logged := loggingWrapper(t, filepath.Join(w, "runtime-logged"), rt, argv)
	// the shim runs "runc" from containerd's PATH when it is given no --runc-binary
	if err := os.Symlink(logged, filepath.Join(w, "bin", "runc")); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(w, "config.toml")
	writeFile(t, config, fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[ttrpc]
  address = %q
[debug]
  level = "info"
[plugins."io.containerd.internal.v1.opt"]
  path = %q
`, filepath.Join(w, "root"), filepath.Join(w, "state"), sock, sock+".ttrpc", filepath.Join(w, "opt")))

	const ns = "wharf-dropin"
	const img = "docker.io/wharf-dropin/busybox:latest"
	ctr := []string{"ctr", "-a", sock, "-n", ns}
	up := func() bool {
		_, err := command(10*time.Second, "ctr", "--connect-timeout", "1s", "-a", sock, "version")
		return err == nil
	}
	logf, err := os.Create(filepath.Join(w, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	daemon := exec.Command("containerd", "--config", config)
	daemon.Env = append(os.Environ(), "PATH="+filepath.Join(w, "bin")+":"+os.Getenv("PATH"))
	daemon.Stdout, daemon.Stderr = logf, logf
	if err := daemon.Start(); err != nil {
		t.Fatalf("start containerd: %v", err)
	}
	exited := make(chan struct{})
	go func() { daemon.Wait(); close(exited) }()
	t.Cleanup(func() {
		// whatever happened: no task, no container, no containerd, no shim of ours
		if up() {
			out, _ := command(30*time.Second, append(ctr, "task", "ls", "-q")...)
			for _, id := range strings.Fields(out) {
				command(30*time.Second, append(ctr, "task", "kill", "-s", "SIGKILL", id)...)
				command(30*time.Second, append(ctr, "task", "delete", "-f", id)...)
			}
			out, _ = command(30*time.Second, append(ctr, "container", "ls", "-q")...)
			for _, id := range strings.Fields(out) {
				command(30*time.Second, append(ctr, "container", "delete", id)...)
			}
		}
		stopPid(daemon.Process.Pid, exited, 10*time.Second)
		for _, pid := range pidsWithArg(sock) {
			stopPid(pid, nil, 5*time.Second)
		}
		umountBelow(w)
		for _, d := range globDirs("/sys/fs/cgroup/*/" + ns) {
			os.Remove(d) // the namespace's parent cgroups, when empty
		}
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("containerd log tail:\n%s", tail(string(b), 15))
		}
	})
	for i := 0; i < 100 && !up(); i++ {
		select {
		case <-exited:
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("containerd exited: %s", tail(string(b), 20))
		case <-time.After(200 * time.Millisecond):
		}
	}
	if !up() {
		b, _ := os.ReadFile(logf.Name())
		t.Fatalf("containerd did not answer on %s: %s", sock, tail(string(b), 20))
	}

	runOpts := []string{"--fifo-dir", filepath.Join(w, "fifo"), "--runc-root", filepath.Join(w, "runc-root"),
		"--runtime", "io.containerd.runc.v2", "--snapshotter", "overlayfs"}
	run := func(args ...string) []string {
		return append(append(append(append([]string{}, ctr...), "run"), runOpts...), args...)
	}
	taskStatus := func(id string) string {
		out, _ := command(30*time.Second, append(ctr, "task", "ls")...)
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) >= 3 && f[0] == id {
				return f[2]
			}
		}
		return ""
	}
	waitStatus := func(id, want string) func(t *testing.T) { return waitFor("task "+id, taskStatus, id, want) }

	s := &steps{t: t}
	s.run("image-import", func(t *testing.T) {
		ok(t, append(ctr, "image", "import", "--base-name", "docker.io/wharf-dropin/busybox", archive)...)
		expect(t, "(?m)^"+regexp.QuoteMeta(img)+"$", append(ctr, "image", "ls", "-q")...)
	})
	s.run("run-rm", func(t *testing.T) {
		expect(t, "hello from wharf via containerd", run("--rm", "--runc-binary", logged, img, "wd-plain",
			"sh", "-c", "echo hello from wharf via containerd; id")...)
	})
	s.run("run-detached", func(t *testing.T) {
		ok(t, run("-d", "--runc-binary", logged, img, "wd-det", "sleep", "600")...)
	})
	s.run("task-running", waitStatus("wd-det", "RUNNING"))
	s.run("task-exec", func(t *testing.T) {
		expect(t, "(?m)^exec-ok", append(ctr, "task", "exec", "--fifo-dir", filepath.Join(w, "fifo"), "--exec-id", "e1",
			"wd-det", "sh", "-c", "echo exec-ok; ps")...)
	})
	s.run("task-ps", func(t *testing.T) { expect(t, "(?m)^[0-9]+", append(ctr, "task", "ps", "wd-det")...) })
	s.run("task-pause", func(t *testing.T) { ok(t, append(ctr, "task", "pause", "wd-det")...) })
	s.run("task-paused", waitStatus("wd-det", "PAUSED"))
	s.run("task-resume", func(t *testing.T) { ok(t, append(ctr, "task", "resume", "wd-det")...) })
	s.run("task-resumed", waitStatus("wd-det", "RUNNING"))
	s.run("task-metrics", func(t *testing.T) { expect(t, "pids|memory|cpu", append(ctr, "task", "metrics", "wd-det")...) })
	s.run("task-kill", func(t *testing.T) { ok(t, append(ctr, "task", "kill", "-s", "SIGKILL", "wd-det")...) })
	s.run("task-stopped", waitStatus("wd-det", "STOPPED"))
	s.run("task-delete", func(t *testing.T) {
		ok(t, append(ctr, "task", "delete", "wd-det")...)
		ok(t, append(ctr, "container", "delete", "wd-det")...)
	})
	s.run("runc-on-path", func(t *testing.T) {
		expect(t, "hello via the runc on PATH", run("--rm", img, "wd-path", "echo", "hello via the runc on PATH")...)
	})
	s.run("tty-run", func(t *testing.T) {
		expect(t, "tty-ok", underScript(run("--rm", "-t", "--runc-binary", logged, img, "wd-tty", "sh", "-c", "tty; echo tty-ok"))...)
	})
	s.report("containerd drop-in", argv)
}

// podmanDropin drives podman with --runtime set to the runtime (private vfs storage,
// cgroupfs, file events, no network) through the 14 steps of a runc drop-in check.
func podmanDropin(t *testing.T, rt string) {
	testutil.Need(t, "podman", "conmon", "script")
	w := shortTempDir(t, "wpod")
	rr := filepath.Join(w, "rr")
	if len(rr) >= 50 {
		t.Fatalf("podman --runroot %s: %d characters, must stay under 50 (set TMPDIR shorter)", rr, len(rr))
	}
	for _, d := range []string{"root", "rr", "tmp"} {
		mkdir(t, filepath.Join(w, d))
	}
	archive := busyboxArchive(t, w)
	argv := filepath.Join(w, "runtime-argv.log")
	logged := loggingWrapper(t, filepath.Join(w, "runtime-logged"), rt, argv)
	podman := []string{"podman", "--root", filepath.Join(w, "root"), "--runroot", rr, "--tmpdir", filepath.Join(w, "tmp"),
		"--storage-driver", "vfs", "--events-backend", "file", "--cgroup-manager", "cgroupfs", "--runtime", logged}
	p := func(args ...string) []string { return append(append([]string{}, podman...), args...) }
	// root lacks CAP_SYS_RESOURCE here: podman's default nofile of 1048576 fails in any runtime
	limits := []string{"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "--network", "none"}
	prun := func(args ...string) []string { return append(append(p("run"), limits...), args...) }
	const img = "localhost/wharf-dropin/busybox:latest"
	cleanup := func() {
		command(60*time.Second, p("rm", "-a", "-f", "-t", "0")...)
		for _, pid := range pidsWithArg(w + "/") {
			if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) == "conmon" {
				stopPid(pid, nil, 5*time.Second)
			}
		}
		umountBelow(w)
	}
	t.Cleanup(cleanup)
	status := func(id string) string {
		out, _ := command(30*time.Second, p("inspect", "-f", "{{.State.Status}}", id)...)
		return strings.TrimSpace(out)
	}
	waitStatus := func(id, want string) func(t *testing.T) { return waitFor("container "+id, status, id, want) }

	s := &steps{t: t}
	s.run("image-pull", func(t *testing.T) {
		id := strings.TrimSpace(ok(t, p("pull", "-q", "oci-archive:"+archive)...))
		if f := strings.Fields(id); len(f) > 0 {
			id = f[len(f)-1]
		}
		ok(t, p("tag", id, img)...)
		expect(t, "wharf-dropin/busybox", p("images")...)
	})
	s.run("run-rm", func(t *testing.T) {
		expect(t, "(?m)^hi from podman", prun("--rm", img, "sh", "-c", "echo hi from podman; id")...)
	})
	s.run("run-detached", func(t *testing.T) { ok(t, prun("-d", "--name", "wd-det", img, "sleep", "600")...) })
	s.run("running", waitStatus("wd-det", "running"))
	s.run("exec", func(t *testing.T) { expect(t, "(?m)^exec-ok", p("exec", "wd-det", "sh", "-c", "echo exec-ok; id")...) })
	s.run("top", func(t *testing.T) { expect(t, "sleep 600", p("top", "wd-det")...) })
	s.run("pause", func(t *testing.T) { ok(t, p("pause", "wd-det")...) })
	s.run("paused", waitStatus("wd-det", "paused"))
	s.run("unpause", func(t *testing.T) { ok(t, p("unpause", "wd-det")...) })
	s.run("unpaused", waitStatus("wd-det", "running"))
	// the container's PID 1 ignores SIGTERM: SIGKILL after 1 s
	s.run("stop", func(t *testing.T) { ok(t, p("stop", "-t", "1", "wd-det")...) })
	s.run("stopped", waitStatus("wd-det", "exited"))
	s.run("rm", func(t *testing.T) {
		ok(t, p("rm", "wd-det")...)
		if out, err := command(30*time.Second, p("container", "exists", "wd-det")...); err == nil {
			t.Fatalf("container wd-det still exists after rm: %s", out)
		}
	})
	s.run("tty-run", func(t *testing.T) {
		expect(t, "tty-ok", underScript(prun("--rm", "-t", img, "sh", "-c", "tty; echo tty-ok"))...)
	})
	s.report("podman drop-in", argv)
}

// steps runs the steps of a drop-in check as subtests of t, in order, a failed step not
// stopping the next ones, and counts them.
type steps struct {
	t              *testing.T
	passed, failed int
	failedNames    []string
}

func (s *steps) run(name string, f func(t *testing.T)) {
	if s.t.Run(name, f) {
		s.passed++
	} else {
		s.failed++
		s.failedNames = append(s.failedNames, name)
	}
}

// report logs the runtime calls found in the wrapper's log and reports the counts as
// "NAME: passed=N failed=M".
func (s *steps) report(name, argvLog string) {
	s.t.Helper()
	s.t.Logf("runtime calls: %s", summariseCalls(argvLog))
	if s.failed > 0 {
		s.t.Errorf("failed steps: %s", strings.Join(s.failedNames, " "))
	}
	testutil.Report(s.t, "%s: passed=%d failed=%d", name, s.passed, s.failed)
}

// runtimeVerbs are the runtime commands counted in a wrapper's log: the first of them in a
// call's arguments is its verb.
var runtimeVerbs = map[string]bool{
	"create": true, "start": true, "state": true, "kill": true, "delete": true, "exec": true, "ps": true,
	"pause": true, "resume": true, "update": true, "events": true, "run": true, "list": true, "features": true,
	"checkpoint": true, "restore": true,
}

// summariseCalls counts the verbs of the calls in a wrapper's log: "create x3, start x3, ...".
func summariseCalls(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	n := map[string]int{}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		for _, f := range f[1:] { // f[0] is the caller
			if runtimeVerbs[f] {
				n[f]++
				break
			}
		}
	}
	verbs := make([]string, 0, len(n))
	for v := range n {
		verbs = append(verbs, v)
	}
	sort.Strings(verbs)
	var out []string
	for _, v := range verbs {
		out = append(out, fmt.Sprintf("%s x%d", v, n[v]))
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

// loggingWrapper writes at path a shell script that appends its caller's name and its
// arguments to argvLog, one line per call, then execs rt with them; it returns path.
func loggingWrapper(t *testing.T, path, rt, argvLog string) string {
	t.Helper()
	writeFile(t, argvLog, "")
	writeFile(t, path, fmt.Sprintf("#!/bin/sh\necho \"$(cat /proc/$PPID/comm 2>/dev/null) $*\" >> %s\nexec %s \"$@\"\n",
		shellQuote(argvLog), shellQuote(rt)))
	if err := os.Chmod(path, 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// busyboxArchive returns an oci-archive of the busybox test image (tag latest), written by
// wharf copy into dir.
func busyboxArchive(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "busybox.tar")
	testutil.Run(t, testutil.Bin(t, "wharf"), "-q", "copy", "oci:"+testutil.Image(t, "busybox")+":latest", "oci-archive:"+p+":latest")
	return p
}

// shortTempDir returns a new directory directly under the temporary directory (socket
// paths must stay short), mode 0755 (users mapped by a container's user namespace must reach
// what is below it), removed at cleanup after every mount below it.
func shortTempDir(t *testing.T, prefix string) string {
	t.Helper()
	d, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := removeAll(d); err != nil {
			t.Errorf("clean up: %v", err)
		}
	})
	return d
}

// command runs argv with its output (stdout and stderr, interleaved) in a file, not a pipe
// (daemons it starts may keep their stdio), killed after timeout; it returns the output and
// an error for a non-zero exit.
func command(timeout time.Duration, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	f, err := os.CreateTemp("", "wd-out")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Run()
	out, _ := os.ReadFile(f.Name())
	if ctx.Err() != nil {
		err = fmt.Errorf("%s: killed after %s", argv[0], timeout)
	}
	return string(out), err
}

// ok runs argv (bounded) and fails the test unless it exits 0; it returns the output.
func ok(t *testing.T, argv ...string) string {
	t.Helper()
	out, err := command(2*time.Minute, argv...)
	t.Logf("$ %s\n%s", shellJoin(argv), out)
	if err != nil {
		t.Fatalf("%s: %v", argv[0], err)
	}
	return out
}

// expect runs argv as ok does and fails the test unless the output matches the regexp.
func expect(t *testing.T, pattern string, argv ...string) {
	t.Helper()
	if out := ok(t, argv...); !regexp.MustCompile(pattern).MatchString(out) {
		t.Fatalf("output does not match /%s/", pattern)
	}
}

// underScript returns argv run by script(1) on a new pseudo-terminal.
func underScript(argv []string) []string {
	return []string{"script", "-qec", shellJoin(argv), "/dev/null"}
}

// shellJoin is argv as one sh command line.
func shellJoin(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}

// shellQuote quotes s for sh.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// pidsWithArg returns the processes (not this one) with an argument that contains s.
func pidsWithArg(s string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(b, []byte(s)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// stopPid sends SIGTERM to pid, then SIGKILL when it is still there after grace. A child of
// ours is waited for through exited (closed when reaped); anyone else's end is polled.
func stopPid(pid int, exited <-chan struct{}, grace time.Duration) {
	gone := func() bool {
		if exited != nil {
			select {
			case <-exited:
				return true
			default:
				return false
			}
		}
		return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
	}
	if gone() {
		return
	}
	syscall.Kill(pid, syscall.SIGTERM)
	for deadline := time.Now().Add(grace); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if gone() {
			return
		}
	}
	syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 100 && !gone(); i++ {
		time.Sleep(50 * time.Millisecond)
	}
}

// mountsBelow returns the mount points below dir (in this mount namespace), deepest first.
func mountsBelow(dir string) []string {
	d, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil
	}
	b, _ := os.ReadFile("/proc/self/mountinfo")
	var points []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 5 {
			continue
		}
		p := strings.ReplaceAll(f[4], `\040`, " ")
		if strings.HasPrefix(p, d+"/") {
			points = append(points, p)
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(points)))
	return points
}

// umountBelow lazily unmounts every mount point below dir, deepest first, and reports
// whether none is left.
func umountBelow(dir string) bool {
	for _, p := range mountsBelow(dir) {
		unix.Unmount(p, unix.MNT_DETACH)
	}
	return len(mountsBelow(dir)) == 0
}

// removeAll removes dir after unmounting everything below it; with a mount left, it
// removes nothing (it would reach into what is mounted there).
func removeAll(dir string) error {
	if !umountBelow(dir) {
		return fmt.Errorf("remove %s: mounts left below it: %v", dir, mountsBelow(dir))
	}
	return os.RemoveAll(dir)
}

func globDirs(pattern string) []string {
	m, _ := filepath.Glob(pattern)
	return m
}

func tail(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

func mkdir(t *testing.T, d string) {
	t.Helper()
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitFor is a step that polls status(id) for 5 s until it says want.
func waitFor(what string, status func(string) string, id, want string) func(t *testing.T) {
	return func(t *testing.T) {
		var s string
		for i := 0; i < 50; i++ {
			if s = status(id); s == want {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("%s: status %q, want %s", what, s, want)
	}
}
