package runtime

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/errdef"
)

// Runtime holds the global options every command shares.
type Runtime struct {
	Root          string // state directory (DefaultRoot)
	SystemdCgroup bool   // cgroupsPath is "slice:prefix:name"
	// Debugf, if set, receives debug messages.
	Debugf func(format string, a ...any)
	// Warnf, if set, receives warnings (a failed poststart or poststop hook).
	Warnf func(format string, a ...any)
}

func (rt *Runtime) warnf(format string, a ...any) {
	if rt.Warnf != nil {
		rt.Warnf(format, a...)
	}
}

func (rt *Runtime) debugf(format string, a ...any) {
	if rt.Debugf != nil {
		rt.Debugf(format, a...)
	}
}

// CreateOpts are the options of `create` and `run`.
type CreateOpts struct {
	Bundle        string
	PidFile       string
	ConsoleSocket string
	NoPivot       bool
	NoNewKeyring  bool
	// ListenFds are socket-activation descriptors (systemd's LISTEN_FDS) at 3…: the process
	// gets them there, with LISTEN_FDS=ListenFds and LISTEN_PID=1 in its environment, as runc
	// passes them.
	ListenFds int
	// PreserveFds are more descriptors the process gets, after the ListenFds (--preserve-fds).
	// Both must be descriptors this process was started with: the runtime's own never reach
	// the container, nor does any other descriptor above them.
	PreserveFds int
	// Stdin, Stdout, Stderr become the init's stdio (default: the runtime's own).
	Stdin, Stdout, Stderr *os.File
	// ConsoleConn, when set, replaces ConsoleSocket: the pty master is sent over it (used by
	// `run` to put the container on the caller's terminal; see ConsolePair).
	ConsoleConn *os.File
}

var nsFlags = map[specs.LinuxNamespaceType]uintptr{
	specs.PIDNamespace: unix.CLONE_NEWPID, specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.MountNamespace: unix.CLONE_NEWNS, specs.IPCNamespace: unix.CLONE_NEWIPC,
	specs.UTSNamespace: unix.CLONE_NEWUTS, specs.UserNamespace: unix.CLONE_NEWUSER,
	specs.CgroupNamespace: unix.CLONE_NEWCGROUP, specs.TimeNamespace: unix.CLONE_NEWTIME,
}

var nsProcName = map[specs.LinuxNamespaceType]string{
	specs.PIDNamespace: "pid", specs.NetworkNamespace: "net", specs.MountNamespace: "mnt",
	specs.IPCNamespace: "ipc", specs.UTSNamespace: "uts", specs.UserNamespace: "user",
	specs.CgroupNamespace: "cgroup", specs.TimeNamespace: "time",
}

// hostID maps id of the container to the host through a user namespace's mappings.
func hostID(maps []specs.LinuxIDMapping, id uint32) int {
	for _, m := range maps {
		if id >= m.ContainerID && id-m.ContainerID < m.Size {
			return int(m.HostID + id - m.ContainerID)
		}
	}
	return int(id)
}

func ownerName() string {
	if u, err := user.LookupId(strconv.Itoa(os.Getuid())); err == nil {
		return u.Username
	}
	return strconv.Itoa(os.Getuid())
}

func socketPair() (*os.File, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("create sync socket: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "sync-parent"), os.NewFile(uintptr(fds[1]), "sync-child"), nil
}

func dialConsole(path string) (*os.File, error) {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return nil, fmt.Errorf("connect to console socket %s: %w", path, err)
	}
	defer conn.Close()
	f, err := conn.(*net.UnixConn).File()
	if err != nil {
		return nil, fmt.Errorf("connect to console socket %s: %w", path, err)
	}
	return f, nil
}

func writePidFile(path string, pid int) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("write pid file %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write pid file %s: %w", path, err)
	}
	return nil
}

// selfCmd is this binary re-executed as an init or exec child.
func (rt *Runtime) selfCmd(syncFd int, stdin, stdout, stderr *os.File, extra []*os.File, attr *syscall.SysProcAttr) *exec.Cmd {
	cmd := &exec.Cmd{Path: "/proc/self/exe", Args: []string{"wharf-runtime", InitArg}}
	cmd.Env = []string{initEnv + "=" + strconv.Itoa(syncFd)}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = orStd(stdin, os.Stdin), orStd(stdout, os.Stdout), orStd(stderr, os.Stderr)
	cmd.ExtraFiles = extra
	cmd.SysProcAttr = attr
	return cmd
}

func orStd(f, def *os.File) *os.File {
	if f != nil {
		return f
	}
	return def
}

var nsCloneFlag = map[specs.LinuxNamespaceType]int{
	specs.PIDNamespace: unix.CLONE_NEWPID, specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.IPCNamespace: unix.CLONE_NEWIPC, specs.UTSNamespace: unix.CLONE_NEWUTS,
	specs.CgroupNamespace: unix.CLONE_NEWCGROUP,
}

// startInNamespaces starts cmd from a dedicated OS thread that first joined the namespaces in
// join (net, ipc, uts, pid, cgroup: setns on one thread of a multithreaded process is allowed
// for these; the mount, user and time namespaces are handled elsewhere). The thread is never
// unlocked, so Go discards it when the goroutine ends.
func startInNamespaces(cmd *exec.Cmd, join map[specs.LinuxNamespaceType]string) error {
	errc := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		for _, t := range []specs.LinuxNamespaceType{specs.UserNamespace, specs.IPCNamespace, specs.UTSNamespace,
			specs.NetworkNamespace, specs.PIDNamespace, specs.CgroupNamespace} {
			p, ok := join[t]
			if !ok {
				continue
			}
			flag, ok := nsCloneFlag[t]
			if !ok {
				continue
			}
			fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				errc <- fmt.Errorf("open %s namespace %s: %w", t, p, err)
				return
			}
			err = unix.Setns(fd, flag)
			unix.Close(fd)
			if err != nil {
				errc <- fmt.Errorf("join %s namespace %s: %w", t, p, err)
				return
			}
		}
		errc <- cmd.Start()
	}()
	return <-errc
}

// Start runs `start`: it releases the init waiting on the exec fifo, waits until the process
// has been executed, then runs the poststart hooks.
func (c *Container) Start() error {
	switch st := c.Status(); st {
	case StatusCreated:
	case StatusStopped:
		return fmt.Errorf("cannot start container %s: it is stopped: %w", c.s.ID, errdef.ErrInvalidState)
	default:
		return fmt.Errorf("cannot start container %s: it is %s, not created: %w", c.s.ID, st, errdef.ErrInvalidState)
	}
	fifoPath := filepath.Join(c.dir, fifoName)
	type res struct {
		f   *os.File
		err error
	}
	ch := make(chan res, 1)
	go func() {
		f, err := os.OpenFile(fifoPath, os.O_RDONLY|unix.O_CLOEXEC, 0)
		ch <- res{f, err}
	}()
	var f *os.File
	for f == nil {
		select {
		case r := <-ch:
			if r.err != nil {
				return fmt.Errorf("start container %s: open exec fifo: %w", c.s.ID, r.err)
			}
			f = r.f
		case <-time.After(50 * time.Millisecond):
			if !c.initAlive() {
				// unblock the opener goroutine, then report
				if w, err := os.OpenFile(fifoPath, os.O_WRONLY|unix.O_NONBLOCK, 0); err == nil {
					w.Close()
				}
				os.Remove(fifoPath)
				return fmt.Errorf("start container %s: the init exited before start: %w", c.s.ID, errdef.ErrInvalidState)
			}
		}
	}
	b, err := io.ReadAll(f)
	f.Close()
	os.Remove(fifoPath)
	if err != nil {
		return fmt.Errorf("start container %s: read exec fifo: %w", c.s.ID, err)
	}
	if len(b) == 0 {
		return fmt.Errorf("start container %s: the init exited before start: %w", c.s.ID, errdef.ErrInvalidState)
	}
	if h := c.s.Spec.Hooks; h != nil {
		runHooksWarn("poststart", h.Poststart, c.specState(StatusRunning), c.rt.warnf)
	}
	return nil
}

// Kill sends sig to the container's init, or with all to every process in its cgroup.
func (c *Container) Kill(sig unix.Signal, all bool) error {
	st := c.Status()
	if all {
		c.s.Cgroups.Signal(sig)
		return nil
	}
	if st == StatusStopped {
		return fmt.Errorf("kill container %s: container not running: %w", c.s.ID, errdef.ErrInvalidState)
	}
	if err := unix.Kill(c.s.Pid, sig); err != nil {
		return fmt.Errorf("kill container %s (pid %d): %w", c.s.ID, c.s.Pid, err)
	}
	return nil
}

// Delete runs `delete`: a stopped (or, as with runc, created) container is removed: poststop
// hooks, cgroups, state. A running or paused one is refused unless force, which kills it first.
func (c *Container) Delete(force bool) error {
	st := c.Status()
	switch st {
	case StatusStopped, StatusCreated:
	default:
		if !force {
			return fmt.Errorf("cannot delete container %s that is not stopped: %s: %w", c.s.ID, st, errdef.ErrInvalidState)
		}
	}
	if st != StatusStopped {
		if st == StatusPaused {
			_ = c.setFrozen(false)
		}
		_ = unix.Kill(c.s.Pid, unix.SIGKILL)
		c.s.Cgroups.Kill()
		for i := 0; i < 500 && c.initAlive(); i++ {
			time.Sleep(2 * time.Millisecond)
		}
	} else {
		c.s.Cgroups.Kill()
	}
	var errs []error
	if err := c.s.Cgroups.Remove(); err != nil {
		errs = append(errs, err)
	}
	if c.s.HostMounts {
		if err := detachHostMounts(c.s.Rootfs, c.s.RootfsMounts); err != nil {
			errs = append(errs, fmt.Errorf("container %s: %w", c.s.ID, err))
		}
	}
	if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, fmt.Errorf("remove state of container %s: %w", c.s.ID, err))
	}
	if h := c.s.Spec.Hooks; h != nil {
		runHooksWarn("poststop", h.Poststop, c.specState(StatusStopped), c.rt.warnf)
	}
	return errors.Join(errs...)
}

// Pids lists the host pids of the container's processes.
func (c *Container) Pids() ([]int, error) { return c.s.Cgroups.Pids() }

// Wait waits for the init when this process started it (run); it returns the exit status in
// the shell's convention (128+signal).
func (c *Container) Wait() (int, error) {
	if c.initProc == nil {
		return -1, fmt.Errorf("wait for container %s: not its parent", c.s.ID)
	}
	ps, err := c.initProc.Wait()
	if err != nil {
		return -1, err
	}
	return exitCode(ps), nil
}

// InitPid is the host pid of the container's init.
func (c *Container) InitPid() int { return c.s.Pid }

func exitCode(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok {
		if ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ws.ExitStatus()
	}
	return ps.ExitCode()
}
