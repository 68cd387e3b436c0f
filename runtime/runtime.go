package runtime

import (
	"encoding/json"
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
	"strings"
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
	PreserveFds   int
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

// Create runs `create`: it validates the bundle, records the container under the root, starts
// its init in new (or joined) namespaces and cgroups, runs the prestart and createRuntime hooks,
// and returns once the init waits for `start`. On failure nothing is left behind.
func (rt *Runtime) Create(id string, o CreateOpts) (c *Container, err error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return nil, fmt.Errorf("resolve bundle %s: %w", o.Bundle, err)
	}
	if st, err := os.Stat(bundle); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("open bundle %s: %w", bundle, errdef.ErrNotFound)
	}
	spec, err := LoadSpec(bundle)
	if err != nil {
		return nil, err
	}
	rootfsPath := spec.Root.Path
	if !filepath.IsAbs(rootfsPath) {
		rootfsPath = filepath.Join(bundle, rootfsPath)
	}
	if rootfsPath, err = filepath.EvalSymlinks(rootfsPath); err != nil {
		return nil, fmt.Errorf("open rootfs of bundle %s: %w", bundle, err)
	}
	if spec.Linux == nil {
		spec.Linux = &specs.Linux{}
	}
	if o.ConsoleSocket == "" && o.ConsoleConn == nil && spec.Process.Terminal {
		return nil, fmt.Errorf("create container %s: process.terminal is true: --console-socket is required: %w", id, errdef.ErrInvalidArgument)
	}
	if (o.ConsoleSocket != "" || o.ConsoleConn != nil) && !spec.Process.Terminal {
		return nil, fmt.Errorf("create container %s: --console-socket given but process.terminal is false: %w", id, errdef.ErrInvalidArgument)
	}
	if err := os.MkdirAll(rt.Root, 0o700); err != nil {
		return nil, fmt.Errorf("create state root %s: %w", rt.Root, err)
	}
	// the directory appears under its name already locked (made and locked under a name no id
	// can have, then renamed without replacing): no other command sees it unlocked and empty
	dir := rt.containerDir(id)
	tmp, err := os.MkdirTemp(rt.Root, ".creating:"+id+":")
	if err != nil {
		return nil, fmt.Errorf("create state of container %s: %w", id, err)
	}
	if err := os.Chmod(tmp, 0o711); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("create state of container %s: %w", id, err)
	}
	lk, err := lockDir(tmp)
	if err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("lock container %s: %w", id, err)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dir, unix.RENAME_NOREPLACE); err != nil {
		lk.Close()
		os.Remove(tmp)
		if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY) {
			return nil, fmt.Errorf("container %s: %w", id, errdef.ErrAlreadyExists)
		}
		return nil, fmt.Errorf("create state of container %s: %w", id, err)
	}
	c = &Container{rt: rt, dir: dir, lock: lk, s: saved{
		ID: id, Bundle: bundle, Rootfs: rootfsPath, Created: time.Now().UTC(), Annotations: spec.Annotations,
		Owner: ownerName(), Spec: spec,
	}}
	var initCmd *exec.Cmd
	defer func() {
		if err == nil {
			return
		}
		if initCmd != nil && initCmd.Process != nil {
			_ = initCmd.Process.Kill()
			_, _ = initCmd.Process.Wait()
		}
		if c.s.Cgroups != nil {
			killCgroup(c.s.Cgroups)
			_ = removeCgroups(c.s.Cgroups)
		}
		if c.s.HostMounts {
			_ = detachHostMounts(c.s.Rootfs, c.s.RootfsMounts)
		}
		os.RemoveAll(dir)
		c.Close()
		c = nil
	}()

	paths, err := cgroupPaths(spec.Linux.CgroupsPath, id, rt.SystemdCgroup)
	if err != nil {
		return c, err
	}
	c.s.Cgroups = paths
	if err := createCgroups(paths); err != nil {
		return c, err
	}
	if err := applyResources(paths, spec.Linux.Resources); err != nil {
		return c, err
	}
	if err := applyDevices(paths, spec); err != nil {
		return c, err
	}
	if err := unix.Mkfifo(filepath.Join(dir, fifoName), 0o622); err != nil {
		return c, fmt.Errorf("create exec fifo: %w", err)
	}
	// the init opens it for writing, as the container's root (a mapped uid in a user namespace)
	if err := os.Chown(filepath.Join(dir, fifoName), hostID(spec.Linux.UIDMappings, 0), hostID(spec.Linux.GIDMappings, 0)); err != nil {
		return c, fmt.Errorf("chown exec fifo: %w", err)
	}
	// writable by others too (a joined user namespace's root is not known here); its
	// directories are closed to others, and the init opens it by descriptor
	if err := os.Chmod(filepath.Join(dir, fifoName), 0o622); err != nil {
		return c, fmt.Errorf("chmod exec fifo: %w", err)
	}
	fifo, err := os.OpenFile(filepath.Join(dir, fifoName), unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return c, fmt.Errorf("open exec fifo: %w", err)
	}
	defer fifo.Close()

	cfg := &initConfig{Kind: "init", ID: id, Spec: spec, Process: spec.Process, Bundle: bundle, Rootfs: rootfsPath,
		NoPivot: o.NoPivot, NoNewKeyring: o.NoNewKeyring, PreserveFds: o.PreserveFds, Cgroups: paths}
	attr := &syscall.SysProcAttr{}
	join := map[specs.LinuxNamespaceType]string{}
	hasNS := map[specs.LinuxNamespaceType]bool{}
	for _, ns := range spec.Linux.Namespaces {
		hasNS[ns.Type] = true
		if ns.Path != "" {
			join[ns.Type] = ns.Path
			continue
		}
		switch ns.Type {
		case specs.CgroupNamespace:
			cfg.NewCgroupNS = true
		case specs.TimeNamespace:
			cfg.NewTimeNS = true
		default:
			attr.Cloneflags |= nsFlags[ns.Type]
		}
	}
	if !hasNS[specs.MountNamespace] {
		// config-linux.md: the container inherits the runtime's mount namespace. Its mounts are
		// made there, on a private bind of the rootfs that delete detaches (see hostmounts.go).
		if len(spec.Linux.MaskedPaths) > 0 || len(spec.Linux.ReadonlyPaths) > 0 {
			return c, fmt.Errorf("create container %s: masked and read-only paths need a mount namespace of the container's own: %w", id, errdef.ErrInvalidArgument)
		}
		if o.NoPivot {
			return c, fmt.Errorf("create container %s: --no-pivot needs a mount namespace of the container's own: %w", id, errdef.ErrInvalidArgument)
		}
		if c.s.RootfsMounts, err = mountIDsAt(rootfsPath); err != nil {
			return c, fmt.Errorf("create container %s: %w", id, err)
		}
		c.s.HostMounts, cfg.HostMounts = true, true
	}
	if (spec.Hostname != "" || spec.Domainname != "") && !hasNS[specs.UTSNamespace] {
		return c, fmt.Errorf("create container %s: hostname needs a uts namespace: %w", id, errdef.ErrInvalidArgument)
	}
	cfg.UTSNS = hasNS[specs.UTSNamespace]
	cfg.UserNS = hasNS[specs.UserNamespace]
	usernsPath, joinUser := join[specs.UserNamespace]
	if joinUser && !haveNsenter {
		return c, fmt.Errorf("join user namespace %s: %w (needs a wharf-runtime built with cgo; see docs/ARCHITECTURE.md)", usernsPath, errdef.ErrUnsupported)
	}
	if p, ok := join[specs.TimeNamespace]; ok {
		return c, fmt.Errorf("join time namespace %s: %w (needs a single-threaded process)", p, errdef.ErrUnsupported)
	}
	if attr.Cloneflags&unix.CLONE_NEWUSER != 0 {
		for _, m := range spec.Linux.UIDMappings {
			attr.UidMappings = append(attr.UidMappings, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
		}
		for _, m := range spec.Linux.GIDMappings {
			attr.GidMappings = append(attr.GidMappings, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
		}
		attr.GidMappingsEnableSetgroups = true
		// become the namespace's root once the maps are written, so the init keeps its
		// capabilities inside the new namespace across execve
		attr.Credential = &syscall.Credential{Uid: 0, Gid: 0}
	}

	cf, err := newChildFiles(o.PreserveFds)
	if err != nil {
		return c, err
	}
	defer cf.Close()
	cfg.FifoFd = cf.add(fifo)
	if cfg.ConsoleFd, err = cf.addConsole(o.ConsoleConn, o.ConsoleSocket); err != nil {
		return c, err
	}
	if p, ok := join[specs.MountNamespace]; ok {
		if cfg.MntnsFd, err = cf.open(p); err != nil {
			return c, fmt.Errorf("open mount namespace %s: %w", p, err)
		}
		attr.Cloneflags &^= unix.CLONE_NEWNS
	}
	var nsenterEnv []string
	if joinUser {
		// the C constructor joins the user namespace, creates the new namespaces inside it
		// and forks the init (see nsenter_cgo.go)
		fd, err := cf.open(usernsPath)
		if err != nil {
			return c, fmt.Errorf("open user namespace %s: %w", usernsPath, err)
		}
		nsenterEnv = []string{fmt.Sprintf("_WHARF_NSENTER=%d:%d", fd, unix.CLONE_NEWUSER),
			fmt.Sprintf("_WHARF_UNSHARE=%d", attr.Cloneflags&^unix.CLONE_NEWUSER), fmt.Sprintf("_WHARF_FORK=%d", cf.syncFd)}
		attr = &syscall.SysProcAttr{}
		delete(join, specs.UserNamespace)
	}
	initCmd = rt.selfCmd(cf.syncFd, o.Stdin, o.Stdout, o.Stderr, cf.files, attr)
	initCmd.Env = append(initCmd.Env, nsenterEnv...)
	err = startInNamespaces(initCmd, join)
	cf.child.Close()
	if err != nil {
		initCmd = nil
		return c, fmt.Errorf("start init of container %s: %w", id, err)
	}
	pid := initCmd.Process.Pid
	enc, dec := json.NewEncoder(cf.parent), json.NewDecoder(cf.parent)
	if joinUser {
		var m struct {
			Type string `json:"type"`
			Pid  int    `json:"pid"`
		}
		derr := dec.Decode(&m)
		_, _ = initCmd.Process.Wait() // the intermediate process exits once it has forked
		if derr != nil || m.Type != "pid" || m.Pid <= 0 {
			initCmd = nil
			return c, fmt.Errorf("create container %s: join user namespace %s: the init was not forked", id, usernsPath)
		}
		pid = m.Pid
		// the init is our grandchild; `run` waits on it as a subreaper
		proc, err := os.FindProcess(pid)
		if err != nil {
			return c, fmt.Errorf("create container %s: %w", id, err)
		}
		initCmd = &exec.Cmd{Process: proc}
	}
	rt.debugf("container %s: init pid %d", id, pid)
	c.s.Pid = pid
	if c.s.PidStart, _, err = procStart(pid); err != nil {
		return c, fmt.Errorf("read init of container %s: %w", id, err)
	}
	if err := joinCgroups(paths, pid); err != nil {
		return c, err
	}
	if err := enc.Encode(cfg); err != nil {
		return c, fmt.Errorf("send config to init: %w", err)
	}
	for done := false; !done; {
		var m syncMsg
		if err := dec.Decode(&m); err != nil {
			if err == io.EOF || errors.Is(err, unix.ECONNRESET) {
				err = errors.New("init exited")
			}
			return c, fmt.Errorf("create container %s: %w", id, err)
		}
		switch m.Type {
		case "error":
			return c, fmt.Errorf("create container %s: %s", id, m.Error)
		case "hooks":
			herr := c.runCreateHooks()
			reply := syncMsg{Type: "hooks-done"}
			if herr != nil {
				reply = syncMsg{Type: "error", Error: herr.Error()}
			}
			if err := enc.Encode(reply); err != nil {
				return c, fmt.Errorf("create container %s: %w", id, err)
			}
			if herr != nil {
				return c, herr
			}
		case "ready":
			done = true
		}
	}
	if err := c.save(); err != nil {
		return c, err
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, pid); err != nil {
			return c, err
		}
	}
	// the init is reparented (to a subreaper or pid 1) when this process exits; `run` waits on it
	c.initProc = initCmd.Process
	return c, nil
}

func (c *Container) runCreateHooks() error {
	h := c.s.Spec.Hooks
	if h == nil {
		return nil
	}
	st := c.specState(StatusCreating)
	if err := runHooks("prestart", h.Prestart, st); err != nil { //nolint:staticcheck // still in the spec
		return err
	}
	return runHooks("createRuntime", h.CreateRuntime, st)
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
	if st == StatusStopped {
		if all {
			killCgroupSig(c.s.Cgroups, sig)
			return nil
		}
		return fmt.Errorf("kill container %s: container not running: %w", c.s.ID, errdef.ErrInvalidState)
	}
	if all {
		killCgroupSig(c.s.Cgroups, sig)
		return nil
	}
	if err := unix.Kill(c.s.Pid, sig); err != nil {
		return fmt.Errorf("kill container %s (pid %d): %w", c.s.ID, c.s.Pid, err)
	}
	return nil
}

// killCgroupSig signals every process of the container's cgroup; SIGKILL is sent frozen, so
// nothing forks in between, then the cgroup is thawed.
func killCgroupSig(paths map[string]string, sig unix.Signal) {
	freezer := ""
	if d, ok := paths["freezer"]; ok && sig == unix.SIGKILL {
		freezer = filepath.Join(d, "freezer.state")
		_ = os.WriteFile(freezer, []byte("FROZEN"), 0)
	}
	pids, _ := cgroupPids(paths)
	for _, p := range pids {
		_ = unix.Kill(p, sig)
	}
	if freezer != "" {
		_ = os.WriteFile(freezer, []byte("THAWED"), 0)
	}
}

func killCgroup(paths map[string]string) {
	for i := 0; i < 200; i++ {
		pids, err := cgroupPids(paths)
		if err != nil || len(pids) == 0 {
			return
		}
		killCgroupSig(paths, unix.SIGKILL)
		time.Sleep(5 * time.Millisecond)
	}
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
		killCgroup(c.s.Cgroups)
		for i := 0; i < 500 && c.initAlive(); i++ {
			time.Sleep(2 * time.Millisecond)
		}
	} else {
		killCgroup(c.s.Cgroups)
	}
	var errs []error
	if err := removeCgroups(c.s.Cgroups); err != nil {
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

// Pause freezes every process of the container.
func (c *Container) Pause() error {
	if st := c.Status(); st != StatusRunning {
		return fmt.Errorf("cannot pause container %s: invalid state transition from %s to paused: %w", c.s.ID, st, errdef.ErrInvalidState)
	}
	return c.setFrozen(true)
}

// Resume thaws a paused container.
func (c *Container) Resume() error {
	if st := c.Status(); st != StatusPaused {
		return fmt.Errorf("cannot resume container %s: invalid state transition from %s to running: %w", c.s.ID, st, errdef.ErrInvalidState)
	}
	return c.setFrozen(false)
}

// Pids lists the host pids of the container's processes.
func (c *Container) Pids() ([]int, error) { return cgroupPids(c.s.Cgroups) }

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

var _ = strings.TrimSpace
