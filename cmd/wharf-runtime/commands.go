package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/runtime"
)

func runtimeSpecVersion() string { return specs.Version }

func exactArgs(n int, usage string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%s: want %s, got %d argument(s): %w", cmd.Name(), usage, len(args), errdef.ErrInvalidArgument)
		}
		return nil
	}
}

type createFlags struct {
	bundle, pidFile, consoleSocket string
	noPivot, noNewKeyring          bool
	preserveFds                    int
	detach                         bool
	keep                           bool
}

func (f *createFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVarP(&f.bundle, "bundle", "b", ".", "path to the bundle (config.json and rootfs)")
	fl.StringVar(&f.pidFile, "pid-file", "", "write the init's pid to this file")
	fl.StringVar(&f.consoleSocket, "console-socket", "", "unix socket that receives the pty master (terminal: true)")
	fl.BoolVar(&f.noPivot, "no-pivot", false, "move the rootfs over / and chroot instead of pivot_root")
	fl.BoolVar(&f.noNewKeyring, "no-new-keyring", false, "keep the caller's session keyring")
	fl.IntVar(&f.preserveFds, "preserve-fds", 0, "pass this many descriptors after stdio (3…) to the process")
}

func (f *createFlags) opts() runtime.CreateOpts {
	return runtime.CreateOpts{Bundle: f.bundle, PidFile: f.pidFile, ConsoleSocket: f.consoleSocket,
		NoPivot: f.noPivot, NoNewKeyring: f.noNewKeyring, PreserveFds: f.preserveFds,
		ListenFds: listenFds(os.Getenv, os.Getpid())}
}

// listenFds is how many socket-activation descriptors (from 3 on) systemd passed this
// process: LISTEN_FDS when LISTEN_PID names it (sd_listen_fds(3)), else 0. As runc, create and
// run pass them to the container's process.
func listenFds(getenv func(string) string, pid int) int {
	if getenv("LISTEN_PID") != strconv.Itoa(pid) {
		return 0
	}
	n, err := strconv.Atoi(getenv("LISTEN_FDS"))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

func newCreateCmd(g *globalOptions) *cobra.Command {
	f := &createFlags{}
	cmd := &cobra.Command{
		Use:   "create [flags] ID",
		Short: "create a container; its process waits for start",
		Args:  exactArgs(1, "a container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.runtime().Create(args[0], f.opts())
			if err != nil {
				return err
			}
			return c.Close()
		},
	}
	f.add(cmd)
	return cmd
}

// containerCmd is a command that loads the container its one argument names and applies op.
func containerCmd(g *globalOptions, use, short string, op func(*runtime.Container) error) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  exactArgs(1, "a container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.runtime().Load(args[0])
			if err != nil {
				return err
			}
			defer c.Close()
			return op(c)
		},
	}
}

func newStartCmd(g *globalOptions) *cobra.Command {
	return containerCmd(g, "start ID", "start the process of a created container", (*runtime.Container).Start)
}

func newRunCmd(g *globalOptions) *cobra.Command {
	f := &createFlags{}
	cmd := &cobra.Command{
		Use:   "run [flags] ID",
		Short: "create and start a container; without -d, wait for it and delete it",
		Args:  exactArgs(1, "a container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runContainer(g, args[0], f)
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVarP(&f.detach, "detach", "d", false, "detach from the container's process")
	cmd.Flags().BoolVar(&f.keep, "keep", false, "do not delete the container after it exits")
	return cmd
}

// runContainer is `run`: create and start; in the foreground, forward signals, relay the
// terminal (when the process has one and no console socket was given), wait, then delete.
func runContainer(g *globalOptions, id string, f *createFlags) error {
	rt := g.runtime()
	o := f.opts()
	spec, err := runtime.LoadSpec(f.bundle)
	if err != nil {
		return err
	}
	var tty *ttyRelay
	if spec.Process.Terminal && f.consoleSocket == "" {
		if f.detach {
			return fmt.Errorf("run -d with process.terminal: --console-socket is required: %w", errdef.ErrInvalidArgument)
		}
		if tty, err = newTTYRelay(); err != nil {
			return err
		}
		defer tty.close()
		o.ConsoleConn = tty.child
	}
	sigc := make(chan os.Signal, 64)
	if !f.detach {
		signal.Notify(sigc)
		defer signal.Stop(sigc)
		// an init forked by the C constructor (joined user namespace) is our grandchild:
		// as a subreaper we still get to wait for it
		_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	}
	c, err := rt.Create(id, o)
	if tty != nil {
		tty.child.Close()
	}
	if err != nil {
		return err
	}
	if tty != nil {
		if err := tty.start(); err != nil {
			_ = c.Delete(true)
			c.Close()
			return err
		}
	}
	if err := c.Start(); err != nil {
		_ = c.Delete(true)
		c.Close()
		return err
	}
	if f.detach {
		return c.Close()
	}
	// release the lock while the container runs: other commands (state, exec, kill) need it
	c.Close()
	done := make(chan int, 1)
	go func() {
		code, err := c.Wait()
		if err != nil {
			code = 255
		}
		done <- code
	}()
	pid := c.InitPid()
	code := forwardUntilExit(done, sigc, tty, func(sig unix.Signal) { _ = unix.Kill(pid, sig) })
	if !f.keep {
		if d, err := rt.Load(id); err == nil {
			_ = d.Delete(true)
			d.Close()
		}
	}
	return exitError{code: code}
}

// forwardUntilExit relays the signals that reach the runtime to the container's process with
// send (a terminal's size changes to its pty instead) until done yields the process's exit
// code, then drains the pty (if any) and returns the code: the wait of run and exec.
func forwardUntilExit(done <-chan int, sigc <-chan os.Signal, tty *ttyRelay, send func(unix.Signal)) int {
	for {
		select {
		case code := <-done:
			if tty != nil {
				tty.drain()
			}
			return code
		case s := <-sigc:
			sig := s.(unix.Signal)
			switch sig {
			case unix.SIGCHLD, unix.SIGURG, unix.SIGPIPE:
				continue
			case unix.SIGWINCH:
				if tty != nil {
					tty.resize()
				}
				continue
			}
			send(sig)
		}
	}
}

func newStateCmd(g *globalOptions) *cobra.Command {
	return containerCmd(g, "state ID", "print the state of a container (JSON)", func(c *runtime.Container) error {
		b, err := json.MarshalIndent(c.State(), "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(g.stdout, string(b))
		return err
	})
}

func newKillCmd(g *globalOptions) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "kill [flags] ID [SIGNAL]",
		Short: "send a signal (default SIGTERM) to the container's init, or with --all to all its processes",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return fmt.Errorf("kill: want ID [SIGNAL]: %w", errdef.ErrInvalidArgument)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			sig := unix.SIGTERM
			if len(args) == 2 {
				var err error
				if sig, err = runtime.ParseSignal(args[1]); err != nil {
					return err
				}
			}
			c, err := g.runtime().Load(args[0])
			if err != nil {
				return err
			}
			defer c.Close()
			return c.Kill(sig, all)
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "signal every process of the container")
	return cmd
}

func newDeleteCmd(g *globalOptions) *cobra.Command {
	var force bool
	cmd := containerCmd(g, "delete [flags] ID", "delete a stopped container (with --force, kill it first)",
		func(c *runtime.Container) error { return c.Delete(force) })
	cmd.Flags().BoolVarP(&force, "force", "f", false, "kill the container if it is running")
	return cmd
}

func newListCmd(g *globalOptions) *cobra.Command {
	var format string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "list containers",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			states, err := g.runtime().List()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if quiet {
				for _, s := range states {
					fmt.Fprintln(out, s.ID)
				}
				return nil
			}
			switch format {
			case "json":
				if states == nil {
					states = []runtime.State{}
				}
				b, err := json.Marshal(states)
				if err != nil {
					return err
				}
				fmt.Fprintln(out, string(b))
			case "table":
				w := tabwriter.NewWriter(out, 12, 1, 3, ' ', 0)
				fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
				for _, s := range states {
					fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle,
						s.Created.Format(time.RFC3339Nano), s.Owner)
				}
				return w.Flush()
			default:
				return fmt.Errorf("invalid --format %q: want table or json: %w", format, errdef.ErrInvalidArgument)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only ids")
	return cmd
}

func newPsCmd(g *globalOptions) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "ps [flags] ID [PS_ARGS...]",
		Short: "list the processes of a container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.runtime().Load(args[0])
			if err != nil {
				return err
			}
			pids, err := c.Pids()
			c.Close()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			switch format {
			case "json":
				if pids == nil {
					pids = []int{}
				}
				b, _ := json.Marshal(pids)
				fmt.Fprintln(out, string(b))
				return nil
			case "table":
			default:
				return fmt.Errorf("invalid --format %q: want table or json: %w", format, errdef.ErrInvalidArgument)
			}
			psArgs := args[1:]
			if len(psArgs) == 0 {
				psArgs = []string{"-ef"}
			}
			table, err := exec.Command("ps", psArgs...).Output()
			if err != nil {
				return fmt.Errorf("run ps %s: %w", strings.Join(psArgs, " "), err)
			}
			lines := strings.Split(strings.TrimRight(string(table), "\n"), "\n")
			if len(lines) == 0 {
				return nil
			}
			col := -1
			for i, h := range strings.Fields(lines[0]) {
				if h == "PID" {
					col = i
				}
			}
			if col < 0 {
				return fmt.Errorf("ps output has no PID column")
			}
			in := map[int]bool{}
			for _, p := range pids {
				in[p] = true
			}
			fmt.Fprintln(out, lines[0])
			for _, l := range lines[1:] {
				fs := strings.Fields(l)
				if len(fs) > col {
					if p, err := strconv.Atoi(fs[col]); err == nil && in[p] {
						fmt.Fprintln(out, l)
					}
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	cmd.Flags().SetInterspersed(false)
	return cmd
}

func newPauseCmd(g *globalOptions) *cobra.Command {
	return containerCmd(g, "pause ID", "freeze every process of a container", (*runtime.Container).Pause)
}

func newResumeCmd(g *globalOptions) *cobra.Command {
	return containerCmd(g, "resume ID", "thaw a paused container", (*runtime.Container).Resume)
}

func newSpecCmd(g *globalOptions) *cobra.Command {
	var bundle string
	var rootless bool
	cmd := &cobra.Command{
		Use:   "spec",
		Short: "write a default config.json in the bundle directory",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := bundle + "/config.json"
			if _, err := os.Stat(p); err == nil {
				return fmt.Errorf("write %s: file exists: %w", p, errdef.ErrAlreadyExists)
			}
			b, err := json.MarshalIndent(runtime.DefaultSpec(), "", "\t")
			if err != nil {
				return err
			}
			return os.WriteFile(p, append(b, '\n'), 0o644)
		},
	}
	cmd.Flags().StringVarP(&bundle, "bundle", "b", ".", "bundle directory")
	cmd.Flags().BoolVar(&rootless, "rootless", false, "accepted for runc compatibility")
	return cmd
}

func newFeaturesCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "features",
		Short: "print the features this runtime implements (JSON)",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := json.MarshalIndent(runtime.Features(), "", "    ")
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), string(b))
			return nil
		},
	}
}
