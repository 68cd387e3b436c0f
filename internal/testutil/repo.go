package testutil

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

var (
	rootOnce sync.Once
	rootDir  string
	rootErr  error
)

// Root returns the repository's root directory: the nearest directory above the working
// directory holding wharf's go.mod.
func Root(t testing.TB) string {
	t.Helper()
	rootOnce.Do(func() {
		d, err := os.Getwd()
		if err != nil {
			rootErr = err
			return
		}
		for {
			b, err := os.ReadFile(filepath.Join(d, "go.mod"))
			if err == nil && strings.HasPrefix(string(b), "module github.com/wharfoci/wharf\n") {
				rootDir = d
				return
			}
			parent := filepath.Dir(d)
			if parent == d {
				rootErr = fmt.Errorf("no wharf go.mod above the working directory")
				return
			}
			d = parent
		}
	})
	if rootErr != nil {
		t.Fatal(rootErr)
	}
	return rootDir
}

// CacheDir returns .cache/NAME in the repository, created: what the suites build once and
// keep between runs (test images, the conformance and runtime-tools programs).
func CacheDir(t testing.TB, name string) string {
	t.Helper()
	d := filepath.Join(Root(t), ".cache", name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// Image returns the OCI image layout of the test image name (busybox, bookworm, nodemods,
// multiarch, umoci-busybox), built by hack/images.sh with the built wharf the first time and cached under
// .cache/images. Tests must not change it: copy it first.
func Image(t testing.TB, name string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		SkipOrFail(t, "test image %s: building it needs root", name)
	}
	dir := filepath.Join(CacheDir(t, "images"), name)
	if _, err := os.Stat(filepath.Join(dir, ".wharf-test-image")); err == nil {
		return dir
	}
	cmd := exec.Command(filepath.Join(Root(t), "hack", "images.sh"), name, dir)
	cmd.Env = append(os.Environ(), "WHARF="+Bin(t, "wharf"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("hack/images.sh %s: %v\n%s", name, err, out)
	}
	return dir
}

var rootfsMu sync.Mutex

// BusyboxRootfs copies the busybox image's root file system (unpacked once by wharf into
// .cache/images/busybox-rootfs) to dir, which must not exist.
func BusyboxRootfs(t testing.TB, dir string) {
	t.Helper()
	rootfsMu.Lock()
	defer rootfsMu.Unlock()
	img := Image(t, "busybox")
	b := filepath.Join(CacheDir(t, "images"), "busybox-rootfs")
	if _, err := os.Stat(filepath.Join(b, "rootfs", "bin", "busybox")); err != nil {
		os.RemoveAll(b)
		Run(t, Bin(t, "wharf"), "unpack", "-q", "oci:"+img+":latest", b)
	}
	Run(t, "cp", "-a", filepath.Join(b, "rootfs"), dir)
}

// Report records one summary line of a suite ("conformance: pass=862 fail=0 skip=0"): it is
// logged, and appended to $WHARF_REPORT when set, which hack/test-integration.sh prints at
// the end of the run, passed or not.
func Report(t testing.TB, format string, a ...any) {
	t.Helper()
	line := fmt.Sprintf(format, a...)
	t.Log(line)
	p := os.Getenv("WHARF_REPORT")
	if p == "" {
		return
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Errorf("report: %v", err)
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%-28s %s\n", t.Name(), line)
}

// UmociImage returns an OCI image layout of the busybox tree written by umoci itself (tag
// latest; hack/images.sh umoci-busybox, cached): what the interop suites read to check that
// wharf reads a peer's layouts. Tests must not change it.
func UmociImage(t testing.TB) string {
	t.Helper()
	Need(t, "umoci")
	return Image(t, "umoci-busybox")
}

// StartDistribution starts the peer registry, docker-registry (CNCF distribution 2.8), on a
// free loopback port with an empty store under a temporary directory (hack/start-distribution.sh),
// stops it at cleanup, and returns its HOST:PORT. The test process becomes a child subreaper
// so that the registry, orphaned by the script, is reaped when stopped.
func StartDistribution(t testing.TB) string {
	t.Helper()
	Peer(t, "docker-registry")
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	Run(t, filepath.Join(Root(t), "hack", "start-distribution.sh"), strconv.Itoa(port), dir)
	b, err := os.ReadFile(filepath.Join(dir, "pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("start-distribution.sh: pid file: %v", err)
	}
	t.Cleanup(func() {
		unix.Kill(pid, unix.SIGTERM)
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, 0, nil)
	})
	return fmt.Sprintf("127.0.0.1:%d", port)
}
