// Package testutil holds what wharf's integration tests (test/...) share: finding the built
// binaries and the repository, requiring peers (a failure under WHARF_PEERS=1, a skip
// otherwise), running commands, the test images (hack/images.sh, cached under .cache/images),
// and the summary lines the suites report (Report).
package testutil

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Peers reports whether missing peers are failures (make integration sets WHARF_PEERS=1).
func Peers() bool { return os.Getenv("WHARF_PEERS") == "1" }

// SkipOrFail fails the test under WHARF_PEERS=1 and skips it otherwise.
func SkipOrFail(t testing.TB, format string, a ...any) {
	t.Helper()
	if Peers() {
		t.Fatalf(format, a...)
	}
	t.Skipf(format, a...)
}

// Bin returns the absolute path of the built binary name in $WHARF_BIN (default ../../bin,
// which is the repository's bin/ seen from test/<area>).
func Bin(t testing.TB, name string) string {
	t.Helper()
	dir := os.Getenv("WHARF_BIN")
	if dir == "" {
		dir = "../../bin"
	}
	bin, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		SkipOrFail(t, "%s binary: %v (run make build)", name, err)
	}
	return bin
}

// Need requires root and the named programs on PATH.
func Need(t testing.TB, bins ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		SkipOrFail(t, "needs root")
	}
	for _, b := range bins {
		Peer(t, b)
	}
}

// Peer returns the path of the program name on PATH (a failure under WHARF_PEERS=1 when it
// is missing, a skip otherwise).
func Peer(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		SkipOrFail(t, "peer %s: %v", name, err)
	}
	return p
}

// Run runs name with args and returns its combined output; a failure fails the test.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// Result is what a command run by Exec did.
type Result struct {
	Code           int
	Stdout, Stderr string
}

// Exec runs name with args and returns its exit code and output; only a failure to start it
// fails the test.
func Exec(t testing.TB, name string, args ...string) Result {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := Result{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	default:
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return r
}
