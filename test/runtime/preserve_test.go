//go:build integration

package runtime

import (
	"os"
	"path/filepath"
	"testing"
)

// TestPreserveFds: with --preserve-fds N the process gets the runtime's descriptors 3..3+N-1,
// for run and for exec.
func TestPreserveFds(t *testing.T) {
	e := newEnv(t)
	p := filepath.Join(t.TempDir(), "fd3")
	if err := os.WriteFile(p, []byte("through fd 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	open := func() *os.File {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	b := bundle(t, plain, nil, "sh", "-c", "cat <&3")
	cmd := e.cmd("run", "--bundle", b, "--preserve-fds", "1", "pf-run")
	cmd.ExtraFiles = []*os.File{open()}
	if out, err := cmd.CombinedOutput(); err != nil || string(out) != "through fd 3\n" {
		t.Fatalf("run --preserve-fds 1: %v: %q", err, out)
	}

	b = bundle(t, plain, nil, "sleep", "30")
	e.ok("run", "-d", "--bundle", b, "pf-exec")
	cmd = e.cmd("exec", "--preserve-fds", "1", "pf-exec", "sh", "-c", "cat <&3")
	cmd.ExtraFiles = []*os.File{open()}
	if out, err := cmd.CombinedOutput(); err != nil || string(out) != "through fd 3\n" {
		t.Fatalf("exec --preserve-fds 1: %v: %q", err, out)
	}
	e.ok("delete", "--force", "pf-exec")
}
