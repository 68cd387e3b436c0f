package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/internal/cgroups"
)

// Create runs `create` (runtime.md "Operations: create"): it validates the bundle, records the
// container under the root, puts it in its cgroups, starts its init in new (or joined)
// namespaces, runs the prestart and createRuntime hooks when the init asks, and returns once
// the init waits for `start`. On failure nothing is left behind: no state, cgroup, mount or
// process.
func (rt *Runtime) Create(id string, o CreateOpts) (*Container, error) {
	b, err := rt.openBundle(id, o)
	if err != nil {
		return nil, err
	}
	c, err := rt.newContainer(id, b)
	if err != nil {
		return nil, err
	}
	cr := &creation{rt: rt, o: o, c: c, spec: b.spec}
	err = cr.run()
	cr.release()
	if err != nil {
		cr.undo()
		return nil, err
	}
	// the init is reparented (to a subreaper or pid 1) when this process exits; `run` waits on it
	c.initProc = cr.init.Process
	return c, nil
}

// bundle is a bundle that passed the checks create makes before anything is written.
type bundle struct {
	dir    string // absolute
	rootfs string // absolute, symlinks resolved
	spec   *specs.Spec
}

// openBundle checks the id, reads and validates the bundle's config.json (linux made
// non-nil), resolves the rootfs and checks the console options against process.terminal.
func (rt *Runtime) openBundle(id string, o CreateOpts) (*bundle, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(o.Bundle)
	if err != nil {
		return nil, fmt.Errorf("resolve bundle %s: %w", o.Bundle, err)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("open bundle %s: %w", dir, errdef.ErrNotFound)
	}
	spec, err := LoadSpec(dir)
	if err != nil {
		return nil, err
	}
	rootfsPath := spec.Root.Path
	if !filepath.IsAbs(rootfsPath) {
		rootfsPath = filepath.Join(dir, rootfsPath)
	}
	if rootfsPath, err = filepath.EvalSymlinks(rootfsPath); err != nil {
		return nil, fmt.Errorf("open rootfs of bundle %s: %w", dir, err)
	}
	if spec.Linux == nil {
		spec.Linux = &specs.Linux{}
	}
	console := o.ConsoleSocket != "" || o.ConsoleConn != nil
	if !console && spec.Process.Terminal {
		return nil, fmt.Errorf("create container %s: process.terminal is true: --console-socket is required: %w", id, errdef.ErrInvalidArgument)
	}
	if console && !spec.Process.Terminal {
		return nil, fmt.Errorf("create container %s: --console-socket given but process.terminal is false: %w", id, errdef.ErrInvalidArgument)
	}
	return &bundle{dir: dir, rootfs: rootfsPath, spec: spec}, nil
}

// newContainer makes the container's state directory and returns it locked. The directory
// appears under its name already locked (made and locked under a name no id can have, then
// renamed without replacing): no other command sees it unlocked and empty. An id in use is
// ErrAlreadyExists.
func (rt *Runtime) newContainer(id string, b *bundle) (*Container, error) {
	if err := os.MkdirAll(rt.Root, 0o700); err != nil {
		return nil, fmt.Errorf("create state root %s: %w", rt.Root, err)
	}
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
	return &Container{rt: rt, dir: dir, lock: lk, s: saved{
		ID: id, Bundle: b.dir, Rootfs: b.rootfs, Created: time.Now().UTC(), Annotations: b.spec.Annotations,
		Owner: ownerName(), Spec: b.spec,
	}}, nil
}

// creation is one create in progress, from the state directory on: what each step made, so
// that undo removes it.
type creation struct {
	rt   *Runtime
	o    CreateOpts
	c    *Container
	spec *specs.Spec
	cfg  *initConfig // what the init is sent

	fifo *os.File    // the exec fifo, O_PATH, passed to the init
	ns   nsPlan      // how the init gets its namespaces
	cf   *childFiles // the init's descriptors
	init *exec.Cmd   // the started init (or the intermediate process), killed by undo
	pid  int         // the init's pid
	enc  *json.Encoder
	dec  *json.Decoder
}

// run is create from the state directory on, in runtime.md's order.
func (cr *creation) run() error {
	if err := cr.setupCgroups(); err != nil {
		return err
	}
	if err := cr.makeExecFifo(); err != nil {
		return err
	}
	cr.cfg = cr.initConfig()
	if err := cr.planNamespaces(); err != nil {
		return err
	}
	if err := cr.startInit(); err != nil {
		return err
	}
	if err := cr.configureInit(); err != nil {
		return err
	}
	if err := cr.serveInit(); err != nil {
		return err
	}
	return cr.commit()
}

// setupCgroups computes the container's cgroups (config-linux.md "cgroupsPath"), creates them
// and writes linux.resources and the device rules.
func (cr *creation) setupCgroups() error {
	paths, err := cgroups.HostPaths(cr.spec.Linux.CgroupsPath, cr.c.s.ID, cr.rt.SystemdCgroup)
	if err != nil {
		return err
	}
	cr.c.s.Cgroups = paths
	if err := paths.Create(); err != nil {
		return err
	}
	r := cr.spec.Linux.Resources
	if err := paths.Apply(r); err != nil {
		return err
	}
	var rules []specs.LinuxDeviceCgroup
	if r != nil {
		rules = r.Devices
	}
	return paths.ApplyDevices(rules, cr.spec.Linux.Devices)
}

// makeExecFifo makes the fifo the init blocks on until `start`, and opens it (O_PATH) for the
// init to reopen by descriptor.
func (cr *creation) makeExecFifo() error {
	p := filepath.Join(cr.c.dir, fifoName)
	if err := unix.Mkfifo(p, 0o622); err != nil {
		return fmt.Errorf("create exec fifo: %w", err)
	}
	// the init opens it for writing, as the container's root (a mapped uid in a user namespace)
	if err := os.Chown(p, hostID(cr.spec.Linux.UIDMappings, 0), hostID(cr.spec.Linux.GIDMappings, 0)); err != nil {
		return fmt.Errorf("chown exec fifo: %w", err)
	}
	// writable by others too (a joined user namespace's root is not known here); its
	// directories are closed to others, and the init opens it by descriptor
	if err := os.Chmod(p, 0o622); err != nil {
		return fmt.Errorf("chmod exec fifo: %w", err)
	}
	f, err := os.OpenFile(p, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	cr.fifo = f
	return nil
}

// initConfig is what the init is sent. Socket-activation descriptors (LISTEN_FDS) come first
// after stdio and the process is told of them as runc tells it: LISTEN_FDS=N, LISTEN_PID=1.
func (cr *creation) initConfig() *initConfig {
	spec := cr.spec
	if n := cr.o.ListenFds; n > 0 {
		s, p := *spec, *spec.Process
		p.Env = append(slices.Clip(p.Env), "LISTEN_FDS="+strconv.Itoa(n), "LISTEN_PID=1")
		s.Process = &p
		spec = &s
	}
	return &initConfig{Kind: "init", ID: cr.c.s.ID, Spec: spec, Process: spec.Process, Bundle: cr.c.s.Bundle,
		Rootfs: cr.c.s.Rootfs, NoPivot: cr.o.NoPivot, NoNewKeyring: cr.o.NoNewKeyring,
		PassFds: cr.o.ListenFds + cr.o.PreserveFds, Cgroups: cr.c.s.Cgroups}
}

// nsPlan is how the init gets the config's namespaces (config-linux.md "Namespaces"): created
// by clone (attr's flags and id mappings), joined by path on the forking thread (join), or
// joined by the child's C constructor (userns, a user namespace's path).
type nsPlan struct {
	attr   *syscall.SysProcAttr
	join   map[specs.LinuxNamespaceType]string
	has    map[specs.LinuxNamespaceType]bool
	userns string
}

// planNamespaces sorts the config's namespaces into new and joined ones, and refuses what
// needs a namespace the config does not have or one this binary cannot join.
func (cr *creation) planNamespaces() error {
	id, spec := cr.c.s.ID, cr.spec
	ns := nsPlan{attr: &syscall.SysProcAttr{}, join: map[specs.LinuxNamespaceType]string{}, has: map[specs.LinuxNamespaceType]bool{}}
	for _, n := range spec.Linux.Namespaces {
		ns.has[n.Type] = true
		switch {
		case n.Path != "":
			ns.join[n.Type] = n.Path
		case n.Type == specs.CgroupNamespace:
			cr.cfg.NewCgroupNS = true // unshared by the init, once in its cgroups
		case n.Type == specs.TimeNamespace:
			cr.cfg.NewTimeNS = true // unshared by the init, effective at its execve
		default:
			ns.attr.Cloneflags |= nsFlags[n.Type]
		}
	}
	if !ns.has[specs.MountNamespace] {
		if err := cr.shareMountNamespace(); err != nil {
			return err
		}
	}
	if (spec.Hostname != "" || spec.Domainname != "") && !ns.has[specs.UTSNamespace] {
		return fmt.Errorf("create container %s: hostname needs a uts namespace: %w", id, errdef.ErrInvalidArgument)
	}
	cr.cfg.UTSNS, cr.cfg.UserNS = ns.has[specs.UTSNamespace], ns.has[specs.UserNamespace]
	if p, ok := ns.join[specs.UserNamespace]; ok {
		if !haveNsenter {
			return fmt.Errorf("join user namespace %s: %w (needs a wharf-runtime built with cgo; see docs/ARCHITECTURE.md)", p, errdef.ErrUnsupported)
		}
		ns.userns = p
	}
	if p, ok := ns.join[specs.TimeNamespace]; ok {
		return fmt.Errorf("join time namespace %s: %w (needs a single-threaded process)", p, errdef.ErrUnsupported)
	}
	if ns.attr.Cloneflags&unix.CLONE_NEWUSER != 0 {
		mapUsers(ns.attr, spec.Linux)
	}
	cr.ns = ns
	return nil
}

// shareMountNamespace prepares a container without a mount namespace of its own, which
// inherits the runtime's (config-linux.md): its mounts are made there, on a private bind of
// the rootfs that delete detaches (see hostmounts.go), so the mounts already at the rootfs
// are recorded to be kept.
func (cr *creation) shareMountNamespace() error {
	id, l := cr.c.s.ID, cr.spec.Linux
	if len(l.MaskedPaths) > 0 || len(l.ReadonlyPaths) > 0 {
		return fmt.Errorf("create container %s: masked and read-only paths need a mount namespace of the container's own: %w", id, errdef.ErrInvalidArgument)
	}
	if cr.o.NoPivot {
		return fmt.Errorf("create container %s: --no-pivot needs a mount namespace of the container's own: %w", id, errdef.ErrInvalidArgument)
	}
	ids, err := mountIDsAt(cr.c.s.Rootfs)
	if err != nil {
		return fmt.Errorf("create container %s: %w", id, err)
	}
	cr.c.s.RootfsMounts = ids
	cr.c.s.HostMounts, cr.cfg.HostMounts = true, true
	return nil
}

// mapUsers writes the config's id mappings of a new user namespace into attr, and makes the
// child the namespace's root once they are written, so that the init keeps its capabilities
// inside it across execve.
func mapUsers(attr *syscall.SysProcAttr, l *specs.Linux) {
	for _, m := range l.UIDMappings {
		attr.UidMappings = append(attr.UidMappings, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
	}
	for _, m := range l.GIDMappings {
		attr.GidMappings = append(attr.GidMappings, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
	}
	attr.GidMappingsEnableSetgroups = true
	attr.Credential = &syscall.Credential{Uid: 0, Gid: 0}
}

// startInit lays out the init's descriptors (the passed ones, the sync socket, the exec fifo,
// the console, a mount namespace to join) and starts it, from a thread that joined the
// namespaces given by path. Joining a user namespace goes through the C constructor, which
// forks the real init (adoptForkedInit).
func (cr *creation) startInit() error {
	cf, err := newChildFiles(cr.cfg.PassFds)
	if err != nil {
		return err
	}
	cr.cf = cf
	cr.cfg.FifoFd = cf.add(cr.fifo)
	if cr.cfg.ConsoleFd, err = cf.addConsole(cr.o.ConsoleConn, cr.o.ConsoleSocket); err != nil {
		return err
	}
	attr := cr.ns.attr
	if p, ok := cr.ns.join[specs.MountNamespace]; ok {
		if cr.cfg.MntnsFd, err = cf.open(p); err != nil {
			return fmt.Errorf("open mount namespace %s: %w", p, err)
		}
		attr.Cloneflags &^= unix.CLONE_NEWNS
	}
	var nsenterEnv []string
	if cr.ns.userns != "" {
		// the C constructor joins the user namespace, creates the new namespaces inside it
		// and forks the init (see nsenter_cgo.go)
		fd, err := cf.open(cr.ns.userns)
		if err != nil {
			return fmt.Errorf("open user namespace %s: %w", cr.ns.userns, err)
		}
		nsenterEnv = []string{fmt.Sprintf("_WHARF_NSENTER=%d:%d", fd, unix.CLONE_NEWUSER),
			fmt.Sprintf("_WHARF_UNSHARE=%d", attr.Cloneflags&^unix.CLONE_NEWUSER), fmt.Sprintf("_WHARF_FORK=%d", cf.syncFd)}
		attr = &syscall.SysProcAttr{}
		delete(cr.ns.join, specs.UserNamespace)
	}
	cmd := cr.rt.selfCmd(cf.syncFd, cr.o.Stdin, cr.o.Stdout, cr.o.Stderr, cf.files, attr)
	cmd.Env = append(cmd.Env, nsenterEnv...)
	err = startInNamespaces(cmd, cr.ns.join)
	cf.child.Close()
	if err != nil {
		return fmt.Errorf("start init of container %s: %w", cr.c.s.ID, err)
	}
	cr.init, cr.pid = cmd, cmd.Process.Pid
	cr.enc, cr.dec = json.NewEncoder(cf.parent), json.NewDecoder(cf.parent)
	if cr.ns.userns != "" {
		return cr.adoptForkedInit()
	}
	return nil
}

// adoptForkedInit waits for the intermediate process the C constructor forked the init from,
// and takes the init's pid from its message: the init is our grandchild (`run` waits on it as
// a subreaper).
func (cr *creation) adoptForkedInit() error {
	var m struct {
		Type string `json:"type"`
		Pid  int    `json:"pid"`
	}
	derr := cr.dec.Decode(&m)
	_, _ = cr.init.Process.Wait() // the intermediate process exits once it has forked
	if derr != nil || m.Type != "pid" || m.Pid <= 0 {
		cr.init = nil
		return fmt.Errorf("create container %s: join user namespace %s: the init was not forked", cr.c.s.ID, cr.ns.userns)
	}
	proc, err := os.FindProcess(m.Pid)
	if err != nil {
		cr.init = nil
		return fmt.Errorf("create container %s: %w", cr.c.s.ID, err)
	}
	cr.init, cr.pid = &exec.Cmd{Process: proc}, m.Pid
	return nil
}

// configureInit records the init, puts it in the container's cgroups and sends it its config.
func (cr *creation) configureInit() error {
	id := cr.c.s.ID
	cr.rt.debugf("container %s: init pid %d", id, cr.pid)
	cr.c.s.Pid = cr.pid
	var err error
	if cr.c.s.PidStart, _, err = procStart(cr.pid); err != nil {
		return fmt.Errorf("read init of container %s: %w", id, err)
	}
	if err := cr.c.s.Cgroups.Join(cr.pid); err != nil {
		return err
	}
	if err := cr.enc.Encode(cr.cfg); err != nil {
		return fmt.Errorf("send config to init: %w", err)
	}
	return nil
}

// serveInit answers the init until it is ready: the prestart and createRuntime hooks run here,
// in the runtime's namespaces, when it asks (runtime.md: once the namespaces exist, before
// pivot_root); an error it reports ends create.
func (cr *creation) serveInit() error {
	id := cr.c.s.ID
	for {
		var m syncMsg
		if err := cr.dec.Decode(&m); err != nil {
			if err == io.EOF || errors.Is(err, unix.ECONNRESET) {
				err = errors.New("init exited")
			}
			return fmt.Errorf("create container %s: %w", id, err)
		}
		switch m.Type {
		case "error":
			return fmt.Errorf("create container %s: %s", id, m.Error)
		case "hooks":
			herr := cr.c.runCreateHooks()
			reply := syncMsg{Type: "hooks-done"}
			if herr != nil {
				reply = syncMsg{Type: "error", Error: herr.Error()}
			}
			if err := cr.enc.Encode(reply); err != nil {
				return fmt.Errorf("create container %s: %w", id, err)
			}
			if herr != nil {
				return herr
			}
		case "ready":
			return nil
		}
	}
}

// commit writes state.json and the pid file: the container is created.
func (cr *creation) commit() error {
	if err := cr.c.save(); err != nil {
		return err
	}
	if cr.o.PidFile != "" {
		return writePidFile(cr.o.PidFile, cr.pid)
	}
	return nil
}

// release closes what create opened for the init: the runtime keeps none of it.
func (cr *creation) release() {
	if cr.cf != nil {
		cr.cf.Close()
	}
	if cr.fifo != nil {
		cr.fifo.Close()
	}
}

// undo removes what a failed create made: the init, the cgroups (after killing what they
// hold), the mounts made in the runtime's namespace, the state directory.
func (cr *creation) undo() {
	c := cr.c
	if cr.init != nil && cr.init.Process != nil {
		_ = cr.init.Process.Kill()
		_, _ = cr.init.Process.Wait()
	}
	if c.s.Cgroups != nil {
		c.s.Cgroups.Kill()
		_ = c.s.Cgroups.Remove()
	}
	if c.s.HostMounts {
		_ = detachHostMounts(c.s.Rootfs, c.s.RootfsMounts)
	}
	os.RemoveAll(c.dir)
	c.Close()
}

// runCreateHooks runs the prestart and createRuntime hooks with the state "creating".
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
