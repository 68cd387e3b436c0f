package runtime

import (
	"errors"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/errdef"
)

func TestParseSignal(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want unix.Signal
		bad  bool
	}{
		{"number", "9", unix.SIGKILL, false},
		{"short name", "KILL", unix.SIGKILL, false},
		{"full name", "SIGTERM", unix.SIGTERM, false},
		{"lower case", "hup", unix.SIGHUP, false},
		{"realtime", "SIGRTMIN+3", unix.Signal(37), false},
		{"rtmax", "RTMAX", unix.Signal(64), false},
		{"unknown", "SIGNOPE", 0, true},
		{"zero", "0", 0, true},
		{"too big", "65", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSignal(tc.in)
			if tc.bad {
				if !errors.Is(err, errdef.ErrInvalidArgument) {
					t.Fatalf("ParseSignal(%q) = %v, %v; want ErrInvalidArgument", tc.in, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseSignal(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestValidateID(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{{"abc", true}, {"a.b-c_d+e", true}, {"", false}, {".", false}, {"..", false}, {"a/b", false}, {"a b", false}} {
		t.Run(tc.id, func(t *testing.T) {
			if err := ValidateID(tc.id); (err == nil) != tc.ok {
				t.Fatalf("ValidateID(%q) = %v, want ok=%v", tc.id, err, tc.ok)
			}
		})
	}
}

func TestValidateSpec(t *testing.T) {
	good := func() *specs.Spec { return DefaultSpec() }
	for _, tc := range []struct {
		name   string
		mutate func(s *specs.Spec)
		want   error
	}{
		{"default", func(s *specs.Spec) {}, nil},
		{"no version", func(s *specs.Spec) { s.Version = "" }, errdef.ErrInvalidArgument},
		{"major 2", func(s *specs.Spec) { s.Version = "2.0.0" }, errdef.ErrUnsupported},
		{"older 1.x", func(s *specs.Spec) { s.Version = "1.0.2" }, nil},
		{"no root", func(s *specs.Spec) { s.Root = nil }, errdef.ErrInvalidArgument},
		{"no process", func(s *specs.Spec) { s.Process = nil }, errdef.ErrInvalidArgument},
		{"no args", func(s *specs.Spec) { s.Process.Args = nil }, errdef.ErrInvalidArgument},
		{"relative cwd", func(s *specs.Spec) { s.Process.Cwd = "tmp" }, errdef.ErrInvalidArgument},
		{"unknown namespace", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "bogus"})
		}, errdef.ErrInvalidArgument},
		{"duplicate namespace", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.PIDNamespace})
		}, errdef.ErrInvalidArgument},
		{"relative mount", func(s *specs.Spec) { s.Mounts[0].Destination = "proc" }, errdef.ErrInvalidArgument},
		{"unknown rlimit", func(s *specs.Spec) { s.Process.Rlimits[0].Type = "RLIMIT_BOGUS" }, errdef.ErrInvalidArgument},
		{"soft over hard", func(s *specs.Spec) { s.Process.Rlimits[0].Soft = 2048 }, errdef.ErrInvalidArgument},
		{"unknown capability", func(s *specs.Spec) { s.Process.Capabilities.Bounding = []string{"CAP_BOGUS"} }, errdef.ErrInvalidArgument},
		{"relative hook", func(s *specs.Spec) { s.Hooks = &specs.Hooks{Poststop: []specs.Hook{{Path: "bin/true"}}} }, errdef.ErrInvalidArgument},
		{"namespaced sysctl", func(s *specs.Spec) {
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmax": "1"}
		}, nil},
		{"host sysctl", func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"vm.swappiness": "10"} }, errdef.ErrInvalidArgument},
		{"net sysctl without netns", func(s *specs.Spec) {
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
			s.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.MountNamespace}}
		}, errdef.ErrInvalidArgument},
		{"mappings without userns", func(s *specs.Spec) {
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}
		}, errdef.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := good()
			tc.mutate(s)
			err := ValidateSpec(s)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("ValidateSpec = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParseMountOptions(t *testing.T) {
	for _, tc := range []struct {
		name  string
		m     specs.Mount
		flags uintptr
		data  string
		bind  bool
		props int
	}{
		{"bind type", specs.Mount{Type: "bind", Options: []string{"ro"}}, unix.MS_RDONLY, "", true, 0},
		{"rbind option", specs.Mount{Type: "none", Options: []string{"rbind", "nosuid", "rprivate"}}, unix.MS_BIND | unix.MS_REC | unix.MS_NOSUID, "", true, 1},
		{"tmpfs data", specs.Mount{Type: "tmpfs", Options: []string{"nosuid", "mode=755", "size=65536k"}}, unix.MS_NOSUID, "mode=755,size=65536k", false, 0},
		{"rw clears ro", specs.Mount{Type: "tmpfs", Options: []string{"ro", "rw"}}, 0, "", false, 0},
		{"recursive attrs are not data", specs.Mount{Type: "bind", Options: []string{"rro", "rnosuid"}}, 0, "", true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := parseMountOptions(tc.m)
			data := ""
			for i, d := range p.data {
				if i > 0 {
					data += ","
				}
				data += d
			}
			if p.flags != tc.flags || data != tc.data || p.bind != tc.bind || len(p.prop) != tc.props {
				t.Fatalf("got flags %#x data %q bind %v props %d; want %#x %q %v %d", p.flags, data, p.bind, len(p.prop), tc.flags, tc.data, tc.bind, tc.props)
			}
		})
	}
}

func TestFeaturesListsEveryHookAndNamespace(t *testing.T) {
	f := Features()
	if len(f.Hooks) != 6 || len(f.Linux.Namespaces) != 8 || f.OCIVersionMax != specs.Version {
		t.Fatalf("features: hooks %v namespaces %v max %s", f.Hooks, f.Linux.Namespaces, f.OCIVersionMax)
	}
}
