package cgroups

import (
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Stats is what `events` reports of a container's cgroups, in the JSON shape runc prints
// (field names and units as runc's events types), so that tools reading `runc events` can read
// wharf-runtime's. A figure the host does not keep is left out or zero.
type Stats struct {
	CPU     CPUStats                `json:"cpu"`
	Memory  MemoryStats             `json:"memory"`
	Pids    PidsStats               `json:"pids"`
	Blkio   BlkioStats              `json:"blkio"`
	Hugetlb map[string]HugetlbStats `json:"hugetlb"`
}

// CPUStats: times in nanoseconds.
type CPUStats struct {
	Usage      CPUUsage      `json:"usage"`
	Throttling CPUThrottling `json:"throttling"`
}

// CPUUsage is the time the container's processes ran: in all, per cpu (v1), in the kernel
// and in user space.
type CPUUsage struct {
	Total  uint64   `json:"total,omitempty"`
	Percpu []uint64 `json:"percpu,omitempty"`
	Kernel uint64   `json:"kernel"`
	User   uint64   `json:"user"`
}

// CPUThrottling is what the CFS quota held back.
type CPUThrottling struct {
	Periods          uint64 `json:"periods,omitempty"`
	ThrottledPeriods uint64 `json:"throttledPeriods,omitempty"`
	ThrottledTime    uint64 `json:"throttledTime,omitempty"`
}

// MemoryEntry: bytes; an unlimited limit is the largest uint64 (cgroup2 "max") or what v1 says.
type MemoryEntry struct {
	Limit   uint64 `json:"limit"`
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

// MemoryStats: the page cache, usage of memory, swap and kernel memory, and the memory.stat
// counters as they are (Raw).
type MemoryStats struct {
	Cache  uint64            `json:"cache,omitempty"`
	Usage  MemoryEntry       `json:"usage"`
	Swap   MemoryEntry       `json:"swap"`
	Kernel MemoryEntry       `json:"kernel"`
	Raw    map[string]uint64 `json:"raw,omitempty"`
}

// PidsStats: the number of processes and the limit.
type PidsStats struct {
	Current uint64 `json:"current,omitempty"`
	Limit   uint64 `json:"limit,omitempty"` // 0: no limit
}

// BlkioEntry is one device's count for one operation.
type BlkioEntry struct {
	Major uint64 `json:"major,omitempty"`
	Minor uint64 `json:"minor,omitempty"`
	Op    string `json:"op,omitempty"`
	Value uint64 `json:"value,omitempty"`
}

// BlkioStats: bytes and operations per device (v1 blkio.throttle files).
type BlkioStats struct {
	IoServiceBytesRecursive []BlkioEntry `json:"ioServiceBytesRecursive,omitempty"`
	IoServicedRecursive     []BlkioEntry `json:"ioServicedRecursive,omitempty"`
}

// HugetlbStats is one huge page size's usage in bytes.
type HugetlbStats struct {
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

// userHZ is the unit of cpuacct.stat (USER_HZ, 100 on every Linux architecture wharf builds for).
const userHZ = 100

// Stats reads the container's cgroup files: each controller's v1 files where the host mounts
// it in a v1 hierarchy, the cgroup2 files otherwise (hybrid hosts have both). A file that is
// missing or unreadable counts as zero.
func (p Paths) Stats() *Stats {
	return &Stats{
		CPU:     p.cpuStats(),
		Memory:  p.memoryStats(),
		Pids:    p.pidsStats(),
		Blkio:   p.blkioStats(),
		Hugetlb: p.hugetlbStats(),
	}
}

// cpuStats: usage from v1 cpuacct (usage, usage_percpu, stat in USER_HZ) or cgroup2 cpu.stat
// (µs); throttling from v1 cpu.stat or cgroup2 cpu.stat. cgroup2's cpu.stat is read once.
func (p Paths) cpuStats() CPUStats {
	var s CPUStats
	acct, v1Acct := p.Controller("cpuacct")
	cpu, v1CPU := p.Controller("cpu")
	v2, hasV2 := p[Unified]
	var v2Stat map[string]uint64
	if hasV2 && !(v1Acct && v1CPU) {
		v2Stat = readKeyValues(v2, "cpu.stat")
	}
	switch {
	case v1Acct:
		s.Usage.Total = readUint(acct, "cpuacct.usage")
		for _, f := range strings.Fields(readString(acct, "cpuacct.usage_percpu")) {
			n, _ := strconv.ParseUint(f, 10, 64)
			s.Usage.Percpu = append(s.Usage.Percpu, n)
		}
		kv := readKeyValues(acct, "cpuacct.stat")
		s.Usage.User = kv["user"] * (1e9 / userHZ)
		s.Usage.Kernel = kv["system"] * (1e9 / userHZ)
	case hasV2:
		s.Usage.Total, s.Usage.User, s.Usage.Kernel = v2Stat["usage_usec"]*1000, v2Stat["user_usec"]*1000, v2Stat["system_usec"]*1000
	}
	switch {
	case v1CPU:
		kv := readKeyValues(cpu, "cpu.stat")
		s.Throttling = CPUThrottling{kv["nr_periods"], kv["nr_throttled"], kv["throttled_time"]}
	case hasV2:
		s.Throttling = CPUThrottling{v2Stat["nr_periods"], v2Stat["nr_throttled"], v2Stat["throttled_usec"] * 1000}
	}
	return s
}

// memoryStats: v1 usage, memsw and kmem entries (cache from memory.stat's "cache"), or
// cgroup2's memory and swap (cache from memory.stat's "file"; failcnt is memory.events' max).
func (p Paths) memoryStats() MemoryStats {
	var s MemoryStats
	if dir, ok := p.Controller("memory"); ok {
		entry := func(prefix string) MemoryEntry {
			return MemoryEntry{Limit: readUint(dir, prefix+"limit_in_bytes"), Usage: readUint(dir, prefix+"usage_in_bytes"),
				Max: readUint(dir, prefix+"max_usage_in_bytes"), Failcnt: readUint(dir, prefix+"failcnt")}
		}
		s.Usage, s.Swap, s.Kernel = entry("memory."), entry("memory.memsw."), entry("memory.kmem.")
		s.Raw = readKeyValues(dir, "memory.stat")
		s.Cache = s.Raw["cache"]
	} else if v2, ok := p[Unified]; ok {
		s.Usage = MemoryEntry{Limit: readMax(v2, "memory.max"), Usage: readUint(v2, "memory.current"),
			Max: readUint(v2, "memory.peak"), Failcnt: readKeyValues(v2, "memory.events")["max"]}
		s.Swap = MemoryEntry{Limit: readMax(v2, "memory.swap.max"), Usage: readUint(v2, "memory.swap.current")}
		s.Raw = readKeyValues(v2, "memory.stat")
		s.Cache = s.Raw["file"]
	}
	return s
}

// pidsStats: pids.current and pids.max ("max" is 0), v1 or cgroup2.
func (p Paths) pidsStats() PidsStats {
	dir, ok := p.Controller("pids")
	if !ok {
		if dir, ok = p[Unified]; !ok {
			return PidsStats{}
		}
	}
	return PidsStats{Current: readUint(dir, "pids.current"), Limit: readUint(dir, "pids.max")}
}

// blkioStats: the v1 throttle counters (cgroup2's io.stat is not read).
func (p Paths) blkioStats() BlkioStats {
	dir, ok := p.Controller("blkio")
	if !ok {
		return BlkioStats{}
	}
	return BlkioStats{IoServiceBytesRecursive: readBlkio(dir, "blkio.throttle.io_service_bytes"),
		IoServicedRecursive: readBlkio(dir, "blkio.throttle.io_serviced")}
}

// readBlkio reads v1 "MAJOR:MINOR Op value" lines, sorted by device (the "Total" line is left
// out, as runc does).
func readBlkio(dir, file string) []BlkioEntry {
	var out []BlkioEntry
	for _, line := range strings.Split(readString(dir, file), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		maj, min, ok := strings.Cut(f[0], ":")
		if !ok {
			continue
		}
		e := BlkioEntry{Op: f[1]}
		e.Major, _ = strconv.ParseUint(maj, 10, 64)
		e.Minor, _ = strconv.ParseUint(min, 10, 64)
		e.Value, _ = strconv.ParseUint(f[2], 10, 64)
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Major != out[j].Major {
			return out[i].Major < out[j].Major
		}
		return out[i].Minor < out[j].Minor
	})
	return out
}

// hugetlbStats: per page size ("2MB"), v1 hugetlb.SIZE.usage_in_bytes, max_usage_in_bytes
// and failcnt, or cgroup2 hugetlb.SIZE.current and events' max. Never nil.
func (p Paths) hugetlbStats() map[string]HugetlbStats {
	out := map[string]HugetlbStats{}
	dir, v1 := p.Controller("hugetlb")
	pattern := "hugetlb.*.limit_in_bytes"
	if !v1 {
		var ok bool
		if dir, ok = p[Unified]; !ok {
			return out
		}
		pattern = "hugetlb.*.max"
	}
	names, _ := filepath.Glob(filepath.Join(dir, pattern))
	for _, n := range names {
		size := strings.Split(strings.TrimPrefix(filepath.Base(n), "hugetlb."), ".")[0]
		pre := "hugetlb." + size + "."
		if v1 {
			out[size] = HugetlbStats{Usage: readUint(dir, pre+"usage_in_bytes"),
				Max: readUint(dir, pre+"max_usage_in_bytes"), Failcnt: readUint(dir, pre+"failcnt")}
		} else {
			out[size] = HugetlbStats{Usage: readUint(dir, pre+"current"), Failcnt: readKeyValues(dir, pre+"events")["max"]}
		}
	}
	return out
}

// OOMKills is how many processes of the container the kernel's OOM killer has killed, as the
// memory controller counts them (v1 memory.oom_control "oom_kill", cgroup2 memory.events).
func (p Paths) OOMKills() uint64 {
	if dir, ok := p.Controller("memory"); ok {
		return readKeyValues(dir, "memory.oom_control")["oom_kill"]
	}
	if v2, ok := p[Unified]; ok {
		return readKeyValues(v2, "memory.events")["oom_kill"]
	}
	return 0
}
