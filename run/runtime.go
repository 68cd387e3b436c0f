package run

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/wharfoci/wharf/errdef"
)

// Runtime is an OCI runtime binary with runc's command line — wharf-runtime, runc, crun —
// driven as containerd's go-runc drives runc: one process per command, never linked.
type Runtime struct {
	// Path is the binary.
	Path string
	// Root is passed as --root when set (the runtime's state directory).
	Root string
}

// FindRuntime returns the runtime named (a path, or a name on PATH), or by default
// wharf-runtime beside the running executable, else on PATH; root is its --root.
func FindRuntime(name, root string) (*Runtime, error) {
	if name != "" {
		p, err := exec.LookPath(name)
		if err != nil {
			return nil, fmt.Errorf("find runtime %s: %w", name, errdef.ErrNotFound)
		}
		return &Runtime{Path: p, Root: root}, nil
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "wharf-runtime")
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return &Runtime{Path: p, Root: root}, nil
		}
	}
	p, err := exec.LookPath("wharf-runtime")
	if err != nil {
		return nil, fmt.Errorf("find runtime: wharf-runtime is neither beside wharf nor on PATH (--runtime names another): %w", errdef.ErrNotFound)
	}
	return &Runtime{Path: p, Root: root}, nil
}

// Stdio is a container's standard streams (nil: /dev/null).
type Stdio struct {
	In       io.Reader
	Out, Err io.Writer
}

func (r *Runtime) args(a ...string) []string {
	if r.Root != "" {
		return append([]string{"--root", r.Root}, a...)
	}
	return a
}

// Run runs the bundle dir as container id to its end (`RUNTIME run --bundle DIR ID`) and
// returns its exit status (128+N for a death by signal N). With forward set, the signals a
// terminal sends (INT, TERM, HUP, QUIT, USR1, USR2) are passed to the runtime, which passes
// them to the container; a cancelled ctx sends it TERM. Whatever happens, the container is
// deleted afterwards.
func (r *Runtime) Run(ctx context.Context, id, dir string, stdio Stdio, forward bool) (int, error) {
	cmd := exec.Command(r.Path, r.args("run", "--bundle", dir, id)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio.In, stdio.Out, stdio.Err
	var sigs chan os.Signal
	if forward {
		sigs = make(chan os.Signal, 8)
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
		defer signal.Stop(sigs)
	}
	if err := cmd.Start(); err != nil {
		return -1, fmt.Errorf("start runtime %s: %w", r.Path, err)
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				_ = cmd.Process.Signal(s)
			case <-ctx.Done():
				_ = cmd.Process.Signal(syscall.SIGTERM) // the runtime passes it on and ends
				return
			case <-done:
				return
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	// The runtime's run deletes the container when it ends; a forced delete covers a runtime
	// that was killed half-way (its error is expected and ignored when there is nothing left).
	r.Delete(context.WithoutCancel(ctx), id, true)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	default:
		return -1, fmt.Errorf("run %s: %w", id, err)
	}
}

// Delete deletes container id (`delete [--force] ID`).
func (r *Runtime) Delete(ctx context.Context, id string, force bool) error {
	a := []string{"delete"}
	if force {
		a = append(a, "--force")
	}
	out, err := exec.CommandContext(ctx, r.Path, r.args(append(a, id)...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("delete container %s: %v: %s", id, err, out)
	}
	return nil
}
