package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/internal/specdefault"
	"github.com/wharfoci/wharf/runtime"
)

type execFlags struct {
	process, pidFile, consoleSocket, cwd, user string
	detach, tty, noNewPrivs, ignorePaused      bool
	env, caps                                  []string
	gids                                       []int
	preserveFds                                int
	processLabel, apparmor, cgroup             string
}

func newExecCmd(g *globalOptions) *cobra.Command {
	f := &execFlags{}
	cmd := &cobra.Command{
		Use:   "exec [flags] ID [COMMAND [ARGS...]]",
		Short: "run a process in a running container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return execInContainer(g, cmd, f, args[0], args[1:])
		},
	}
	f.add(cmd)
	return cmd
}

func (f *execFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.SetInterspersed(false)
	fl.StringVarP(&f.process, "process", "p", "", "path to a process.json (runtime-spec Process)")
	fl.BoolVarP(&f.detach, "detach", "d", false, "do not wait for the process")
	fl.StringVar(&f.pidFile, "pid-file", "", "write the process's pid to this file")
	fl.StringVar(&f.consoleSocket, "console-socket", "", "unix socket that receives the pty master")
	fl.BoolVarP(&f.tty, "tty", "t", false, "allocate a pseudo-terminal")
	fl.StringArrayVarP(&f.env, "env", "e", nil, "set an environment variable (NAME=VALUE)")
	fl.StringVar(&f.cwd, "cwd", "", "working directory in the container")
	fl.StringVarP(&f.user, "user", "u", "", "UID[:GID]")
	fl.IntSliceVarP(&f.gids, "additional-gids", "g", nil, "additional group ids")
	fl.StringArrayVarP(&f.caps, "cap", "c", nil, "add a capability")
	fl.IntVar(&f.preserveFds, "preserve-fds", 0, "pass this many descriptors after stdio to the process")
	fl.BoolVar(&f.noNewPrivs, "no-new-privs", false, "set no_new_privileges")
	fl.BoolVar(&f.ignorePaused, "ignore-paused", false, "allow exec in a paused container")
	fl.StringVar(&f.processLabel, "process-label", "", "accepted for runc compatibility")
	fl.StringVar(&f.apparmor, "apparmor", "", "accepted for runc compatibility")
	fl.StringVar(&f.cgroup, "cgroup", "", "accepted for runc compatibility")
}

// buildProcess is runc's rule: --process gives the whole process; otherwise the container's
// process is the base and the arguments and flags change it.
func buildProcess(cmd *cobra.Command, f *execFlags, base *specs.Process, args []string) (*specs.Process, error) {
	var p specs.Process
	if f.process != "" {
		b, err := os.ReadFile(f.process)
		if err != nil {
			return nil, fmt.Errorf("read process %s: %w", f.process, err)
		}
		if err := json.Unmarshal(b, &p); err != nil {
			return nil, fmt.Errorf("parse process %s: %v: %w", f.process, err, errdef.ErrInvalidArgument)
		}
		return &p, nil
	}
	if len(args) == 0 {
		return nil, fmt.Errorf("exec: no command given: %w", errdef.ErrInvalidArgument)
	}
	b, _ := json.Marshal(base)
	_ = json.Unmarshal(b, &p)
	p.Args = args
	p.Terminal = f.tty
	p.ConsoleSize = nil
	p.Env = append(p.Env, f.env...)
	if f.cwd != "" {
		p.Cwd = f.cwd
	}
	if f.user != "" {
		u, gs, _ := strings.Cut(f.user, ":")
		uid, err := strconv.ParseUint(u, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("exec: --user %q: want UID[:GID]: %w", f.user, errdef.ErrInvalidArgument)
		}
		p.User.UID = uint32(uid)
		if gs != "" {
			gid, err := strconv.ParseUint(gs, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("exec: --user %q: want UID[:GID]: %w", f.user, errdef.ErrInvalidArgument)
			}
			p.User.GID = uint32(gid)
		}
	}
	for _, gid := range f.gids {
		p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(gid))
	}
	if len(f.caps) > 0 {
		if p.Capabilities == nil {
			p.Capabilities = &specs.LinuxCapabilities{}
		}
		for _, c := range f.caps {
			c = specdefault.CapabilityName(c)
			pc := p.Capabilities
			pc.Bounding = append(pc.Bounding, c)
			pc.Effective = append(pc.Effective, c)
			pc.Permitted = append(pc.Permitted, c)
		}
	}
	if cmd.Flags().Changed("no-new-privs") {
		p.NoNewPrivileges = f.noNewPrivs
	}
	return &p, nil
}

func execInContainer(g *globalOptions, cmd *cobra.Command, f *execFlags, id string, args []string) error {
	c, err := g.runtime().Load(id)
	if err != nil {
		return err
	}
	p, err := buildProcess(cmd, f, c.Spec().Process, args)
	if err != nil {
		c.Close()
		return err
	}
	o := runtime.ExecOpts{PidFile: f.pidFile, ConsoleSocket: f.consoleSocket, PreserveFds: f.preserveFds, IgnorePaused: f.ignorePaused}
	var tty *ttyRelay
	if p.Terminal && f.consoleSocket == "" {
		if f.detach {
			c.Close()
			return fmt.Errorf("exec -d with a terminal: --console-socket is required: %w", errdef.ErrInvalidArgument)
		}
		if tty, err = newTTYRelay(); err != nil {
			c.Close()
			return err
		}
		defer tty.close()
		o.ConsoleConn = tty.child
	}
	sigc := make(chan os.Signal, 64)
	if !f.detach {
		signal.Notify(sigc)
		defer signal.Stop(sigc)
	}
	proc, err := c.Exec(p, o)
	c.Close()
	if tty != nil {
		tty.child.Close()
	}
	if err != nil {
		return err
	}
	if tty != nil {
		if err := tty.start(); err != nil {
			_ = proc.Kill()
			return err
		}
	}
	if f.detach {
		_ = proc.Release()
		return nil
	}
	done := make(chan int, 1)
	go func() {
		code, err := runtime.WaitProcess(proc)
		if err != nil {
			code = 255
		}
		done <- code
	}()
	return exitError{code: forwardUntilExit(done, sigc, tty, func(sig unix.Signal) { _ = proc.Signal(sig) })}
}
