package runtime

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/errdef"
)

// TestCheckPassed: only a descriptor without close-on-exec — one inherited across execve —
// may be passed on; the runtime's own (Go opens every file close-on-exec) and closed ones are
// refused.
func TestCheckPassed(t *testing.T) {
	own, err := os.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	given, err := unix.Dup(int(own.Fd())) // dup(2): no close-on-exec, as after an execve
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(given)
	closed, _ := unix.Dup(given)
	unix.Close(closed)
	for _, tc := range []struct {
		name string
		fd   int
		want string
	}{
		{"inherited", given, ""},
		{"the runtime's own", int(own.Fd()), "the runtime was not given it"},
		{"closed", closed, "bad file descriptor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkPassed(tc.fd)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, errdef.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), fmt.Sprintf("descriptor %d", tc.fd)) {
				t.Fatalf("checkPassed(%d) = %v", tc.fd, err)
			}
		})
	}
}

// TestChildFiles: the layout both sides agree on, from fd 3: passed, sync socket, the rest.
func TestChildFiles(t *testing.T) {
	cf, err := newChildFiles(0)
	if err != nil {
		t.Fatal(err)
	}
	defer cf.Close()
	if cf.syncFd != 3 || len(cf.files) != 1 {
		t.Fatalf("sync fd %d, files %d", cf.syncFd, len(cf.files))
	}
	f, _ := os.Open(t.TempDir())
	defer f.Close()
	if n := cf.add(f); n != 4 {
		t.Fatalf("add = %d, want 4", n)
	}
	if n, err := cf.open(t.TempDir()); err != nil || n != 5 {
		t.Fatalf("open = %d, %v", n, err)
	}
	if n, err := cf.addConsole(nil, ""); err != nil || n != 0 {
		t.Fatalf("no console = %d, %v", n, err)
	}
	if _, err := cf.addConsole(nil, filepath.Join(t.TempDir(), "no.sock")); err == nil {
		t.Fatal("dial of a missing console socket: no error")
	}
	// passing descriptors the test process was not started with is refused (the test's own
	// are close-on-exec, or closed)
	if _, err := newChildFiles(40); !errors.Is(err, errdef.ErrInvalidArgument) {
		t.Fatalf("newChildFiles(40) = %v", err)
	}
}

// TestCloseExtraFds: every descriptor from the first on is marked close-on-exec; stdio and
// the passed ones below are left alone.
func TestCloseExtraFds(t *testing.T) {
	var p [2]int
	if err := unix.Pipe(p[:]); err != nil { // no close-on-exec
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	lo, hi := min(p[0], p[1]), max(p[0], p[1])
	closeExtraFds(hi)
	cloexec := func(fd int) bool {
		fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		return err == nil && fl&unix.FD_CLOEXEC != 0
	}
	if cloexec(lo) || !cloexec(hi) || cloexec(2) {
		t.Fatalf("close-on-exec: %d %v, %d %v, stderr %v", lo, cloexec(lo), hi, cloexec(hi), cloexec(2))
	}
}

const cwdChildEnv = "WHARF_RUNTIME_CWD_CHILD"

// TestVerifyCwdChild is the child of TestVerifyCwd: it chroots into the directory given in
// the environment, changes to the descriptor of one outside it, and prints verifyCwd's answer.
func TestVerifyCwdChild(t *testing.T) {
	dirs := os.Getenv(cwdChildEnv)
	if dirs == "" {
		t.Skip("helper for TestVerifyCwd")
	}
	root, outside, _ := strings.Cut(dirs, ":")
	fd, err := unix.Open(outside, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Chroot(root); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chdir("/"); err != nil {
		t.Fatal(err)
	}
	fmt.Println("inside:", verifyCwd("/"))
	fmt.Println("through a descriptor:", enterCwd(fmt.Sprintf("/proc/self/fd/%d", fd)) == nil, unix.Fchdir(fd) == nil && errors.Is(verifyCwd("/x"), errdef.ErrUnsafePath))
}

// TestVerifyCwd: a working directory outside the process's root is refused (root only: it
// needs chroot; test/runtime checks the same through the runtime).
func TestVerifyCwd(t *testing.T) {
	if os.Getenv(cwdChildEnv) != "" {
		t.Skip()
	}
	if err := verifyCwd("."); err != nil {
		t.Fatalf("the test's own cwd: %v", err)
	}
	if err := enterCwd("/nonexistent/dir"); err == nil || !strings.Contains(err.Error(), "chdir to /nonexistent/dir") {
		t.Fatalf("enterCwd of a missing directory: %v", err)
	}
	if os.Getuid() != 0 {
		t.Skip("chroot needs root")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestVerifyCwdChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), cwdChildEnv+"="+t.TempDir()+":"+t.TempDir())
	out, err := cmd.CombinedOutput()
	// no /proc in the new root: enterCwd's chdir fails; Fchdir reaches the directory itself
	if err != nil || !strings.Contains(string(out), "inside: <nil>\n") || !strings.Contains(string(out), "through a descriptor: false true\n") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func TestInProc(t *testing.T) {
	for _, tc := range []struct {
		p    string
		want bool
	}{{"/proc", true}, {"/proc/self/fd/9", true}, {"/proc/../proc/1", true}, {"proc/x", true}, {"/procfs", false}, {"/", false}, {"/tmp/proc", false}} {
		t.Run(tc.p, func(t *testing.T) {
			if got := inProc(tc.p); got != tc.want {
				t.Fatalf("inProc(%q) = %v", tc.p, got)
			}
		})
	}
}
