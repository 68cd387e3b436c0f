package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/internal/rootfs"
)

// InitArg is argv[1] of the re-executed runtime that becomes a container's init or an exec'd
// process; the sync socket's descriptor number is in the environment variable initEnv.
const (
	InitArg = "init"
	initEnv = "_WHARF_INIT_SYNC"
)

// initConfig is what the runtime sends its re-executed child over the sync socket.
type initConfig struct {
	Kind         string            `json:"kind"` // "init" or "exec"
	ID           string            `json:"id"`
	Spec         *specs.Spec       `json:"spec,omitempty"`
	Process      *specs.Process    `json:"process"`
	Bundle       string            `json:"bundle"`
	Rootfs       string            `json:"rootfs"`
	NoPivot      bool              `json:"no_pivot,omitempty"`
	NoNewKeyring bool              `json:"no_new_keyring,omitempty"`
	PreserveFds  int               `json:"preserve_fds,omitempty"`
	Cgroups      map[string]string `json:"cgroups,omitempty"`
	FifoFd       int               `json:"fifo_fd,omitempty"`
	ConsoleFd    int               `json:"console_fd,omitempty"`
	MntnsFd      int               `json:"mntns_fd,omitempty"`
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
	if cfg.Kind == "exec" {
		err = execProcess(&cfg, sock)
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

// initContainer builds the container around the init and execs the process (runtime.md create,
// then start): namespaces, rootfs, createRuntime/createContainer hooks, pivot_root, the wait on
// the exec fifo, startContainer hooks, process attributes.
func initContainer(cfg *initConfig, sock *os.File, dec *json.Decoder, enc *json.Encoder) error {
	s := cfg.Spec
	var profile *specs.LinuxSeccomp
	if s.Linux != nil {
		profile = s.Linux.Seccomp
	}
	sc, err := loadSeccompProfile(profile) // a bad profile is a create error
	if err != nil {
		return err
	}
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
		if err := setupTimeNS(s.Linux.TimeOffsets); err != nil {
			return err
		}
	}
	if !cfg.NoNewKeyring {
		// a session keyring of its own, named after the container (as runc)
		if _, err := unix.KeyctlJoinSessionKeyring(cfg.ID); err != nil && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EACCES) {
			return fmt.Errorf("join session keyring: %w", err)
		}
	}
	if s.Process.OOMScoreAdj != nil {
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(*s.Process.OOMScoreAdj)), 0); err != nil {
			return fmt.Errorf("set oom_score_adj: %w", err)
		}
	}
	// /proc/self/fd of the host's procfs, to open the exec fifo once the root has changed
	procSelfFd, err := unix.Open("/proc/self/fd", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /proc/self/fd: %w", err)
	}
	if cfg.UTSNS {
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
	}
	if err := prepareRootfs(cfg); err != nil {
		return err
	}
	// runtime.md: createRuntime hooks run in the runtime namespace once the namespaces exist
	if err := enc.Encode(syncMsg{Type: "hooks"}); err != nil {
		return err
	}
	if err := wait(dec, "hooks-done"); err != nil {
		return err
	}
	st := specs.State{Version: specs.Version, ID: cfg.ID, Status: StatusCreating, Pid: os.Getpid(),
		Bundle: cfg.Bundle, Annotations: s.Annotations}
	if s.Hooks != nil {
		// in the container's namespaces, before pivot_root: the paths resolve in the runtime's view
		if err := runHooks("createContainer", s.Hooks.CreateContainer, st); err != nil {
			return err
		}
	}
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
	if err := finishRootfs(cfg); err != nil {
		return err
	}
	if s.Process.Terminal {
		if cfg.ConsoleFd <= 0 {
			return fmt.Errorf("process.terminal is true but no console socket was given")
		}
		con := os.NewFile(uintptr(cfg.ConsoleFd), "console-socket")
		if err := setupTerminal(con, s.Process.ConsoleSize, true); err != nil {
			return err
		}
		con.Close()
	} else if _, err := unix.Setsid(); err != nil && err != unix.EPERM {
		return fmt.Errorf("setsid: %w", err)
	}
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
	// a missing executable is a create error, as with runc
	if err := checkExecutable(s.Process.Args[0], s.Process.Cwd, s.Process.Env); err != nil {
		return err
	}
	if err := enc.Encode(syncMsg{Type: "ready"}); err != nil {
		return err
	}
	sock.Close()

	// wait for `start`: opening the fifo for writing blocks until it is opened for reading
	fifo, err := unix.Openat(procSelfFd, strconv.Itoa(cfg.FifoFd), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	unix.Close(procSelfFd)
	unix.Close(cfg.FifoFd)
	if _, err := unix.Write(fifo, []byte{'0'}); err != nil {
		return fmt.Errorf("write exec fifo: %w", err)
	}
	// fifo stays open (close-on-exec): `start` reads until EOF, i.e. until execve succeeded
	if s.Hooks != nil {
		st.Status = StatusCreated
		if err := runHooks("startContainer", s.Hooks.StartContainer, st); err != nil {
			return err
		}
	}
	return execUser(s.Process, sc, 3+cfg.PreserveFds)
}

// execUser switches to the process's identity and execs it, under the seccomp filter sc (nil:
// none): loaded before the capabilities are dropped, or with no_new_privs just before execve.
func execUser(p *specs.Process, sc *compiledSeccomp, firstExtraFd int) error {
	// Both before the seccomp filter, which may refuse their system calls: the descriptors are
	// only marked close-on-exec, the labels take effect at execve.
	closeExtraFds(firstExtraFd)
	if err := applyLSM(p); err != nil {
		return err
	}
	if sc != nil && !p.NoNewPrivileges {
		if err := sc.install(); err != nil {
			return err
		}
	}
	if err := finalizeProcess(p); err != nil {
		return err
	}
	if err := unix.Chdir(p.Cwd); err != nil {
		return fmt.Errorf("chdir to %s: %w", p.Cwd, err)
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
	if sc != nil && p.NoNewPrivileges {
		if err := sc.install(); err != nil {
			return err
		}
	}
	if err := unix.Exec(name, args, env); err != nil {
		return fmt.Errorf("exec %s: %w", name, err)
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
	// the process's cwd exists (runc creates it too)
	if d, err := root.MkdirAllFollow(s.Process.Cwd, 0o755); err == nil {
		d.Close()
	}
	return nil
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
// namespaces on the thread that forked it, and put it in the container's cgroups.
func execProcess(cfg *initConfig, sock *os.File) error {
	p := cfg.Process
	sc, err := loadSeccompProfile(cfg.Seccomp)
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
	return execUser(p, sc, 3+cfg.PreserveFds)
}
