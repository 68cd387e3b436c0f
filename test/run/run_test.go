//go:build integration

package run

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/internal/testutil"
)

func TestMain(m *testing.M) {
	// Containers' orphans must be reaped by someone: PID 1 here does not.
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	os.Exit(m.Run())
}

func wharf(t *testing.T, args ...string) testutil.Result {
	t.Helper()
	return testutil.Exec(t, testutil.Bin(t, "wharf"), args...)
}

// TestRun runs the busybox image from a layout with wharf-runtime and with runc: output, the
// container's exit status passed back, env, and nothing left behind.
func TestRun(t *testing.T) {
	testutil.Need(t, "runc")
	testutil.Bin(t, "wharf-runtime")
	img := "oci:" + testutil.Image(t, "busybox") + ":latest"
	state := t.TempDir()
	rtRoot := t.TempDir()
	vol := t.TempDir()
	if err := os.WriteFile(filepath.Join(vol, "f"), []byte("host file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hostNet, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		args    []string
		code    int
		stdout  string
		runtime string
	}{
		{"echo", []string{"echo", "hello"}, 0, "hello\n", ""},
		{"exit status", []string{"sh", "-c", "exit 7"}, 7, "", ""},
		{"env", []string{"-e", "GREETING=hi there", img, "sh", "-c", "echo $GREETING"}, 0, "hi there\n", ""},
		{"runc", []string{"sh", "-c", "echo via $0"}, 0, "via sh\n", "runc"},
		// podman run's flags, with both runtimes
		{"user, workdir, hostname", []string{"-u", "nobody", "-w", "/tmp", "--hostname", "hh", img, "sh", "-c", "id -u; pwd; hostname"}, 0, "65534\n/tmp\nhh\n", ""},
		{"entrypoint", []string{"--entrypoint", `["sh","-c"]`, img, "echo $0", "arg0"}, 0, "arg0\n", ""},
		{"volumes and read-only root", []string{"-v", vol + ":/ro:ro", "-v", vol + ":/rw", "--read-only", img, "sh", "-c",
			"cat /ro/f; touch /ro/x 2>/dev/null || echo ro; touch /rw/y && echo rw; touch /z 2>/dev/null || echo root-ro"}, 0, "host file\nro\nrw\nroot-ro\n", ""},
		{"host network", []string{"--network", "host", img, "sh", "-c", "readlink /proc/self/ns/net"}, 0, hostNet + "\n", "runc"},
		{"limits and caps", []string{"--memory", "64m", "--pids-limit", "20", "--cap-drop", "ALL", img, "sh", "-c",
			"cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; grep CapEff /proc/self/status"}, 0, "67108864\n20\nCapEff:\t0000000000000000\n", ""},
		{"bad flag value", []string{"--network", "bridge", img, "true"}, 2, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"run", "--state-dir", state, "--runtime-root", rtRoot}
			if tc.runtime != "" {
				args = append(args, "--runtime", tc.runtime)
			}
			if strings.HasPrefix(tc.args[0], "-") {
				args = append(args, tc.args...)
			} else {
				args = append(append(args, img), tc.args...)
			}
			r := wharf(t, args...)
			if r.Code != tc.code || r.Stdout != tc.stdout {
				t.Fatalf("wharf %s: exit %d, stdout %q, stderr %q; want exit %d, stdout %q",
					strings.Join(args, " "), r.Code, r.Stdout, r.Stderr, tc.code, tc.stdout)
			}
		})
	}
	if ents, _ := os.ReadDir(state); len(ents) != 0 {
		t.Errorf("bundles left in %s: %v", state, ents)
	}
	if ents, _ := os.ReadDir(rtRoot); len(ents) != 0 {
		t.Errorf("containers left in %s: %v", rtRoot, ents)
	}
}

// syncBuffer is a bytes.Buffer that a child's output can fill while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestRunForwardsSignals: a SIGTERM sent to wharf reaches the container's process.
func TestRunForwardsSignals(t *testing.T) {
	testutil.Need(t)
	testutil.Bin(t, "wharf-runtime")
	img := "oci:" + testutil.Image(t, "busybox") + ":latest"
	cmd := exec.Command(testutil.Bin(t, "wharf"), "run", "--state-dir", t.TempDir(), "--runtime-root", t.TempDir(), img,
		"sh", "-c", `trap 'echo got TERM; exit 42' TERM; echo ready; while :; do sleep 0.1; done`)
	var out syncBuffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; !strings.Contains(out.String(), "ready"); i++ {
		if i > 200 {
			cmd.Process.Kill()
			t.Fatalf("container did not start: %q", out.String())
		}
		time.Sleep(25 * time.Millisecond)
	}
	cmd.Process.Signal(unix.SIGTERM)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 42 || !strings.Contains(out.String(), "got TERM") {
		t.Fatalf("after SIGTERM: %v, stdout %q; want exit 42 and \"got TERM\"", err, out.String())
	}
}

// TestRunErrors: bad input gets a one-line error and a non-zero exit, and leaves nothing.
func TestRunErrors(t *testing.T) {
	testutil.Bin(t, "wharf-runtime")
	img := "oci:" + testutil.Image(t, "busybox") + ":latest"
	state := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no image", []string{"run"}, 2, "needs at least 1 argument"},
		{"missing layout", []string{"run", "--state-dir", state, "oci:" + filepath.Join(state, "nope") + ":latest", "true"}, 3, "not found"},
		{"missing tag", []string{"run", "--state-dir", state, img[:len(img)-len(":latest")] + ":nope", "true"}, 3, "not found"},
		{"missing runtime", []string{"run", "--state-dir", state, "--runtime", "/nonexistent/rt", img, "true"}, 3, "find runtime"},
		{"workdir at a descriptor", []string{"run", "--state-dir", state, "-w", "/proc/self/fd/5", img, "true"}, 2, "CVE-2024-21626"},
		{"volume in proc", []string{"run", "--state-dir", state, "-v", "/tmp:/proc/x", img, "true"}, 2, "/proc or /sys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := wharf(t, tc.args...)
			if r.Code != tc.code || !strings.Contains(r.Stderr, tc.msg) || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
				t.Fatalf("exit %d, stderr %q; want exit %d and one line with %q", r.Code, r.Stderr, tc.code, tc.msg)
			}
		})
	}
	if ents, _ := os.ReadDir(state); len(ents) != 0 {
		t.Errorf("bundles left in %s: %v", state, ents)
	}
}

// TestWalkthrough is the reference walkthrough with wharf alone: push an image to wharf's
// registry, pull it back as an OCI layout, inspect its manifest, unpack it to a bundle and run
// the bundle with wharf-runtime; then `wharf run` straight from the registry.
func TestWalkthrough(t *testing.T) {
	testutil.Need(t)
	rt := testutil.Bin(t, "wharf-runtime")
	src := "oci:" + testutil.Image(t, "busybox") + ":latest"
	work := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	srv := exec.Command(testutil.Bin(t, "wharf"), "serve", "--addr", addr, "--root", filepath.Join(work, "registry"))
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Signal(unix.SIGTERM); srv.Wait() }()
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if i > 100 {
			t.Fatal("registry did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	ref := "docker://" + addr + "/demo/busybox:latest"
	pulled := filepath.Join(work, "pulled")
	bundle := filepath.Join(work, "bundle")
	steps := [][]string{
		{"copy", src, ref},
		{"copy", ref, "oci:" + pulled + ":latest"},
		{"inspect", "--raw", "oci:" + pulled + ":latest"},
		{"validate", "oci:" + pulled + ":latest"},
		{"unpack", "oci:" + pulled + ":latest", bundle},
	}
	for _, s := range steps {
		if r := wharf(t, s...); r.Code != 0 {
			t.Fatalf("wharf %s: exit %d: %s", strings.Join(s, " "), r.Code, r.Stderr)
		}
	}
	cmd := exec.Command(rt, "--root", filepath.Join(work, "rt"), "run", "--bundle", bundle, "walkthrough")
	cmd.Stdin = strings.NewReader("echo hello from the walkthrough\n")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "hello from the walkthrough") {
		t.Fatalf("wharf-runtime run: %v: %s", err, out)
	}
	r := wharf(t, "run", "--state-dir", filepath.Join(work, "state"), "--runtime-root", filepath.Join(work, "rt"), ref, "cat", "/etc/passwd")
	if r.Code != 0 || !strings.Contains(r.Stdout, "root:") {
		t.Fatalf("wharf run %s: exit %d: %s %s", ref, r.Code, r.Stdout, r.Stderr)
	}
}
