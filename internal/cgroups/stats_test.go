package cgroups

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
)

// v1 samples, as a hybrid host shows them (cpu and cpuacct apart, hugetlb under cgroup2 here
// but also in v1 for the v1 sample).
var v1Files = map[string]string{
	"cpuacct/c1/cpuacct.usage":        "123456789\n",
	"cpuacct/c1/cpuacct.usage_percpu": "100000000 23456789 \n",
	"cpuacct/c1/cpuacct.stat":         "user 7\nsystem 3\n",
	"cpu/c1/cpu.stat":                 "nr_periods 10\nnr_throttled 2\nthrottled_time 5000000\n",
	"memory/c1/memory.limit_in_bytes": "67108864\n", "memory/c1/memory.usage_in_bytes": "1048576\n",
	"memory/c1/memory.max_usage_in_bytes": "2097152\n", "memory/c1/memory.failcnt": "4\n",
	"memory/c1/memory.memsw.limit_in_bytes": "9223372036854771712\n", "memory/c1/memory.memsw.usage_in_bytes": "1048576\n",
	"memory/c1/memory.kmem.usage_in_bytes": "65536\n", "memory/c1/memory.kmem.failcnt": "0\n",
	"memory/c1/memory.stat":        "cache 4096\nrss 8192\nmapped_file 0\nhierarchical_memory_limit 67108864\n",
	"memory/c1/memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
	"pids/c1/pids.current":         "3\n", "pids/c1/pids.max": "max\n",
	"blkio/c1/blkio.throttle.io_service_bytes": "8:16 Read 4096\n8:16 Write 0\n8:0 Read 1024\n8:0 Write 512\nTotal 5632\n",
	"blkio/c1/blkio.throttle.io_serviced":      "8:0 Read 1\n8:0 Write 2\nTotal 3\n",
	"hugetlb/c1/hugetlb.2MB.limit_in_bytes":    "9223372036854771712\n", "hugetlb/c1/hugetlb.2MB.usage_in_bytes": "2097152\n",
	"hugetlb/c1/hugetlb.2MB.max_usage_in_bytes": "4194304\n", "hugetlb/c1/hugetlb.2MB.failcnt": "1\n",
	"hugetlb/c1/hugetlb.1GB.limit_in_bytes": "0\n",
}

var v1Want = Stats{
	CPU: CPUStats{
		Usage:      CPUUsage{Total: 123456789, Percpu: []uint64{100000000, 23456789}, User: 70000000, Kernel: 30000000},
		Throttling: CPUThrottling{Periods: 10, ThrottledPeriods: 2, ThrottledTime: 5000000},
	},
	Memory: MemoryStats{
		Cache:  4096,
		Usage:  MemoryEntry{Limit: 67108864, Usage: 1048576, Max: 2097152, Failcnt: 4},
		Swap:   MemoryEntry{Limit: 9223372036854771712, Usage: 1048576},
		Kernel: MemoryEntry{Usage: 65536},
		Raw:    map[string]uint64{"cache": 4096, "rss": 8192, "mapped_file": 0, "hierarchical_memory_limit": 67108864},
	},
	Pids: PidsStats{Current: 3},
	Blkio: BlkioStats{
		IoServiceBytesRecursive: []BlkioEntry{{8, 0, "Read", 1024}, {8, 0, "Write", 512}, {8, 16, "Read", 4096}, {8, 16, "Write", 0}},
		IoServicedRecursive:     []BlkioEntry{{8, 0, "Read", 1}, {8, 0, "Write", 2}},
	},
	Hugetlb: map[string]HugetlbStats{"2MB": {Usage: 2097152, Max: 4194304, Failcnt: 1}, "1GB": {}},
}

// cgroup2 samples.
var v2Files = map[string]string{
	"c1/cpu.stat":   "usage_usec 5000\nuser_usec 3000\nsystem_usec 2000\nnr_periods 4\nnr_throttled 1\nthrottled_usec 700\n",
	"c1/memory.max": "max\n", "c1/memory.current": "8388608\n", "c1/memory.peak": "16777216\n",
	"c1/memory.events":   "low 0\nhigh 0\nmax 6\noom 1\noom_kill 1\noom_group_kill 0\n",
	"c1/memory.swap.max": "1048576\n", "c1/memory.swap.current": "4096\n",
	"c1/memory.stat":  "anon 4194304\nfile 2097152\nkernel 65536\n",
	"c1/pids.current": "2\n", "c1/pids.max": "50\n",
	"c1/hugetlb.2MB.max": "max\n", "c1/hugetlb.2MB.current": "2097152\n",
	"c1/hugetlb.2MB.events": "max 3\n",
	"c1/hugetlb.1GB.max":    "0\n",
	"c1/io.stat":            "8:0 rbytes=1 wbytes=2 rios=3 wios=4\n",
}

var v2Want = Stats{
	CPU: CPUStats{
		Usage:      CPUUsage{Total: 5000000, User: 3000000, Kernel: 2000000},
		Throttling: CPUThrottling{Periods: 4, ThrottledPeriods: 1, ThrottledTime: 700000},
	},
	Memory: MemoryStats{
		Cache: 2097152,
		Usage: MemoryEntry{Limit: math.MaxUint64, Usage: 8388608, Max: 16777216, Failcnt: 6},
		Swap:  MemoryEntry{Limit: 1048576, Usage: 4096},
		Raw:   map[string]uint64{"anon": 4194304, "file": 2097152, "kernel": 65536},
	},
	Pids:    PidsStats{Current: 2, Limit: 50},
	Hugetlb: map[string]HugetlbStats{"2MB": {Usage: 2097152, Failcnt: 3}, "1GB": {}},
}

func TestStats(t *testing.T) {
	// a hybrid host: the v1 controllers, and cgroup2 only for what v1 lacks (here: nothing
	// but hugetlb, which v1 also has in this sample)
	hybridFiles := map[string]string{}
	for k, v := range v1Files {
		hybridFiles[k] = v
	}
	hybridFiles["unified/c1/cpu.stat"] = "usage_usec 1\n"
	hybridFiles["unified/c1/memory.current"] = "1\n"

	// cpu and cpuacct joined in one hierarchy (a v1 host)
	v1Joined := map[string]string{}
	for k, v := range v1Files {
		if dir, file, _ := strings.Cut(k, "/c1/"); dir == "cpu" || dir == "cpuacct" {
			k = "cpu,cpuacct/c1/" + file
		}
		v1Joined[k] = v
	}

	// a hybrid host whose cpu controllers are in cgroup2
	cpuInV2 := v1Want
	cpuInV2.CPU = v2Want.CPU
	for _, tc := range []struct {
		name  string
		files map[string]string
		paths func(root string) Paths
		want  Stats
	}{
		{"hybrid", hybridFiles, hybridPaths, v1Want},
		{"v1, cpu and cpuacct joined", v1Joined, v1Paths, v1Want},
		{"v2", v2Files, v2Paths, v2Want},
		{"hybrid with cpu in cgroup2", withUnified(v1Files, v2Files), func(root string) Paths {
			p := hybridPaths(root)
			delete(p, "cpu")
			delete(p, "cpuacct")
			return p
		}, cpuInV2},
		{"no files", nil, hybridPaths, Stats{Hugetlb: map[string]HugetlbStats{}}},
		{"no cgroups", nil, func(string) Paths { return Paths{} }, Stats{Hugetlb: map[string]HugetlbStats{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.paths(tree(t, tc.files)).Stats()
			if !reflect.DeepEqual(*got, tc.want) {
				g, _ := json.MarshalIndent(got, "", " ")
				w, _ := json.MarshalIndent(tc.want, "", " ")
				t.Fatalf("Stats\n%s\nwant\n%s", g, w)
			}
		})
	}
}

// withUnified is v1's files plus v2's under unified/.
func withUnified(v1, v2 map[string]string) map[string]string {
	m := map[string]string{}
	for k, v := range v1 {
		m[k] = v
	}
	for k, v := range v2 {
		m["unified/"+k] = v
	}
	return m
}

// TestStatsJSON: the field names runc's events print, and an empty hugetlb is {}, not null.
func TestStatsJSON(t *testing.T) {
	b, err := json.Marshal(Paths{}.Stats())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"cpu":{"usage":{"kernel":0,"user":0},"throttling":{}},"memory":{"usage":{"limit":0,"failcnt":0},"swap":{"limit":0,"failcnt":0},"kernel":{"limit":0,"failcnt":0}},"pids":{},"blkio":{},"hugetlb":{}}`
	if string(b) != want {
		t.Fatalf("JSON\n%s\nwant\n%s", b, want)
	}
}

func TestOOMKills(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		paths func(root string) Paths
		want  uint64
	}{
		{"v1", v1Files, hybridPaths, 2},
		{"v2", v2Files, v2Paths, 1},
		{"hybrid reads v1", withUnified(v1Files, v2Files), hybridPaths, 2},
		{"none", nil, v2Paths, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.paths(tree(t, tc.files)).OOMKills(); got != tc.want {
				t.Fatalf("OOMKills = %d, want %d", got, tc.want)
			}
		})
	}
}
