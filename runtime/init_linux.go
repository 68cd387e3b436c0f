package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/internal/cgroups"
	"github.com/wharfoci/wharf/internal/rootfs"
	"github.com/wharfoci/wharf/internal/seccomp"
)

// InitArg is argv[1] of the re-executed runtime that becomes a container's init or an exec'd
// process; the sync socket's descriptor number is in the environment variable initEnv.
const (
	InitArg = "init"
	initEnv = "_WHARF_INIT_SYNC"
)

// initConfig is what the runtime sends its re-executed child over the sync socket.
type initConfig struct {
	Kind         string         `json:"kind"` // "init" or "exec"
	ID           string         `json:"id"`
	Spec         *specs.Spec    `json:"spec,omitempty"`
	Process      *specs.Process `json:"process"`
	Bundle       string         `json:"bundle"`
	Rootfs       string         `json:"rootfs"`
	NoPivot      bool           `json:"no_pivot,omitempty"`
	NoNewKeyring bool           `json:"no_new_keyring,omitempty"`
	// PassFds is how many descriptors after stdio the process keeps (LISTEN_FDS, then
	// --preserve-fds); the child's own come after them.
	PassFds   int           `json:"pass_fds,omitempty"`
	Cgroups   cgroups.Paths `json:"cgroups,omitempty"`
	FifoFd    int           `json:"fifo_fd,omitempty"`
	ConsoleFd int           `json:"console_fd,omitempty"`
	MntnsFd   int           `json:"mntns_fd,omitempty"`
	// RootFd (exec into a container without a mount namespace) is the init's /proc/PID/root.
	RootFd int `json:"root_fd,omitempty"`
	// HostMounts: no mount namespace of the container's own; mount on a private bind of the
	// rootfs and chroot into it (pivot_root would move the runtime's own root).
	HostMounts  bool `json:"host_mounts,omitempty"`
	NewCgroupNS bool `json:"new_cgroupns,omitempty"`
	NewTimeNS   bool `json:"new_timens,omitempty"`
	UserNS      bool `json:"userns,omitempty"`
	UTSNS       bool `json:"utsns,omitempty"`
	// Seccomp is the container's profile, for exec (init reads it from Spec).
	Seccomp *specs.LinuxSeccomp `json:"seccomp,omitempty"`
}

// syncMsg is one message on the sync socket, in either direction.
type syncMsg struct {
	Type  string `json:"type"` // "hooks", "hooks-done", "ready", "error"
	Error string `json:"error,omitempty"`
}

// Init is the entry point of the re-executed runtime (argv[1] == InitArg). The caller must have
// locked the main goroutine to the main thread (runtime.LockOSThread in an init function): every
// namespace and credential change is made on that thread, which is the one that execs. Init
// never returns: it execs the container process or exits non-zero after reporting the error.
func Init() {
	fd, err := strconv.Atoi(os.Getenv(initEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "wharf-runtime init: not started by wharf-runtime")
		os.Exit(1)
	}
	os.Unsetenv(initEnv)
	unix.CloseOnExec(fd)
	sock := os.NewFile(uintptr(fd), "sync")
	dec := json.NewDecoder(sock)
	enc := json.NewEncoder(sock)
	var cfg initConfig
	if err := dec.Decode(&cfg); err != nil {
		os.Exit(1)
	}
	// Nothing above stdio and the passed descriptors may reach the container's process, nor
	// the hooks the init runs: whatever else this process inherited (from a caller that leaked
	// it to the runtime) is closed at every execve from now on.
	closeExtraFds(3 + cfg.PassFds)
	if cfg.Kind == "exec" {
		err = execProcess(&cfg)
	} else {
		err = initContainer(&cfg, sock, dec, enc)
	}
	// only reached on failure; after "ready" the runtime is gone: stderr is all that is left
	if enc.Encode(syncMsg{Type: "error", Error: err.Error()}) != nil {
		fmt.Fprintf(os.Stderr, "wharf-runtime init: %v\n", err)
	}
	os.Exit(1)
}

func wait(dec *json.Decoder, want string) error {
	var m syncMsg
	if err := dec.Decode(&m); err != nil {
		return fmt.Errorf("wait for %s from the runtime: %w", want, err)
	}
	if m.Type == "error" {
		return errors.New(m.Error)
	}
	if m.Type != want {
		return fmt.Errorf("wait for %s from the runtime: got %s", want, m.Type)
	}
	return nil
}

// initContainer builds the container around the init and execs the process, in the order of
// runtime.md's create and start and config-linux.md: the namespaces still to enter, the
// process attributes that outlive execve, the root file system with the createRuntime and
// createContainer hooks, the console, then `start` (the exec fifo), the startContainer hooks
// and the process itself.
func initContainer(cfg *initConfig, sock *os.File, dec *json.Decoder, enc *json.Encoder) error {
	s := cfg.Spec
	var profile *specs.LinuxSeccomp
	if s.Linux != nil {
		profile = s.Linux.Seccomp
	}
	filter, err := seccomp.Compile(profile) // a bad profile is a create error
	if err != nil {
		return err
	}
	if err := enterNamespaces(cfg); err != nil {
		return err
	}
	if err := setInitAttributes(cfg); err != nil {
		return err
	}
	// /proc/self/fd of the host's procfs, to open the exec fifo once the root has changed
	procSelfFd, err := unix.Open("/proc/self/fd", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /proc/self/fd: %w", err)
	}
	if err := setHostname(cfg); err != nil {
		return err
	}
	st := specs.State{Version: specs.Version, ID: cfg.ID, Status: StatusCreating, Pid: os.Getpid(),
		Bundle: cfg.Bundle, Annotations: s.Annotations}
	if err := buildRootfs(cfg, st, dec, enc); err != nil {
		return err
	}
	if err := setupConsole(cfg); err != nil {
		return err
	}
	if err := finishProcess(s); err != nil {
		return err
	}
	if err := enc.Encode(syncMsg{Type: "ready"}); err != nil {
		return err
	}
	sock.Close()
	if err := waitForStart(procSelfFd, cfg.FifoFd); err != nil {
		return err
	}
	if s.Hooks != nil {
		st.Status = StatusCreated
		if err := runHooks("startContainer", s.Hooks.StartContainer, st); err != nil {
			return err
		}
	}
	return execUser(s.Process, filter, 3+cfg.PassFds)
}

// enterNamespaces enters what clone did not: a mount namespace given by path, a new cgroup
// namespace (now that the init is in its cgroups, so it is rooted there) and a new time
// namespace with its offsets.
func enterNamespaces(cfg *initConfig) error {
	if cfg.MntnsFd > 0 {
		if err := joinMountNS(cfg.MntnsFd); err != nil {
			return err
		}
	}
	if cfg.NewCgroupNS {
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return fmt.Errorf("create cgroup namespace: %w", err)
		}
	}
	if cfg.NewTimeNS {
		if err := setupTimeNS(cfg.Spec.Linux.TimeOffsets); err != nil {
			return err
		}
	}
	return nil
}

// setInitAttributes gives the init what its process keeps across execve: a session keyring of
// its own, named after the container (as runc; unless --no-new-keyring), and oom_score_adj.
func setInitAttributes(cfg *initConfig) error {
	if !cfg.NoNewKeyring {
		if _, err := unix.KeyctlJoinSessionKeyring(cfg.ID); err != nil && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EACCES) {
			return fmt.Errorf("join session keyring: %w", err)
		}
	}
	if adj := cfg.Spec.Process.OOMScoreAdj; adj != nil {
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(*adj)), 0); err != nil {
			return fmt.Errorf("set oom_score_adj: %w", err)
		}
	}
	return nil
}

// setHostname sets hostname and domainname in the container's uts namespace.
func setHostname(cfg *initConfig) error {
	s := cfg.Spec
	if !cfg.UTSNS {
		return nil
	}
	if s.Hostname != "" {
		if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
			return fmt.Errorf("set hostname %q: %w", s.Hostname, err)
		}
	}
	if s.Domainname != "" {
		if err := unix.Setdomainname([]byte(s.Domainname)); err != nil {
			return fmt.Errorf("set domainname %q: %w", s.Domainname, err)
		}
	}
	return nil
}

// buildRootfs makes the container's root: the mounts, the createRuntime hooks (run by the
// runtime, in its namespaces, once the container's exist: asked for over the sync socket) and
// createContainer hooks (here, before pivot_root: their paths resolve in the runtime's view),
// the change of root, then sysctls, masked and read-only paths.
func buildRootfs(cfg *initConfig, st specs.State, dec *json.Decoder, enc *json.Encoder) error {
	if err := prepareRootfs(cfg); err != nil {
		return err
	}
	if err := enc.Encode(syncMsg{Type: "hooks"}); err != nil {
		return err
	}
	if err := wait(dec, "hooks-done"); err != nil {
		return err
	}
	if h := cfg.Spec.Hooks; h != nil {
		if err := runHooks("createContainer", h.CreateContainer, st); err != nil {
			return err
		}
	}
	var err error
	switch {
	case cfg.HostMounts:
		err = chrootRoot(cfg.Rootfs)
	case cfg.NoPivot:
		err = moveRoot(cfg.Rootfs)
	default:
		err = pivotRoot(cfg.Rootfs)
	}
	if err != nil {
		return err
	}
	return finishRootfs(cfg)
}

// setupConsole makes the init's terminal (process.terminal: a pty whose master goes to the
// console socket, the slave on /dev/console and stdio), or else a session of its own.
func setupConsole(cfg *initConfig) error {
	p := cfg.Spec.Process
	if !p.Terminal {
		if _, err := unix.Setsid(); err != nil && err != unix.EPERM {
			return fmt.Errorf("setsid: %w", err)
		}
		return nil
	}
	if cfg.ConsoleFd <= 0 {
		return fmt.Errorf("process.terminal is true but no console socket was given")
	}
	con := os.NewFile(uintptr(cfg.ConsoleFd), "console-socket")
	defer con.Close()
	return setupTerminal(con, p.ConsoleSize, true)
}

// finishProcess is the rest of create: the read-only root, rlimits, umask, and the checks
// that the cwd is inside the root and the executable exists (create errors, as with runc).
func finishProcess(s *specs.Spec) error {
	if s.Root.Readonly {
		if err := remountPath("/", "/", unix.MS_BIND|unix.MS_RDONLY, "/"); err != nil {
			return err
		}
	}
	if err := setRlimits(s.Process.Rlimits); err != nil {
		return err
	}
	if s.Process.User.Umask != nil {
		unix.Umask(int(*s.Process.User.Umask))
	}
	if err := checkCwd(s.Process.Cwd); err != nil {
		return err
	}
	return checkExecutable(s.Process.Args[0], s.Process.Cwd, s.Process.Env)
}

// waitForStart blocks until `start`: opening the exec fifo for writing (through the host's
// /proc/self/fd, kept from before the change of root) returns once start opens it for
// reading. The byte written tells start the init is there; the fifo stays open
// (close-on-exec), so start reads until EOF, i.e. until execve succeeded.
func waitForStart(procSelfFd, fifoFd int) error {
	fifo, err := unix.Openat(procSelfFd, strconv.Itoa(fifoFd), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	unix.Close(procSelfFd)
	unix.Close(fifoFd)
	if _, err := unix.Write(fifo, []byte{'0'}); err != nil {
		return fmt.Errorf("write exec fifo: %w", err)
	}
	return nil
}

// execUser switches to the process's identity and execs it, under the seccomp filter (nil:
// none): loaded before the capabilities are dropped, or with no_new_privs just before execve.
// Only stdio and the firstExtraFd-3 passed descriptors stay open across execve.
func execUser(p *specs.Process, filter *seccomp.Filter, firstExtraFd int) error {
	// Both before the seccomp filter, which may refuse their system calls: the descriptors are
	// only marked close-on-exec, the labels take effect at execve.
	closeExtraFds(firstExtraFd)
	if err := applyLSM(p); err != nil {
		return err
	}
	if filter != nil && !p.NoNewPrivileges {
		if err := filter.Install(); err != nil {
			return err
		}
	}
	if err := finalizeProcess(p); err != nil {
		return err
	}
	if err := enterCwd(p.Cwd); err != nil {
		return err
	}
	args := p.Args
	name, err := lookPath(args[0], p.Env)
	if err != nil {
		return err
	}
	env := p.Env
	if env == nil {
		env = []string{}
	}
	if filter != nil && p.NoNewPrivileges {
		if err := filter.Install(); err != nil {
			return err
		}
	}
	if err := unix.Exec(name, args, env); err != nil {
		return fmt.Errorf("exec %s: %w", name, err)
	}
	return nil
}

// enterCwd changes to process.cwd and checks that the kernel places it inside the container's
// root (verifyCwd).
func enterCwd(cwd string) error {
	if err := unix.Chdir(cwd); err != nil {
		return fmt.Errorf("chdir to %s: %w", cwd, err)
	}
	return verifyCwd(cwd)
}

// checkCwd refuses, at create, a process.cwd outside the container's root, then goes back to
// the root: the process changes to its cwd for good once it has its identity (enterCwd,
// checked again). A cwd the init cannot enter yet is left to that later change, as before.
func checkCwd(cwd string) error {
	if unix.Chdir(cwd) != nil {
		return nil
	}
	err := verifyCwd(cwd)
	if cerr := unix.Chdir("/"); err == nil && cerr != nil {
		err = fmt.Errorf("chdir to /: %w", cerr)
	}
	return err
}

// verifyCwd refuses a working directory the kernel does not place inside the process's root:
// one reached through a descriptor of the host — /proc/self/fd/N of a directory the runtime or
// its caller leaked, the CVE-2024-21626 class. getcwd(2) prefixes "(unreachable)" to such a
// directory, which unix.Getwd reports as ENOENT (runc checks the same since 1.1.12).
func verifyCwd(cwd string) error {
	wd, err := unix.Getwd()
	if errors.Is(err, unix.ENOENT) || err == nil && !filepath.IsAbs(wd) {
		return fmt.Errorf("chdir to %s: the working directory is outside the container's root (a host directory reached through a descriptor?): %w", cwd, errdef.ErrUnsafePath)
	}
	if err != nil {
		return fmt.Errorf("check working directory %s: %w", cwd, err)
	}
	return nil
}

func joinMountNS(fd int) error {
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare fs attributes: %w", err)
	}
	if err := unix.Setns(fd, unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("join mount namespace: %w", err)
	}
	unix.Close(fd)
	return unix.Chdir("/")
}

func setupTimeNS(off map[string]specs.LinuxTimeOffset) error {
	if err := unix.Unshare(unix.CLONE_NEWTIME); err != nil {
		return fmt.Errorf("create time namespace: %w", err)
	}
	var lines []string
	for clock, o := range off {
		lines = append(lines, fmt.Sprintf("%s %d %d", clock, o.Secs, o.Nanosecs))
	}
	if len(lines) > 0 {
		if err := os.WriteFile("/proc/self/timens_offsets", []byte(strings.Join(lines, "\n")), 0); err != nil {
			return fmt.Errorf("set time namespace offsets: %w", err)
		}
	}
	return nil
}

// prepareRootfs sets up the mounts of the new mount namespace, before pivot_root.
func prepareRootfs(cfg *initConfig) error {
	s := cfg.Spec
	// private or slave now; shared and unbindable are applied to the new root after pivot_root
	// (an unbindable tree could not be bind-mounted, a shared one could not be pivoted)
	prop := uintptr(unix.MS_SLAVE | unix.MS_REC)
	if s.Linux != nil {
		switch s.Linux.RootfsPropagation {
		case "private", "rprivate":
			prop = unix.MS_PRIVATE | unix.MS_REC
		}
	}
	if !cfg.HostMounts { // in the runtime's namespace, / is not the container's to change
		if err := unix.Mount("", "/", "", prop, ""); err != nil {
			return fmt.Errorf("set propagation of /: %w", err)
		}
	}
	// pivot_root needs the rootfs to be a mount point; without a namespace of its own, the
	// container's mounts go on this bind (private: nothing propagates out of it), and a
	// read-only root remounts the bind, not the file system under it
	if err := unix.Mount(cfg.Rootfs, cfg.Rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind rootfs %s on itself: %w", cfg.Rootfs, err)
	}
	if cfg.HostMounts {
		if err := unix.Mount("", cfg.Rootfs, "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("make the rootfs bind %s private: %w", cfg.Rootfs, err)
		}
	}
	// opened after the bind: the descriptor must name the new mount, not what it hides
	root, err := rootfs.Open(cfg.Rootfs)
	if err != nil {
		return err
	}
	defer root.Close()
	mc := &mountCtx{root: root, rootfs: cfg.Rootfs, bundle: cfg.Bundle, cgroups: cfg.Cgroups}
	for _, m := range s.Mounts {
		if err := mc.mountOne(m); err != nil {
			return err
		}
	}
	if !devIsBind(s) {
		if err := mc.createDevices(s, cfg.UserNS); err != nil {
			return err
		}
		if err := mc.devSymlinks(); err != nil {
			return err
		}
	}
	// the process's cwd exists (runc creates it too), unless it is in /proc: nothing is made
	// there, and a walk of its fd directories never settles (each descriptor the walk opens
	// is a new entry; see internal/rootfs MkdirAllFollow)
	if !inProc(s.Process.Cwd) {
		if d, err := root.MkdirAllFollow(s.Process.Cwd, 0o755); err == nil {
			d.Close()
		}
	}
	return nil
}

// inProc reports whether the container path p is /proc or under it.
func inProc(p string) bool {
	p = path.Clean("/" + p)
	return p == "/proc" || strings.HasPrefix(p, "/proc/")
}

// finishRootfs runs after pivot_root: propagation of the new root, sysctls, masked and
// read-only paths.
func finishRootfs(cfg *initConfig) error {
	s := cfg.Spec
	if s.Linux == nil {
		return nil
	}
	if err := writeSysctls(s.Linux.Sysctl); err != nil {
		return err
	}
	if err := readonlyPaths(s.Linux.ReadonlyPaths); err != nil {
		return err
	}
	if err := maskPaths(s.Linux.MaskedPaths); err != nil {
		return err
	}
	// last: an unbindable root would refuse the bind mounts above
	if p := s.Linux.RootfsPropagation; p != "" {
		if err := unix.Mount("", "/", "", propagationFlags[p], ""); err != nil {
			return fmt.Errorf("set rootfs propagation %s: %w", p, err)
		}
	}
	return nil
}

// execProcess is the child of `exec`: the runtime already joined the container's other
// namespaces on the thread that forked it, and put it in the container's cgroups. It enters
// the container's mount namespace (or root), sets up its terminal and process attributes and
// execs, under the container's seccomp filter.
func execProcess(cfg *initConfig) error {
	p := cfg.Process
	filter, err := seccomp.Compile(cfg.Seccomp)
	if err != nil {
		return err
	}
	if cfg.RootFd > 0 {
		err = enterRoot(cfg.RootFd)
	} else {
		err = joinMountNS(cfg.MntnsFd)
	}
	if err != nil {
		return err
	}
	if p.Terminal {
		if cfg.ConsoleFd <= 0 {
			return fmt.Errorf("process.terminal is true but no console socket was given")
		}
		con := os.NewFile(uintptr(cfg.ConsoleFd), "console-socket")
		if err := setupTerminal(con, p.ConsoleSize, false); err != nil {
			return err
		}
		con.Close()
	}
	if err := setRlimits(p.Rlimits); err != nil {
		return err
	}
	if p.OOMScoreAdj != nil {
		_ = os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(*p.OOMScoreAdj)), 0)
	}
	if p.User.Umask != nil {
		unix.Umask(int(*p.User.Umask))
	}
	return execUser(p, filter, 3+cfg.PassFds)
}
