package runtime

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/errdef"
)

// testBundle writes a bundle with the default config changed by edit and a rootfs reached
// through a symlink, and returns its directory.
func testBundle(t *testing.T, edit func(s *specs.Spec)) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "real-rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real-rootfs", filepath.Join(dir, "rootfs")); err != nil {
		t.Fatal(err)
	}
	s := DefaultSpec()
	s.Process.Terminal = false
	if edit != nil {
		edit(s)
	}
	b, _ := json.Marshal(s)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestOpenBundle(t *testing.T) {
	rt := &Runtime{Root: t.TempDir()}
	good := testBundle(t, nil)
	b, err := rt.openBundle("c1", CreateOpts{Bundle: good})
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := filepath.EvalSymlinks(filepath.Join(good, "real-rootfs")); b.dir != good || b.rootfs != want || b.spec.Linux == nil {
		t.Fatalf("bundle %+v", b)
	}
	noLinux := testBundle(t, func(s *specs.Spec) { s.Linux = nil })
	if b, err := rt.openBundle("c1", CreateOpts{Bundle: noLinux}); err != nil || b.spec.Linux == nil {
		t.Fatalf("a config without linux: %v", err)
	}
	terminal := testBundle(t, func(s *specs.Spec) { s.Process.Terminal = true })
	noRootfs := testBundle(t, func(s *specs.Spec) { s.Root.Path = "missing" })
	for _, tc := range []struct {
		name string
		id   string
		o    CreateOpts
		is   error
		want string
	}{
		{"bad id", "a/b", CreateOpts{Bundle: good}, errdef.ErrInvalidArgument, "invalid container id"},
		{"no bundle", "c1", CreateOpts{Bundle: filepath.Join(good, "nope")}, errdef.ErrNotFound, "open bundle"},
		{"a file as bundle", "c1", CreateOpts{Bundle: filepath.Join(good, "config.json")}, errdef.ErrNotFound, "open bundle"},
		{"no config", "c1", CreateOpts{Bundle: t.TempDir()}, errdef.ErrNotFound, "config.json"},
		{"no rootfs", "c1", CreateOpts{Bundle: noRootfs}, os.ErrNotExist, "open rootfs of bundle"},
		{"terminal without console", "c1", CreateOpts{Bundle: terminal}, errdef.ErrInvalidArgument, "--console-socket is required"},
		{"console without terminal", "c1", CreateOpts{Bundle: good, ConsoleSocket: "/run/x.sock"}, errdef.ErrInvalidArgument, "process.terminal is false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rt.openBundle(tc.id, tc.o)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("openBundle = %v; want %v about %q", err, tc.is, tc.want)
			}
		})
	}
}

// TestNewContainer: the state directory appears locked, 0711, and an id is taken once.
func TestNewContainer(t *testing.T) {
	rt := &Runtime{Root: filepath.Join(t.TempDir(), "state")}
	b := &bundle{dir: "/b", rootfs: "/b/rootfs", spec: DefaultSpec()}
	c, err := rt.newContainer("c1", b)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := os.Stat(filepath.Join(rt.Root, "c1"))
	if err != nil || st.Mode().Perm() != 0o711 {
		t.Fatalf("state directory: %v %v", st, err)
	}
	if err := unix.Flock(int(c.lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatalf("the lock is not ours: %v", err)
	}
	other, _ := os.Open(filepath.Join(rt.Root, "c1"))
	defer other.Close()
	if err := unix.Flock(int(other.Fd()), unix.LOCK_EX|unix.LOCK_NB); !errors.Is(err, unix.EWOULDBLOCK) {
		t.Fatalf("another open of the directory took the lock: %v", err)
	}
	if c.s.ID != "c1" || c.s.Bundle != "/b" || c.s.Rootfs != "/b/rootfs" || c.s.Spec != b.spec || c.s.Created.IsZero() {
		t.Fatalf("saved %+v", c.s)
	}
	if _, err := rt.newContainer("c1", b); !errors.Is(err, errdef.ErrAlreadyExists) {
		t.Fatalf("a second c1: %v", err)
	}
	ents, _ := os.ReadDir(rt.Root)
	if len(ents) != 1 {
		t.Fatalf("left in the root: %v", ents)
	}
}

// TestLoadDebris: a state directory without state.json is what a create killed half-way
// leaves; Load removes it.
func TestLoadDebris(t *testing.T) {
	rt := &Runtime{Root: t.TempDir()}
	if err := os.Mkdir(filepath.Join(rt.Root, "half"), 0o711); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Load("half"); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("Load = %v", err)
	}
	if _, err := os.Stat(filepath.Join(rt.Root, "half")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("debris left: %v", err)
	}
	if _, err := rt.Load("never"); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("Load of a missing container: %v", err)
	}
}

func newTestCreation(t *testing.T, o CreateOpts, edit func(s *specs.Spec)) *creation {
	t.Helper()
	s := DefaultSpec()
	s.Hostname = "" // runc's default names one: a test that wants it sets it
	if edit != nil {
		edit(s)
	}
	c := &Container{s: saved{ID: "c1", Bundle: "/b", Rootfs: t.TempDir(), Spec: s}}
	cr := &creation{rt: &Runtime{}, o: o, c: c, spec: s}
	cr.cfg = cr.initConfig()
	return cr
}

// TestInitConfig: socket-activation descriptors come first and the process is told, as runc
// tells it; the container's recorded config is not changed.
func TestInitConfig(t *testing.T) {
	cr := newTestCreation(t, CreateOpts{ListenFds: 2, PreserveFds: 3, NoPivot: true}, nil)
	env := cr.cfg.Spec.Process.Env
	if !slices.Contains(env, "LISTEN_FDS=2") || !slices.Contains(env, "LISTEN_PID=1") || cr.cfg.Process != cr.cfg.Spec.Process {
		t.Fatalf("init's env %v", env)
	}
	if slices.Contains(cr.spec.Process.Env, "LISTEN_FDS=2") || cr.cfg.Spec == cr.spec {
		t.Fatalf("the container's config was changed: %v", cr.spec.Process.Env)
	}
	if cr.cfg.PassFds != 5 || !cr.cfg.NoPivot || cr.cfg.Kind != "init" || cr.cfg.ID != "c1" {
		t.Fatalf("config %+v", cr.cfg)
	}
	plain := newTestCreation(t, CreateOpts{}, nil)
	if plain.cfg.Spec != plain.spec || slices.ContainsFunc(plain.cfg.Spec.Process.Env, func(e string) bool { return strings.HasPrefix(e, "LISTEN_") }) {
		t.Fatal("LISTEN_ variables without ListenFds")
	}
}

// TestPlanNamespaces: which namespaces clone creates, which are joined by path and which the
// init creates itself, and what is refused.
func TestPlanNamespaces(t *testing.T) {
	ns := func(list ...specs.LinuxNamespace) func(s *specs.Spec) {
		return func(s *specs.Spec) { s.Linux.Namespaces = list }
	}
	own := func(types ...specs.LinuxNamespaceType) []specs.LinuxNamespace {
		var l []specs.LinuxNamespace
		for _, t := range types {
			l = append(l, specs.LinuxNamespace{Type: t})
		}
		return l
	}
	t.Run("new ones", func(t *testing.T) {
		cr := newTestCreation(t, CreateOpts{}, ns(own(specs.PIDNamespace, specs.MountNamespace, specs.UTSNamespace, specs.CgroupNamespace, specs.TimeNamespace, specs.NetworkNamespace)...))
		if err := cr.planNamespaces(); err != nil {
			t.Fatal(err)
		}
		want := uintptr(unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWNET)
		if cr.ns.attr.Cloneflags != want || !cr.cfg.NewCgroupNS || !cr.cfg.NewTimeNS || !cr.cfg.UTSNS || cr.cfg.UserNS || cr.cfg.HostMounts || len(cr.ns.join) != 0 {
			t.Fatalf("plan %+v %+v", cr.ns, cr.cfg)
		}
	})
	t.Run("joined by path", func(t *testing.T) {
		l := append(own(specs.MountNamespace), specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/run/netns/x"},
			specs.LinuxNamespace{Type: specs.IPCNamespace, Path: "/proc/1/ns/ipc"})
		cr := newTestCreation(t, CreateOpts{}, ns(l...))
		if err := cr.planNamespaces(); err != nil {
			t.Fatal(err)
		}
		if cr.ns.attr.Cloneflags != unix.CLONE_NEWNS || cr.ns.join[specs.NetworkNamespace] != "/run/netns/x" || cr.ns.join[specs.IPCNamespace] != "/proc/1/ns/ipc" {
			t.Fatalf("plan %+v", cr.ns)
		}
	})
	t.Run("a new user namespace maps ids and becomes its root", func(t *testing.T) {
		cr := newTestCreation(t, CreateOpts{}, func(s *specs.Spec) {
			s.Linux.Namespaces = own(specs.UserNamespace, specs.MountNamespace)
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 10}}
		})
		if err := cr.planNamespaces(); err != nil {
			t.Fatal(err)
		}
		a := cr.ns.attr
		if a.Cloneflags&unix.CLONE_NEWUSER == 0 || !cr.cfg.UserNS || len(a.UidMappings) != 1 || a.UidMappings[0] != (syscall.SysProcIDMap{ContainerID: 0, HostID: 100000, Size: 65536}) ||
			a.GidMappings[0].HostID != 200000 || !a.GidMappingsEnableSetgroups || a.Credential == nil || a.Credential.Uid != 0 {
			t.Fatalf("attr %+v", a)
		}
	})
	t.Run("joining a user namespace", func(t *testing.T) {
		cr := newTestCreation(t, CreateOpts{}, ns(append(own(specs.MountNamespace), specs.LinuxNamespace{Type: specs.UserNamespace, Path: "/proc/1/ns/user"})...))
		err := cr.planNamespaces()
		if haveNsenter {
			if err != nil || cr.ns.userns != "/proc/1/ns/user" {
				t.Fatalf("plan %+v, %v", cr.ns, err)
			}
		} else if !errors.Is(err, errdef.ErrUnsupported) {
			t.Fatalf("join without cgo: %v", err)
		}
	})
	t.Run("the runtime's mount namespace", func(t *testing.T) {
		cr := newTestCreation(t, CreateOpts{}, func(s *specs.Spec) {
			s.Linux.Namespaces = own(specs.PIDNamespace)
			s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
		})
		if err := cr.planNamespaces(); err != nil {
			t.Fatal(err)
		}
		if !cr.c.s.HostMounts || !cr.cfg.HostMounts || cr.ns.attr.Cloneflags != unix.CLONE_NEWPID {
			t.Fatalf("plan %+v %+v", cr.ns, cr.cfg)
		}
	})
	for _, tc := range []struct {
		name string
		o    CreateOpts
		edit func(s *specs.Spec)
		is   error
		want string
	}{
		{"masked paths without a mount namespace", CreateOpts{}, ns(own(specs.PIDNamespace)...), errdef.ErrInvalidArgument, "masked and read-only paths"},
		{"no-pivot without a mount namespace", CreateOpts{NoPivot: true}, func(s *specs.Spec) {
			s.Linux.Namespaces, s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil, nil
		}, errdef.ErrInvalidArgument, "--no-pivot"},
		{"hostname without uts", CreateOpts{}, func(s *specs.Spec) {
			s.Linux.Namespaces, s.Hostname = own(specs.MountNamespace), "box"
		}, errdef.ErrInvalidArgument, "hostname needs a uts namespace"},
		{"joining a time namespace", CreateOpts{}, ns(append(own(specs.MountNamespace, specs.UTSNamespace), specs.LinuxNamespace{Type: specs.TimeNamespace, Path: "/proc/1/ns/time"})...),
			errdef.ErrUnsupported, "join time namespace /proc/1/ns/time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cr := newTestCreation(t, tc.o, tc.edit)
			if err := cr.planNamespaces(); !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("planNamespaces = %v; want %v about %q", err, tc.is, tc.want)
			}
		})
	}
}

func TestHostID(t *testing.T) {
	maps := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 1000}, {ContainerID: 1000, HostID: 5000, Size: 1}}
	for _, tc := range []struct {
		name string
		id   uint32
		want int
	}{
		{"root", 0, 100000}, {"inside the first range", 999, 100999}, {"the second", 1000, 5000}, {"unmapped is itself", 1001, 1001},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := hostID(maps, tc.id); got != tc.want {
				t.Fatalf("hostID(%d) = %d, want %d", tc.id, got, tc.want)
			}
		})
	}
	if hostID(nil, 7) != 7 {
		t.Fatal("no mappings")
	}
}
