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
	PreserveFds   int
	IgnorePaused  bool
	ConsoleConn   *os.File
}

// Exec starts p inside the running container: in its namespaces (joined from the init's
// /proc/PID/ns) and cgroups. It returns once p has been executed; the caller may Wait on it.
func (c *Container) Exec(p *specs.Process, o ExecOpts) (*os.Process, error) {
	if err := validateProcess(p); err != nil {
		return nil, err
	}
	switch st := c.Status(); st {
	case StatusRunning, StatusCreated:
	case StatusPaused:
		if !o.IgnorePaused {
			return nil, fmt.Errorf("cannot exec in a paused container %s: %w", c.s.ID, errdef.ErrInvalidState)
		}
	default:
		return nil, fmt.Errorf("cannot exec in a %s container %s: %w", st, c.s.ID, errdef.ErrInvalidState)
	}
	if p.Terminal && o.ConsoleSocket == "" && o.ConsoleConn == nil {
		return nil, fmt.Errorf("exec in container %s: a terminal needs --console-socket: %w", c.s.ID, errdef.ErrInvalidArgument)
	}
	pid := c.s.Pid
	nsDir := "/proc/" + strconv.Itoa(pid) + "/ns/"
	join := map[specs.LinuxNamespaceType]string{}
	early := map[specs.LinuxNamespaceType]string{} // joined by the child's C constructor
	for t, name := range nsProcName {
		if t == specs.MountNamespace {
			continue
		}
		if same, err := sameNS(nsDir+name, "/proc/self/ns/"+name); err != nil || same {
			continue
		}
		if t == specs.UserNamespace || t == specs.TimeNamespace {
			if !haveNsenter {
				return nil, fmt.Errorf("exec in container %s: joining its %s namespace needs a wharf-runtime built with cgo: %w (see docs/ARCHITECTURE.md)", c.s.ID, name, errdef.ErrUnsupported)
			}
			early[t] = nsDir + name
			continue
		}
		join[t] = nsDir + name
	}
	// the container's mount namespace, or, when it shares the runtime's, its root directory
	what, path := "mount namespace", nsDir+"mnt"
	if c.s.HostMounts {
		what, path = "root", "/proc/"+strconv.Itoa(pid)+"/root"
	}
	mntns, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s of container %s: %w", what, c.s.ID, err)
	}
	defer mntns.Close()
	cfg := &initConfig{Kind: "exec", ID: c.s.ID, Process: p, Bundle: c.s.Bundle, PreserveFds: o.PreserveFds}
	if c.s.Spec != nil && c.s.Spec.Linux != nil {
		cfg.Seccomp = c.s.Spec.Linux.Seccomp // exec'd processes get the container's filter, as with runc
	}
	cf, err := newChildFiles(o.PreserveFds)
	if err != nil {
		return nil, err
	}
	defer cf.Close()
	if c.s.HostMounts {
		cfg.RootFd = cf.add(mntns)
	} else {
		cfg.MntnsFd = cf.add(mntns)
	}
	if cfg.ConsoleFd, err = cf.addConsole(o.ConsoleConn, o.ConsoleSocket); err != nil {
		return nil, err
	}
	var nsenter []string
	for _, t := range []specs.LinuxNamespaceType{specs.UserNamespace, specs.TimeNamespace} {
		p, ok := early[t]
		if !ok {
			continue
		}
		fd, err := cf.open(p)
		if err != nil {
			return nil, fmt.Errorf("open %s namespace of container %s: %w", t, c.s.ID, err)
		}
		nsenter = append(nsenter, fmt.Sprintf("%d:%d", fd, nsFlags[t]))
	}
	cmd := c.rt.selfCmd(cf.syncFd, nil, nil, nil, cf.files, &syscall.SysProcAttr{})
	if len(nsenter) > 0 {
		cmd.Env = append(cmd.Env, "_WHARF_NSENTER="+strings.Join(nsenter, ","))
	}
	err = startInNamespaces(cmd, join)
	cf.child.Close()
	if err != nil {
		return nil, fmt.Errorf("exec in container %s: %w", c.s.ID, err)
	}
	fail := func(err error) (*os.Process, error) {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
		return nil, fmt.Errorf("exec in container %s: %w", c.s.ID, err)
	}
	if err := joinCgroups(c.s.Cgroups, cmd.Process.Pid); err != nil {
		return fail(err)
	}
	if err := json.NewEncoder(cf.parent).Encode(cfg); err != nil {
		return fail(err)
	}
	// the child's end is close-on-exec: EOF means the process was executed
	var m syncMsg
	if err := json.NewDecoder(cf.parent).Decode(&m); err == nil && m.Type == "error" {
		_, _ = cmd.Process.Wait()
		return nil, fmt.Errorf("exec in container %s: %s", c.s.ID, m.Error)
	} else if err != nil && err != io.EOF && !errors.Is(err, unix.ECONNRESET) {
		return fail(err)
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, cmd.Process.Pid); err != nil {
			return fail(err)
		}
	}
	return cmd.Process, nil
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

var _ = exec.Command
