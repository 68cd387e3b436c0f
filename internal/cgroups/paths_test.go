package cgroups

import (
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/wharfoci/wharf/errdef"
)

func TestInnerPath(t *testing.T) {
	for _, tc := range []struct {
		name, path, id string
		systemd        bool
		want           string
		abs, bad       bool
	}{
		{"empty is the id, relative", "", "c1", false, "c1", false, false},
		{"absolute", "/wharf-peers/c1", "c1", false, "/wharf-peers/c1", true, false},
		{"relative", "pods/c1", "c1", false, "pods/c1", false, false},
		{"relative, cleaned", "pods//./c1/", "c1", false, "pods/c1", false, false},
		{"dot-dot clamps", "/../../x", "c1", false, "/x", true, false},
		{"relative dot-dot clamps", "../../x", "c1", false, "x", false, false},
		{"root refused", "/", "c1", false, "", false, true},
		{"root through dot-dot refused", "a/..", "c1", false, "", false, true},
		{"systemd", "system.slice:docker:abc", "c1", true, "/system.slice/docker-abc.scope", true, false},
		{"systemd nested slice", "a-b.slice:p:n", "c1", true, "/a.slice/a-b.slice/p-n.scope", true, false},
		{"systemd root slice", "-.slice:p:n", "c1", true, "/p-n.scope", true, false},
		{"systemd no prefix", "user.slice::n", "c1", true, "/user.slice/n.scope", true, false},
		{"systemd name is a slice", "machine.slice::pod.slice", "c1", true, "/machine.slice/pod.slice", true, false},
		{"systemd default", "", "c1", true, "/system.slice/wharf-c1.scope", true, false},
		{"systemd bad", "nocolons", "c1", true, "", false, true},
		{"systemd bad slice", "system:p:n", "c1", true, "", false, true},
		{"systemd empty slice component", "a--b.slice:p:n", "c1", true, "", false, true},
		{"systemd-style without the flag", "machine.slice:libpod:x", "c1", false, "/machine.slice/libpod-x.scope", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, abs, err := InnerPath(tc.path, tc.id, tc.systemd)
			if tc.bad {
				if !errors.Is(err, errdef.ErrInvalidArgument) {
					t.Fatalf("InnerPath(%q) = %q, %v; want ErrInvalidArgument", tc.path, got, err)
				}
				return
			}
			if err != nil || got != tc.want || abs != tc.abs {
				t.Fatalf("InnerPath(%q) = %q, %v, %v; want %q, %v", tc.path, got, abs, err, tc.want, tc.abs)
			}
		})
	}
}

// Mountinfo samples: this machine's hybrid layout, a v1 host with joined controllers, a
// cgroup2 host, and the view from inside a container's cgroup namespace.
const (
	mountinfoHybrid = `22 28 0:20 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`
	mountinfoV1 = `25 21 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,xattr,release_agent=/usr/lib/systemd/systemd-cgroups-agent,name=systemd
29 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,cpuacct,cpu
30 25 0:27 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,net_cls,net_prio
31 25 0:28 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpuset,clone_children
32 25 0:29 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,memory
33 25 0:30 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,pids
90 33 0:30 /docker /mnt/pids\040copy rw,relatime - cgroup cgroup rw,pids
91 25 0:31 / /sys/fs/cgroup/none rw,relatime - cgroup cgroup rw,none,name=
`
	mountinfoV2 = `26 21 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`
	// a container's view: its cgroup namespace roots the mounts at its own cgroup, shown as /
	// for the hierarchies it was created in and as a path above it for the others
	mountinfoNamespaced = `1200 1100 0:29 / /sys/fs/cgroup/cpu ro,nosuid - cgroup cgroup rw,cpu
1201 1100 0:37 /.. /sys/fs/cgroup/systemd ro,nosuid - cgroup cgroup rw,name=systemd
1202 1100 0:38 /pods/c1 /sys/fs/cgroup/unified ro,nosuid - cgroup2 cgroup2 rw
`
)

func TestParseMountinfo(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []Hierarchy
	}{
		{"hybrid", mountinfoHybrid, []Hierarchy{
			{"cpu", "/sys/fs/cgroup/cpu", "/"}, {"cpuacct", "/sys/fs/cgroup/cpuacct", "/"},
			{"cpuset", "/sys/fs/cgroup/cpuset", "/"}, {"memory", "/sys/fs/cgroup/memory", "/"},
			{"devices", "/sys/fs/cgroup/devices", "/"}, {"freezer", "/sys/fs/cgroup/freezer", "/"},
			{"blkio", "/sys/fs/cgroup/blkio", "/"}, {"pids", "/sys/fs/cgroup/pids", "/"},
			{"name=systemd", "/sys/fs/cgroup/systemd", "/"}, {"", "/sys/fs/cgroup/unified", "/"}}},
		// controllers sorted, options and release_agent= left out, a second mount of a
		// hierarchy ignored, a mount with no controller skipped
		{"v1", mountinfoV1, []Hierarchy{
			{"name=systemd", "/sys/fs/cgroup/systemd", "/"}, {"cpu,cpuacct", "/sys/fs/cgroup/cpu,cpuacct", "/"},
			{"net_cls,net_prio", "/sys/fs/cgroup/net_cls,net_prio", "/"}, {"cpuset", "/sys/fs/cgroup/cpuset", "/"},
			{"memory", "/sys/fs/cgroup/memory", "/"}, {"pids", "/sys/fs/cgroup/pids", "/"}, {"name=,none", "/sys/fs/cgroup/none", "/"}}},
		{"v2", mountinfoV2, []Hierarchy{{"", "/sys/fs/cgroup", "/"}}},
		{"namespaced", mountinfoNamespaced, []Hierarchy{
			{"cpu", "/sys/fs/cgroup/cpu", "/"}, {"name=systemd", "/sys/fs/cgroup/systemd", "/.."},
			{"", "/sys/fs/cgroup/unified", "/pods/c1"}}},
		{"no cgroups", "22 28 0:20 / /sys rw - sysfs sysfs rw\ngarbage\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseMountinfo(strings.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d hierarchies %+v, want %+v", len(got), got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("hierarchy %d: %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestParseMountinfoUnescapes(t *testing.T) {
	hs, err := ParseMountinfo(strings.NewReader(`90 33 0:30 /a\134b /mnt/pids\040copy rw - cgroup cgroup rw,pids` + "\n"))
	if err != nil || len(hs) != 1 || hs[0].Mount != "/mnt/pids copy" || hs[0].Root != `/a\b` {
		t.Fatalf("ParseMountinfo = %+v, %v", hs, err)
	}
}

const procCgroupHybrid = `9:name=systemd:/user.slice/session-1.scope
8:pids:/user.slice
7:blkio:/
4:memory:/process_api/3fc5
1:cpu,cpuacct:/
0::/user.slice/session-1.scope
`

func TestParseProcCgroup(t *testing.T) {
	got, err := ParseProcCgroup(strings.NewReader(procCgroupHybrid))
	want := map[string]string{"name=systemd": "/user.slice/session-1.scope", "pids": "/user.slice", "blkio": "/",
		"memory": "/process_api/3fc5", "cpu,cpuacct": "/", "": "/user.slice/session-1.scope"}
	if err != nil || !maps.Equal(got, want) {
		t.Fatalf("ParseProcCgroup = %v, %v; want %v", got, err, want)
	}
	// the controllers of a line are sorted, as in Hierarchy.Key
	got, _ = ParseProcCgroup(strings.NewReader("3:cpuacct,cpu:/x\n"))
	if got["cpu,cpuacct"] != "/x" {
		t.Fatalf("ParseProcCgroup = %v", got)
	}
}

func mustHierarchies(t *testing.T, mountinfo string) []Hierarchy {
	t.Helper()
	hs, err := ParseMountinfo(strings.NewReader(mountinfo))
	if err != nil {
		t.Fatal(err)
	}
	return hs
}

// TestResolve: each cgroupsPath form on each layout.
func TestResolve(t *testing.T) {
	hybridOwn := map[string]string{"cpu": "/", "cpuacct": "/", "cpuset": "/", "memory": "/process_api/3fc5",
		"devices": "/", "freezer": "/", "blkio": "/", "pids": "/", "name=systemd": "/user.slice", "": "/"}
	hybrid := func(sub map[string]string) Paths {
		p := Paths{}
		for _, k := range []string{"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids"} {
			p[k] = "/sys/fs/cgroup/" + k + sub[k]
		}
		p["name=systemd"] = "/sys/fs/cgroup/systemd" + sub["name=systemd"]
		p[Unified] = "/sys/fs/cgroup/unified" + sub[Unified]
		return p
	}
	same := func(s string) map[string]string {
		m := map[string]string{}
		for _, k := range []string{"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "name=systemd", Unified} {
			m[k] = s
		}
		return m
	}
	relative := same("/c1")
	relative["memory"] = "/process_api/3fc5/c1"
	relative["name=systemd"] = "/user.slice/c1"
	for _, tc := range []struct {
		name, mountinfo string
		own             map[string]string
		cgroupsPath     string
		systemd         bool
		want            Paths
	}{
		{"hybrid, empty: the id under the runtime's own cgroups", mountinfoHybrid, hybridOwn, "", false, hybrid(relative)},
		{"hybrid, absolute", mountinfoHybrid, hybridOwn, "/wharf/c1", false, hybrid(same("/wharf/c1"))},
		{"hybrid, systemd", mountinfoHybrid, hybridOwn, "machine.slice:libpod:c1", true, hybrid(same("/machine.slice/libpod-c1.scope"))},
		{"v1, relative", mountinfoV1, map[string]string{"cpu,cpuacct": "/a", "pids": "/b"}, "pods/c1", false, Paths{
			"name=systemd": "/sys/fs/cgroup/systemd/pods/c1", "cpu,cpuacct": "/sys/fs/cgroup/cpu,cpuacct/a/pods/c1",
			"net_cls,net_prio": "/sys/fs/cgroup/net_cls,net_prio/pods/c1", "cpuset": "/sys/fs/cgroup/cpuset/pods/c1",
			"memory": "/sys/fs/cgroup/memory/pods/c1", "pids": "/sys/fs/cgroup/pids/b/pods/c1", "name=,none": "/sys/fs/cgroup/none/pods/c1"}},
		{"v2, relative", mountinfoV2, map[string]string{"": "/user.slice/user-0.slice/session-3.scope"}, "", false,
			Paths{Unified: "/sys/fs/cgroup/user.slice/user-0.slice/session-3.scope/c1"}},
		{"v2, systemd default", mountinfoV2, nil, "", true, Paths{Unified: "/sys/fs/cgroup/system.slice/wharf-c1.scope"}},
		{"v2, absolute", mountinfoV2, nil, "/x/y", false, Paths{Unified: "/sys/fs/cgroup/x/y"}},
		// inside a cgroup namespace: a path under the mount's root is shown relative to it, one
		// outside it is taken as it is, under the mount
		{"namespaced, absolute", mountinfoNamespaced, nil, "/pods/c1/sub", false, Paths{
			"cpu": "/sys/fs/cgroup/cpu/pods/c1/sub", "name=systemd": "/sys/fs/cgroup/systemd/pods/c1/sub",
			Unified: "/sys/fs/cgroup/unified/sub"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Resolve(mustHierarchies(t, tc.mountinfo), tc.own, tc.cgroupsPath, "c1", tc.systemd)
			if err != nil || !maps.Equal(got, tc.want) {
				t.Fatalf("Resolve = %v, %v\nwant %v", got, err, tc.want)
			}
		})
	}
	if _, err := Resolve(mustHierarchies(t, mountinfoV2), nil, "/", "c1", false); !errors.Is(err, errdef.ErrInvalidArgument) {
		t.Fatalf("Resolve of the root cgroup: %v", err)
	}
}

// TestHostPaths: on this host, the paths are under its cgroup mounts and end with the id.
func TestHostPaths(t *testing.T) {
	p, err := HostPaths("/wharf-test/c1", "c1", false)
	if err != nil {
		t.Fatal(err)
	}
	for k, dir := range p {
		if !strings.HasSuffix(dir, "/wharf-test/c1") {
			t.Errorf("%s: %s", k, dir)
		}
	}
	if _, err := HostPaths("", "c1", true); err != nil {
		t.Fatal(err)
	}
	if _, err := HostPaths("a:b", "c1", false); !errors.Is(err, errdef.ErrInvalidArgument) {
		t.Fatalf("HostPaths of a bad systemd path: %v", err)
	}
}
