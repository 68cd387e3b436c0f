package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/errdef"
)

// ExecOpts are the options of `exec`.
type ExecOpts struct {
	PidFile       string
	ConsoleSocket string
	// PreserveFds are descriptors after stdio the process gets (--preserve-fds); they must be
	// descriptors this process was started with.
	PreserveFds  int
	IgnorePaused bool
	ConsoleConn  *os.File
}

// Exec starts p inside the running container: in its namespaces (joined from the init's
// /proc/PID/ns) and cgroups, under its seccomp profile. It returns once p has been executed;
// the caller may Wait on it.
func (c *Container) Exec(p *specs.Process, o ExecOpts) (*os.Process, error) {
	if err := c.checkExec(p, o); err != nil {
		return nil, err
	}
	ns, err := c.execNamespaces()
	if err != nil {
		return nil, err
	}
	root, err := c.openMountNamespace()
	if err != nil {
		return nil, err
	}
	defer root.Close()
	cfg := &initConfig{Kind: "exec", ID: c.s.ID, Process: p, Bundle: c.s.Bundle, PassFds: o.PreserveFds}
	if c.s.Spec != nil && c.s.Spec.Linux != nil {
		cfg.Seccomp = c.s.Spec.Linux.Seccomp // exec'd processes get the container's filter, as with runc
	}
	cf, nsenter, err := c.execChildFiles(cfg, root, ns.early, o)
	if err != nil {
		return nil, err
	}
	defer cf.Close()
	cmd := c.rt.selfCmd(cf.syncFd, nil, nil, nil, cf.files, &syscall.SysProcAttr{})
	if nsenter != "" {
		cmd.Env = append(cmd.Env, "_WHARF_NSENTER="+nsenter)
	}
	err = startInNamespaces(cmd, ns.join)
	cf.child.Close()
	if err != nil {
		return nil, fmt.Errorf("exec in container %s: %w", c.s.ID, err)
	}
	if err := c.awaitExec(cmd, cf.parent, cfg); err != nil {
		return nil, err
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, cmd.Process.Pid); err != nil {
			killChild(cmd)
			return nil, fmt.Errorf("exec in container %s: %w", c.s.ID, err)
		}
	}
	return cmd.Process, nil
}

// checkExec refuses a process exec cannot start: an invalid one, a container that is not
// running or created (paused: only with IgnorePaused), a terminal without a console.
func (c *Container) checkExec(p *specs.Process, o ExecOpts) error {
	if err := validateProcess(p); err != nil {
		return err
	}
	switch st := c.Status(); st {
	case StatusRunning, StatusCreated:
	case StatusPaused:
		if !o.IgnorePaused {
			return fmt.Errorf("cannot exec in a paused container %s: %w", c.s.ID, errdef.ErrInvalidState)
		}
	default:
		return fmt.Errorf("cannot exec in a %s container %s: %w", st, c.s.ID, errdef.ErrInvalidState)
	}
	if p.Terminal && o.ConsoleSocket == "" && o.ConsoleConn == nil {
		return fmt.Errorf("exec in container %s: a terminal needs --console-socket: %w", c.s.ID, errdef.ErrInvalidArgument)
	}
	return nil
}

// execJoins are the init's namespaces that are not the runtime's: joined on the forking
// thread (join) or, the user and time namespaces, by the child's C constructor (early). The
// mount namespace is joined by the child itself.
type execJoins struct {
	join, early map[specs.LinuxNamespaceType]string
}

func (c *Container) execNamespaces() (execJoins, error) {
	nsDir := "/proc/" + strconv.Itoa(c.s.Pid) + "/ns/"
	ns := execJoins{join: map[specs.LinuxNamespaceType]string{}, early: map[specs.LinuxNamespaceType]string{}}
	for t, name := range nsProcName {
		if t == specs.MountNamespace {
			continue
		}
		if same, err := sameNS(nsDir+name, "/proc/self/ns/"+name); err != nil || same {
			continue
		}
		if t == specs.UserNamespace || t == specs.TimeNamespace {
			if !haveNsenter {
				return ns, fmt.Errorf("exec in container %s: joining its %s namespace needs a wharf-runtime built with cgo: %w (see docs/ARCHITECTURE.md)", c.s.ID, name, errdef.ErrUnsupported)
			}
			ns.early[t] = nsDir + name
			continue
		}
		ns.join[t] = nsDir + name
	}
	return ns, nil
}

// openMountNamespace opens the container's mount namespace, or, when it shares the runtime's,
// its root directory.
func (c *Container) openMountNamespace() (*os.File, error) {
	pid := strconv.Itoa(c.s.Pid)
	what, path := "mount namespace", "/proc/"+pid+"/ns/mnt"
	if c.s.HostMounts {
		what, path = "root", "/proc/"+pid+"/root"
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s of container %s: %w", what, c.s.ID, err)
	}
	return f, nil
}

// execChildFiles lays out the exec child's descriptors: the preserved ones, the sync socket,
// the mount namespace (or root), the console, and the namespaces its C constructor joins,
// whose "fd:flag" list it returns.
func (c *Container) execChildFiles(cfg *initConfig, root *os.File, early map[specs.LinuxNamespaceType]string, o ExecOpts) (*childFiles, string, error) {
	cf, err := newChildFiles(o.PreserveFds)
	if err != nil {
		return nil, "", err
	}
	if c.s.HostMounts {
		cfg.RootFd = cf.add(root)
	} else {
		cfg.MntnsFd = cf.add(root)
	}
	if cfg.ConsoleFd, err = cf.addConsole(o.ConsoleConn, o.ConsoleSocket); err != nil {
		cf.Close()
		return nil, "", err
	}
	var nsenter []string
	for _, t := range []specs.LinuxNamespaceType{specs.UserNamespace, specs.TimeNamespace} {
		p, ok := early[t]
		if !ok {
			continue
		}
		fd, err := cf.open(p)
		if err != nil {
			cf.Close()
			return nil, "", fmt.Errorf("open %s namespace of container %s: %w", t, c.s.ID, err)
		}
		nsenter = append(nsenter, fmt.Sprintf("%d:%d", fd, nsFlags[t]))
	}
	return cf, strings.Join(nsenter, ","), nil
}

// awaitExec puts the started child in the container's cgroups, sends it its config and waits
// until it has executed the process (EOF on the sync socket: the child's end is close-on-exec)
// or reports an error. On failure the child is gone.
func (c *Container) awaitExec(cmd *exec.Cmd, sync *os.File, cfg *initConfig) error {
	fail := func(err error) error {
		killChild(cmd)
		return fmt.Errorf("exec in container %s: %w", c.s.ID, err)
	}
	if err := c.s.Cgroups.Join(cmd.Process.Pid); err != nil {
		return fail(err)
	}
	if err := json.NewEncoder(sync).Encode(cfg); err != nil {
		return fail(err)
	}
	var m syncMsg
	if err := json.NewDecoder(sync).Decode(&m); err == nil && m.Type == "error" {
		_, _ = cmd.Process.Wait()
		return fmt.Errorf("exec in container %s: %s", c.s.ID, m.Error)
	} else if err != nil && err != io.EOF && !errors.Is(err, unix.ECONNRESET) {
		return fail(err)
	}
	return nil
}

func killChild(cmd *exec.Cmd) {
	_ = cmd.Process.Kill()
	_, _ = cmd.Process.Wait()
}

// sameNS reports whether two namespace files name the same namespace.
func sameNS(a, b string) (bool, error) {
	var sa, sb unix.Stat_t
	if err := unix.Stat(a, &sa); err != nil {
		return false, err
	}
	if err := unix.Stat(b, &sb); err != nil {
		return false, err
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino, nil
}

// WaitProcess waits for a process this runtime started and returns its exit code (128+signal).
func WaitProcess(p *os.Process) (int, error) {
	ps, err := p.Wait()
	if err != nil {
		return -1, err
	}
	return exitCode(ps), nil
}
