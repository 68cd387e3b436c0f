package run

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/internal/specdefault"
)

// bundleWith writes a bundle whose config.json is spec and whose rootfs has /etc/passwd and
// /etc/group.
func bundleWith(t *testing.T, spec *specs.Spec) string {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "rootfs", "etc"), 0o755)
	os.WriteFile(filepath.Join(dir, "rootfs", "etc", "passwd"), []byte("root:x:0:0::/root:/bin/sh\nwww:x:33:33::/var/www:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "rootfs", "etc", "group"), []byte("root:x:0:\nwww:x:33:\nstaff:x:50:www\n"), 0o644)
	b, _ := json.Marshal(spec)
	os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600)
	return dir
}

func TestAdjustConfig(t *testing.T) {
	base := func(args ...string) *specs.Spec {
		s := specdefault.Spec()
		s.Hostname = ""
		s.Process.Args = args
		return s
	}
	hostDir := t.TempDir()
	for _, tc := range []struct {
		name    string
		in      *specs.Spec
		opts    Options
		check   func(t *testing.T, s *specs.Spec)
		wantErr error
	}{
		{"image command kept", base("/bin/sh"), Options{ID: "c1"}, func(t *testing.T, s *specs.Spec) {
			if !reflect.DeepEqual(s.Process.Args, []string{"/bin/sh"}) || s.Hostname != "c1" || s.Process.Terminal {
				t.Fatalf("%q %q %v", s.Process.Args, s.Hostname, s.Process.Terminal)
			}
		}, nil},
		{"command replaced, tty, hostname", base("/bin/sh"), Options{ID: "c1", Args: []string{"echo", "hi"}, Tty: true, Hostname: "h"}, func(t *testing.T, s *specs.Spec) {
			if !reflect.DeepEqual(s.Process.Args, []string{"echo", "hi"}) || s.Hostname != "h" || !s.Process.Terminal {
				t.Fatalf("%q %q %v", s.Process.Args, s.Hostname, s.Process.Terminal)
			}
		}, nil},
		{"entrypoint then args", base("/bin/app", "serve"), Options{ID: "c", Entrypoint: []string{"/bin/sh", "-c"}, Args: []string{"id"}}, func(t *testing.T, s *specs.Spec) {
			if !reflect.DeepEqual(s.Process.Args, []string{"/bin/sh", "-c", "id"}) {
				t.Fatalf("%q", s.Process.Args)
			}
		}, nil},
		{"workdir, user, read-only, host network", base("sh"), Options{ID: "c", Workdir: "/srv/app/", User: "www:staff", ReadOnly: true, Network: "host"}, func(t *testing.T, s *specs.Spec) {
			if s.Process.Cwd != "/srv/app" || s.Process.User.UID != 33 || s.Process.User.GID != 50 || !s.Root.Readonly {
				t.Fatalf("cwd %q user %+v ro %v", s.Process.Cwd, s.Process.User, s.Root.Readonly)
			}
			for _, ns := range s.Linux.Namespaces {
				if ns.Type == specs.NetworkNamespace {
					t.Fatal("host network kept a network namespace")
				}
			}
		}, nil},
		{"volumes", base("sh"), Options{ID: "c", Volumes: []string{hostDir + ":/data:ro", hostDir + ":/rw"}}, func(t *testing.T, s *specs.Spec) {
			n := len(s.Mounts)
			ro, rw := s.Mounts[n-2], s.Mounts[n-1]
			if ro.Destination != "/data" || ro.Source != hostDir || !reflect.DeepEqual(ro.Options, []string{"rbind", "rprivate", "ro"}) ||
				rw.Destination != "/rw" || !reflect.DeepEqual(rw.Options, []string{"rbind", "rprivate"}) {
				t.Fatalf("mounts %+v %+v", ro, rw)
			}
		}, nil},
		{"limits", base("sh"), Options{ID: "c", Memory: 64 << 20, PidsLimit: 10, CPUs: 0.5}, func(t *testing.T, s *specs.Spec) {
			r := s.Linux.Resources
			if *r.Memory.Limit != 64<<20 || *r.Pids.Limit != 10 || *r.CPU.Quota != 50000 || *r.CPU.Period != 100000 || len(r.Devices) != 1 {
				t.Fatalf("resources %+v", r)
			}
		}, nil},
		{"caps", base("sh"), Options{ID: "c", CapDrop: []string{"kill"}, CapAdd: []string{"CAP_NET_ADMIN", "sys_time"}}, func(t *testing.T, s *specs.Spec) {
			want := []string{"CAP_AUDIT_WRITE", "CAP_NET_BIND_SERVICE", "CAP_NET_ADMIN", "CAP_SYS_TIME"}
			c := s.Process.Capabilities
			if !reflect.DeepEqual(c.Bounding, want) || !reflect.DeepEqual(c.Effective, want) || !reflect.DeepEqual(c.Permitted, want) {
				t.Fatalf("caps %+v", c)
			}
		}, nil},
		{"drop all, add one", base("sh"), Options{ID: "c", CapDrop: []string{"ALL"}, CapAdd: []string{"chown"}}, func(t *testing.T, s *specs.Spec) {
			if !reflect.DeepEqual(s.Process.Capabilities.Bounding, []string{"CAP_CHOWN"}) {
				t.Fatalf("caps %+v", s.Process.Capabilities)
			}
		}, nil},
		{"no command at all", base(), Options{ID: "c1"}, nil, errdef.ErrInvalidArgument},
		{"no process", &specs.Spec{}, Options{ID: "c1"}, nil, errdef.ErrInvalidArgument},
		{"relative workdir", base("sh"), Options{Workdir: "srv"}, nil, errdef.ErrInvalidArgument},
		{"unknown user", base("sh"), Options{User: "nobody"}, nil, errdef.ErrInvalidArgument},
		{"volume without destination", base("sh"), Options{Volumes: []string{hostDir}}, nil, errdef.ErrInvalidArgument},
		{"volume of a missing path", base("sh"), Options{Volumes: []string{hostDir + "/nope:/x"}}, nil, os.ErrNotExist},
		{"volume climbing", base("sh"), Options{Volumes: []string{hostDir + ":/../x"}}, nil, errdef.ErrInvalidArgument},
		{"volume in proc", base("sh"), Options{Volumes: []string{hostDir + ":/proc/x"}}, nil, errdef.ErrUnsafePath},
		{"volume in sys", base("sh"), Options{Volumes: []string{hostDir + ":/sys/x"}}, nil, errdef.ErrUnsafePath},
		{"workdir in proc", base("sh"), Options{Workdir: "/proc/self/fd/5"}, nil, errdef.ErrUnsafePath},
		{"workdir climbing into proc", base("sh"), Options{Workdir: "/x/../proc/1/cwd"}, nil, errdef.ErrInvalidArgument},
		{"volume option", base("sh"), Options{Volumes: []string{hostDir + ":/x:z"}}, nil, errdef.ErrInvalidArgument},
		{"network", base("sh"), Options{Network: "bridge"}, nil, errdef.ErrInvalidArgument},
		{"unknown cap", base("sh"), Options{CapAdd: []string{"CAP_FLY"}}, nil, errdef.ErrInvalidArgument},
		{"tiny cpus", base("sh"), Options{CPUs: 0.001}, nil, errdef.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := bundleWith(t, tc.in)
			err := adjustConfig(dir, tc.opts)
			if tc.wantErr != nil && tc.check == nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("adjustConfig = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var s specs.Spec
			b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
			json.Unmarshal(b, &s)
			tc.check(t, &s)
		})
	}
}

func TestFindRuntime(t *testing.T) {
	if _, err := FindRuntime("/nonexistent/runtime", ""); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("FindRuntime(missing) = %v, want ErrNotFound", err)
	}
	if r, err := FindRuntime("true", ""); err != nil || filepath.Base(r.Path) != "true" {
		t.Fatalf("FindRuntime(true) = %v, %v", r, err)
	}
}

// Check applies the one container-path check to --workdir and --volume destinations: a
// working directory or mount on the kernel's /proc or /sys is refused (CVE-2024-21626), one
// on a mount the config puts there is not.
func TestCheckPaths(t *testing.T) {
	host := t.TempDir()
	for _, tc := range []struct {
		name    string
		opts    Options
		wantErr error
	}{
		{"workdir", Options{Workdir: "/srv"}, nil},
		{"workdir at a process's descriptor", Options{Workdir: "/proc/self/fd/5"}, errdef.ErrUnsafePath},
		{"workdir in sys", Options{Workdir: "/sys/kernel"}, errdef.ErrUnsafePath},
		{"workdir on the cgroup mount", Options{Workdir: "/sys/fs/cgroup"}, nil},
		{"volume in proc", Options{Volumes: []string{host + ":/proc/x"}}, errdef.ErrUnsafePath},
		{"volume on the cgroup mount", Options{Volumes: []string{host + ":/sys/fs/cgroup/x"}}, nil},
		{"workdir on a volume of the host's proc", Options{Volumes: []string{"/proc:/hostproc"}, Workdir: "/hostproc/self/fd/3"}, errdef.ErrUnsafePath},
		{"workdir on a volume", Options{Volumes: []string{host + ":/data"}, Workdir: "/data/x"}, nil},
		{"relative workdir", Options{Workdir: "srv"}, errdef.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.Check()
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Check = %v", err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Check = %v, want %v", err, tc.wantErr)
			}
			if errors.Is(err, errdef.ErrUnsafePath) && !strings.Contains(err.Error(), "CVE-2024-21626") {
				t.Fatalf("Check = %v: does not say why", err)
			}
		})
	}
}
