package run

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/image/bundle"
)

// DefaultStateDir holds the bundles of running containers (one directory each, removed when the
// container is gone unless Options.Keep).
const DefaultStateDir = "/run/wharf/bundles"

// Options control Run.
type Options struct {
	// ID names the container (default: wharf-<12 random hex>).
	ID string
	// Args replaces the image's Entrypoint+Cmd when not empty.
	Args []string
	// Env entries (KEY=VALUE) are added to the image's environment, replacing equal keys.
	Env []string
	// Tty gives the process a terminal: the runtime puts it on the caller's terminal.
	Tty bool
	// Runtime is the runtime binary (default: wharf-runtime beside the running executable,
	// else on PATH).
	Runtime string
	// RuntimeRoot is passed to the runtime as --root when set.
	RuntimeRoot string
	// StateDir is where bundles are unpacked (default DefaultStateDir).
	StateDir string
	// Keep leaves the bundle in place after the container exits.
	Keep bool
	// Unpack is passed to bundle.Unpack (limits, id maps, progress).
	Unpack bundle.Options
	// Stdin, Stdout and Stderr are the container's stdio (default: the process's own).
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Bundle, when set, is called with the bundle directory once it is ready, before the run.
	Bundle func(dir string)
}

// Run unpacks the image manifest desc read from f into a fresh bundle and runs it to
// completion with the runtime. It returns the container's exit status (128+N for a process
// killed by signal N); err is set only when wharf or the runtime failed before or around the
// container (then the status is meaningless). Signals wharf receives (INT, TERM, HUP, QUIT,
// USR1, USR2) are forwarded to the runtime, which forwards them to the container.
func Run(ctx context.Context, f content.Fetcher, desc ocispec.Descriptor, opts Options) (int, error) {
	if opts.ID == "" {
		var b [6]byte
		if _, err := rand.Read(b[:]); err != nil {
			return -1, err
		}
		opts.ID = "wharf-" + hex.EncodeToString(b[:])
	}
	rt, err := findRuntime(opts.Runtime)
	if err != nil {
		return -1, err
	}
	if opts.StateDir == "" {
		opts.StateDir = DefaultStateDir
	}
	if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
		return -1, fmt.Errorf("create state directory: %w", err)
	}
	dir, err := os.MkdirTemp(opts.StateDir, opts.ID+"-")
	if err != nil {
		return -1, fmt.Errorf("create bundle directory: %w", err)
	}
	if !opts.Keep {
		defer os.RemoveAll(dir)
	}
	b := filepath.Join(dir, "bundle")
	if _, err := bundle.Unpack(ctx, f, desc, b, opts.Unpack); err != nil {
		return -1, err
	}
	if err := adjustConfig(filepath.Join(b, "config.json"), opts); err != nil {
		return -1, err
	}
	if opts.Bundle != nil {
		opts.Bundle(b)
	}
	return runBundle(ctx, rt, b, opts)
}

// findRuntime returns the runtime binary to use.
func findRuntime(name string) (string, error) {
	if name != "" {
		p, err := exec.LookPath(name)
		if err != nil {
			return "", fmt.Errorf("find runtime %s: %w", name, errdef.ErrNotFound)
		}
		return p, nil
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "wharf-runtime")
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	p, err := exec.LookPath("wharf-runtime")
	if err != nil {
		return "", fmt.Errorf("find runtime: wharf-runtime is neither beside wharf nor on PATH (--runtime names another): %w", errdef.ErrNotFound)
	}
	return p, nil
}

// adjustConfig applies the run options to the bundle's config.json.
func adjustConfig(path string, opts Options) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if s.Process == nil {
		return fmt.Errorf("%s: no process: %w", path, errdef.ErrInvalidArgument)
	}
	if len(opts.Args) > 0 {
		s.Process.Args = opts.Args
	}
	if len(s.Process.Args) == 0 {
		return fmt.Errorf("run: the image has no Entrypoint or Cmd and no command was given: %w", errdef.ErrInvalidArgument)
	}
	s.Process.Env = mergeEnv(s.Process.Env, opts.Env)
	s.Process.Terminal = opts.Tty
	if s.Hostname == "" {
		s.Hostname = opts.ID
	}
	out, err := json.MarshalIndent(&s, "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, 0o600)
}

// mergeEnv returns base with each KEY=VALUE of add replacing the entry of the same KEY.
func mergeEnv(base, add []string) []string {
	key := func(e string) string {
		for i := 0; i < len(e); i++ {
			if e[i] == '=' {
				return e[:i]
			}
		}
		return e
	}
	out := append([]string(nil), base...)
	for _, a := range add {
		replaced := false
		for i, e := range out {
			if key(e) == key(a) {
				out[i], replaced = a, true
			}
		}
		if !replaced {
			out = append(out, a)
		}
	}
	return out
}

func runBundle(ctx context.Context, rt, dir string, opts Options) (int, error) {
	var args []string
	if opts.RuntimeRoot != "" {
		args = append(args, "--root", opts.RuntimeRoot)
	}
	args = append(args, "run", "--bundle", dir, opts.ID)
	cmd := exec.Command(rt, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = or(opts.Stdin, io.Reader(os.Stdin)), orW(opts.Stdout, os.Stdout), orW(opts.Stderr, os.Stderr)
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return -1, fmt.Errorf("start runtime %s: %w", rt, err)
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				_ = cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	// The runtime's run deletes the container when it ends; a forced delete covers a runtime
	// that was killed half-way (its error is expected and ignored when there is nothing left).
	del := []string{}
	if opts.RuntimeRoot != "" {
		del = append(del, "--root", opts.RuntimeRoot)
	}
	_ = exec.Command(rt, append(del, "delete", "--force", opts.ID)...).Run()
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
		return -1, fmt.Errorf("run %s: %w", opts.ID, err)
	}
}

func or(r, def io.Reader) io.Reader {
	if r == nil {
		return def
	}
	return r
}

func orW(w, def io.Writer) io.Writer {
	if w == nil {
		return def
	}
	return w
}
