package cgroups

import (
	"errors"
	"os"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func i64p(n int64) *int64   { return &n }
func u64p(n uint64) *uint64 { return &n }
func resources() *specs.LinuxResources {
	return &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: i64p(64 << 20), Reservation: i64p(32 << 20), Swap: i64p(128 << 20)},
		Pids:   &specs.LinuxPids{Limit: i64p(100)},
		CPU:    &specs.LinuxCPU{Shares: u64p(512), Quota: i64p(50000), Period: u64p(200000), Cpus: "0", Mems: "0"},
	}
}

// TestApply: what linux.resources become, file by file, on each layout. The tree holds the
// files a kernel would have (empty); the ones not written stay empty.
func TestApply(t *testing.T) {
	v1Files := []string{"memory/c1/memory.limit_in_bytes", "memory/c1/memory.soft_limit_in_bytes",
		"memory/c1/memory.memsw.limit_in_bytes", "pids/c1/pids.max", "cpuset/c1/cpuset.cpus", "cpuset/c1/cpuset.mems"}
	v2Files := []string{"c1/memory.max", "c1/memory.low", "c1/memory.swap.max", "c1/pids.max", "c1/cpu.max", "c1/cpu.weight"}
	for _, tc := range []struct {
		name  string
		files []string
		paths func(root string) Paths
		r     *specs.LinuxResources
		want  map[string]string // file → content; every other file of files stays empty
	}{
		{"hybrid: v1 files", append(v1Files, "cpu/c1/cpu.shares", "cpu/c1/cpu.cfs_period_us", "cpu/c1/cpu.cfs_quota_us"), hybridPaths, resources(),
			map[string]string{"memory/c1/memory.limit_in_bytes": "67108864", "memory/c1/memory.soft_limit_in_bytes": "33554432",
				"memory/c1/memory.memsw.limit_in_bytes": "134217728", "pids/c1/pids.max": "100", "cpu/c1/cpu.shares": "512",
				"cpu/c1/cpu.cfs_period_us": "200000", "cpu/c1/cpu.cfs_quota_us": "50000", "cpuset/c1/cpuset.cpus": "0", "cpuset/c1/cpuset.mems": "0"}},
		{"v1: cpu joined with cpuacct", append(v1Files, "cpu,cpuacct/c1/cpu.shares", "cpu,cpuacct/c1/cpu.cfs_period_us", "cpu,cpuacct/c1/cpu.cfs_quota_us"), v1Paths,
			&specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64p(2), Quota: i64p(-1)}},
			map[string]string{"cpu,cpuacct/c1/cpu.shares": "2", "cpu,cpuacct/c1/cpu.cfs_quota_us": "-1"}},
		{"v1: zero values are left alone", append(v1Files, "cpu,cpuacct/c1/cpu.shares", "cpu,cpuacct/c1/cpu.cfs_period_us", "cpu,cpuacct/c1/cpu.cfs_quota_us"), v1Paths,
			&specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64p(0), Quota: i64p(0), Period: u64p(0)}}, map[string]string{}},
		{"v1: no limit is -1 for memory, max for pids", v1Files, v1Paths,
			&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64p(-1)}, Pids: &specs.LinuxPids{Limit: i64p(0)}},
			map[string]string{"memory/c1/memory.limit_in_bytes": "-1", "pids/c1/pids.max": "max"}},
		{"v2: cgroup2 files, no swap, no cpuset", v2Files, v2Paths, resources(),
			map[string]string{"c1/memory.max": "67108864", "c1/memory.low": "33554432", "c1/pids.max": "100", "c1/cpu.max": "50000 200000"}},
		{"v2: unlimited", v2Files, v2Paths,
			&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64p(-1)}, Pids: &specs.LinuxPids{Limit: i64p(-1)}, CPU: &specs.LinuxCPU{Quota: i64p(-1)}},
			map[string]string{"c1/memory.max": "max", "c1/pids.max": "max", "c1/cpu.max": "max 100000"}},
		{"v2: period alone", v2Files, v2Paths, &specs.LinuxResources{CPU: &specs.LinuxCPU{Period: u64p(50000)}},
			map[string]string{"c1/cpu.max": "max 50000"}},
		{"v2: shares alone are not written", v2Files, v2Paths, &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64p(1024)}}, map[string]string{}},
		{"nothing", v2Files, v2Paths, nil, map[string]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{}
			for _, f := range tc.files {
				files[f] = ""
			}
			root := tree(t, files)
			if err := tc.paths(root).Apply(tc.r); err != nil {
				t.Fatal(err)
			}
			for _, f := range tc.files {
				if got := read(t, root, f); got != tc.want[f] {
					t.Errorf("%s = %q, want %q", f, got, tc.want[f])
				}
			}
			for f := range tc.want {
				if _, ok := files[f]; !ok {
					t.Errorf("test bug: %s is not in the tree", f)
				}
			}
		})
	}
}

// TestApplyErrors: a file the kernel does not have (memsw without swap accounting) fails its
// write, names it, and the other writes still happen.
func TestApplyErrors(t *testing.T) {
	root := tree(t, map[string]string{"memory/c1/memory.limit_in_bytes": "", "pids/c1/pids.max": ""})
	p := Paths{"memory": root + "/memory/c1", "pids": root + "/pids/c1"}
	err := p.Apply(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64p(1 << 20), Swap: i64p(2 << 20)}, Pids: &specs.LinuxPids{Limit: i64p(5)}})
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "set memory.memsw.limit_in_bytes to 2097152 in "+root+"/memory/c1") {
		t.Fatalf("Apply = %v", err)
	}
	if read(t, root, "memory/c1/memory.limit_in_bytes") != "1048576" || read(t, root, "pids/c1/pids.max") != "5" {
		t.Fatal("the other writes did not happen")
	}
	if _, err := os.Stat(root + "/memory/c1/memory.memsw.limit_in_bytes"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a missing cgroup file was created: %v", err)
	}
}
