package ctrpath

import (
	"errors"
	"strings"
	"testing"

	"github.com/wharfoci/wharf/errdef"
)

// defaults are the mounts of runc's default config (internal/specdefault) that matter here.
var defaults = []Mount{
	{Destination: "/proc", Type: "proc", Source: "proc"},
	{Destination: "/dev", Type: "tmpfs", Source: "tmpfs"},
	{Destination: "/sys", Type: "sysfs", Source: "sysfs"},
	{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup"},
}

func with(ms ...Mount) []Mount { return append(append([]Mount(nil), defaults...), ms...) }

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name   string
		path   string
		mounts []Mount
		want   string // the cleaned path, or "" for a refusal
		err    error
	}{
		{"root", "/", defaults, "/", nil},
		{"plain", "/srv/app", defaults, "/srv/app", nil},
		{"cleaned", "//srv/./app/", defaults, "/srv/app", nil},
		{"no mounts", "/tmp", nil, "/tmp", nil},
		{"procfs-like name", "/process", defaults, "/process", nil},
		{"sysroot name", "/sysroot/x", defaults, "/sysroot/x", nil},
		{"dev", "/dev/shm", defaults, "/dev/shm", nil},
		{"empty", "", defaults, "", errdef.ErrInvalidArgument},
		{"nul", "/a\x00b", defaults, "", errdef.ErrInvalidArgument},
		{"relative", "srv", defaults, "", errdef.ErrInvalidArgument},
		{"dot relative", "./srv", defaults, "", errdef.ErrInvalidArgument},
		{"dotdot", "/srv/../app", defaults, "", errdef.ErrInvalidArgument},
		{"dotdot to proc", "/x/../../proc/1/cwd", defaults, "", errdef.ErrInvalidArgument},
		{"trailing dotdot", "/srv/..", defaults, "", errdef.ErrInvalidArgument},
		{"proc", "/proc", defaults, "", errdef.ErrUnsafePath},
		{"proc self fd", "/proc/self/fd/5", defaults, "", errdef.ErrUnsafePath},
		{"proc self fd, unclean", "//proc//self/fd/5/", defaults, "", errdef.ErrUnsafePath},
		{"proc without a proc mount", "/proc/x", nil, "", errdef.ErrUnsafePath},
		{"sys", "/sys/kernel", defaults, "", errdef.ErrUnsafePath},
		{"sys itself", "/sys", defaults, "", errdef.ErrUnsafePath},
		{"cgroup mount under sys", "/sys/fs/cgroup/x", defaults, "/sys/fs/cgroup/x", nil},
		{"bind under proc", "/proc/x/y", with(Mount{Destination: "/proc/x", Type: "bind", Source: "/srv/data"}), "/proc/x/y", nil},
		{"bind destination itself", "/proc/x", with(Mount{Destination: "/proc/x", Type: "bind", Source: "/srv/data"}), "/proc/x", nil},
		{"beside the bind", "/proc/xy", with(Mount{Destination: "/proc/x", Type: "bind", Source: "/srv/data"}), "", errdef.ErrUnsafePath},
		{"tmpfs under sys", "/sys/y/z", with(Mount{Destination: "/sys/y", Type: "tmpfs", Source: "tmpfs"}), "/sys/y/z", nil},
		{"bind of host proc", "/proc/x/self/fd/5", with(Mount{Destination: "/proc/x", Type: "bind", Source: "/proc"}), "", errdef.ErrUnsafePath},
		{"bind of host sys", "/data/kernel", with(Mount{Destination: "/data", Type: "bind", Source: "/sys/kernel"}), "", errdef.ErrUnsafePath},
		{"beside a bind of host sys", "/datum", with(Mount{Destination: "/data", Type: "bind", Source: "/sys/kernel"}), "/datum", nil},
		{"proc mounted under a bind", "/proc/x/self", with(Mount{Destination: "/proc/x", Type: "bind", Source: "/srv"}, Mount{Destination: "/proc/x", Type: "proc", Source: "proc"}), "", errdef.ErrUnsafePath},
		{"proc mount elsewhere", "/data/self/fd/3", with(Mount{Destination: "/data", Type: "proc", Source: "proc"}), "", errdef.ErrUnsafePath},
		{"a mount at the root", "/proc/1", []Mount{{Destination: "/", Type: "tmpfs", Source: "tmpfs"}}, "", errdef.ErrUnsafePath},
		{"unclean destination", "/proc/x/y", with(Mount{Destination: "/proc//x/", Type: "bind", Source: "/srv"}), "/proc/x/y", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Check(tc.path, "--workdir", tc.mounts)
			if tc.err == nil {
				if err != nil || got != tc.want {
					t.Fatalf("Check(%q) = %q, %v; want %q", tc.path, got, err, tc.want)
				}
				return
			}
			if err == nil || !errors.Is(err, tc.err) {
				t.Fatalf("Check(%q) = %q, %v; want an error wrapping %v", tc.path, got, err, tc.err)
			}
			if !strings.HasPrefix(err.Error(), "--workdir") {
				t.Errorf("error %q does not name what was checked", err)
			}
		})
	}
}
