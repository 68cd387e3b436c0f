package cgroups

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/errdef"
)

func TestController(t *testing.T) {
	p := v1Paths("/cg")
	for _, tc := range []struct {
		name, ctrl, want string
		ok               bool
	}{
		{"a hierarchy of its own", "memory", "/cg/memory/c1", true},
		{"joined with another", "cpuacct", "/cg/cpu,cpuacct/c1", true},
		{"the joined key itself", "cpu,cpuacct", "/cg/cpu,cpuacct/c1", true},
		{"named hierarchy is not a controller", "systemd", "", false},
		{"absent", "rdma", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if dir, ok := p.Controller(tc.ctrl); dir != tc.want || ok != tc.ok {
				t.Fatalf("Controller(%q) = %q, %v; want %q, %v", tc.ctrl, dir, ok, tc.want, tc.ok)
			}
		})
	}
	if _, ok := v2Paths("/cg").Controller("memory"); ok {
		t.Fatal("a cgroup2 controller is not a v1 hierarchy")
	}
	if dir, ok := v2Paths("/cg").UnifiedOnly(); !ok || dir != "/cg/c1" {
		t.Fatalf("UnifiedOnly on v2 = %q, %v", dir, ok)
	}
	if _, ok := hybridPaths("/cg").UnifiedOnly(); ok {
		t.Fatal("UnifiedOnly on a hybrid host")
	}
}

// TestCreate: every directory is made; a v1 cpuset cgroup gets cpus and mems from the nearest
// ancestor that has them, filling the empty ones between.
func TestCreate(t *testing.T) {
	root := tree(t, map[string]string{
		"cpuset/cpuset.cpus": "0-1\n", "cpuset/cpuset.mems": "0\n",
		// what the kernel puts in a new cpuset cgroup, and one a level up: empty files
		"cpuset/pods/cpuset.cpus": "", "cpuset/pods/cpuset.mems": "",
		"cpuset/pods/c1/cpuset.cpus": "", "cpuset/pods/c1/cpuset.mems": "",
		"memory/memory.limit_in_bytes": "",
	})
	p := Paths{"cpuset": root + "/cpuset/pods/c1", "memory": root + "/memory/pods/c1", Unified: root + "/unified/pods/c1"}
	if err := p.Create(); err != nil {
		t.Fatal(err)
	}
	for _, dir := range p {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			t.Errorf("%s: %v", dir, err)
		}
	}
	for _, f := range []string{"cpuset/pods/c1/cpuset.cpus", "cpuset/pods/cpuset.cpus"} {
		if got := read(t, root, f); got != "0-1" {
			t.Errorf("%s = %q, want 0-1", f, got)
		}
	}
	if got := read(t, root, "cpuset/pods/c1/cpuset.mems"); got != "0" {
		t.Errorf("cpuset.mems = %q", got)
	}
	// again: nothing to do
	if err := p.Create(); err != nil {
		t.Fatal(err)
	}
	// a cpuset cgroup without the kernel's files is an error
	bad := Paths{"cpuset": t.TempDir() + "/c2"}
	if err := bad.Create(); err == nil {
		t.Fatal("Create of a cpuset without cpuset.cpus: no error")
	}
}

func TestJoin(t *testing.T) {
	root := tree(t, map[string]string{"pids/c1/cgroup.procs": "", "unified/c1/cgroup.procs": ""})
	p := Paths{"pids": root + "/pids/c1", Unified: root + "/unified/c1"}
	if err := p.Join(4242); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"pids/c1/cgroup.procs", "unified/c1/cgroup.procs"} {
		if got := read(t, root, f); got != "4242" {
			t.Errorf("%s = %q", f, got)
		}
	}
	p["memory"] = root + "/memory/c1" // not created: the kernel would refuse too
	if err := p.Join(1); err == nil {
		t.Fatal("Join into a missing cgroup: no error")
	}
}

func TestRemove(t *testing.T) {
	root := t.TempDir()
	p := Paths{"pids": root + "/pids/c1", "memory": root + "/memory/c1", Unified: root + "/gone/c1"}
	for _, dir := range []string{p["pids"], p["memory"]} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Remove(); err != nil {
		t.Fatal(err)
	}
	for _, dir := range p {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: %v", dir, err)
		}
	}
	if _, err := os.Stat(root + "/pids"); err != nil {
		t.Errorf("the parent was removed: %v", err)
	}
	// a directory that is not empty (a cgroup with a child) is an error, not a wait
	if err := os.MkdirAll(p["pids"]+"/child", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := p.Remove(); err == nil {
		t.Fatal("Remove of a cgroup with a child: no error")
	}
}

func TestPids(t *testing.T) {
	root := tree(t, map[string]string{
		"pids/c1/cgroup.procs":    "12\n34\n",
		"memory/c1/cgroup.procs":  "99\n",
		"unified/c1/cgroup.procs": "7\n8\n9\n",
	})
	for _, tc := range []struct {
		name string
		p    Paths
		want []int
	}{
		{"pids first", Paths{"pids": root + "/pids/c1", "memory": root + "/memory/c1", Unified: root + "/unified/c1"}, []int{12, 34}},
		{"then the other v1 hierarchies", Paths{"memory": root + "/memory/c1", Unified: root + "/unified/c1"}, []int{99}},
		{"unified", Paths{Unified: root + "/unified/c1"}, []int{7, 8, 9}},
		{"any other", Paths{"net_cls": root + "/pids/c1"}, []int{12, 34}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.p.Pids()
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("Pids = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	if _, err := (Paths{}).Pids(); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("Pids without cgroups: %v", err)
	}
}

// TestSignalAndKill: the processes listed in cgroup.procs are signalled (children of the test,
// so no privilege is needed), SIGKILL with the v1 freezer frozen then thawed.
func TestSignalAndKill(t *testing.T) {
	start := func() *exec.Cmd {
		cmd := exec.Command("sleep", "60")
		if err := cmd.Start(); err != nil {
			t.Skipf("start sleep: %v", err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}
	a, b := start(), start()
	procs := strconv.Itoa(a.Process.Pid) + "\n" + strconv.Itoa(b.Process.Pid) + "\n"
	root := tree(t, map[string]string{"freezer/c1/cgroup.procs": procs, "freezer/c1/freezer.state": "THAWED\n"})
	p := Paths{"freezer": root + "/freezer/c1"}

	p.Signal(unix.SIGTERM)
	for _, c := range []*exec.Cmd{a, b} {
		err := c.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != unix.SIGTERM {
			t.Fatalf("pid %d: %v, want killed by SIGTERM", c.Process.Pid, err)
		}
	}

	c := start()
	if err := os.WriteFile(filepath.Join(p["freezer"], "cgroup.procs"), []byte(strconv.Itoa(c.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	// Kill stops when the cgroup is empty: empty it once the process is gone, as the kernel would
	exited := make(chan struct{})
	go func() {
		_ = c.Wait()
		_ = os.WriteFile(filepath.Join(p["freezer"], "cgroup.procs"), nil, 0o644)
		close(exited)
	}()
	p.Kill()
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Fatal("the process survived Kill")
	}
	if got := read(t, root, "freezer/c1/freezer.state"); got != "THAWED" {
		t.Fatalf("freezer.state after a SIGKILL = %q, want THAWED", got)
	}
}
