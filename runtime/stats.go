package runtime

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/wharfoci/wharf/errdef"
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

type CPUUsage struct {
	Total  uint64   `json:"total,omitempty"`
	Percpu []uint64 `json:"percpu,omitempty"`
	Kernel uint64   `json:"kernel"`
	User   uint64   `json:"user"`
}

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

type MemoryStats struct {
	Cache  uint64            `json:"cache,omitempty"`
	Usage  MemoryEntry       `json:"usage"`
	Swap   MemoryEntry       `json:"swap"`
	Kernel MemoryEntry       `json:"kernel"`
	Raw    map[string]uint64 `json:"raw,omitempty"`
}

type PidsStats struct {
	Current uint64 `json:"current,omitempty"`
	Limit   uint64 `json:"limit,omitempty"` // 0: no limit
}

type BlkioEntry struct {
	Major uint64 `json:"major,omitempty"`
	Minor uint64 `json:"minor,omitempty"`
	Op    string `json:"op,omitempty"`
	Value uint64 `json:"value,omitempty"`
}

type BlkioStats struct {
	IoServiceBytesRecursive []BlkioEntry `json:"ioServiceBytesRecursive,omitempty"`
	IoServicedRecursive     []BlkioEntry `json:"ioServicedRecursive,omitempty"`
}

type HugetlbStats struct {
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

// userHZ is the unit of cpuacct.stat (USER_HZ, 100 on every Linux architecture wharf builds for).
const userHZ = 100

// Stats reads the container's cgroups: v1 controllers where the host mounts them, the unified
// hierarchy otherwise (hybrid hosts have both).
func (c *Container) Stats() *Stats {
	paths := c.s.Cgroups
	s := &Stats{Hugetlb: map[string]HugetlbStats{}}
	v2, hasV2 := paths["unified"]
	_, v1Acct := controllerDir(paths, "cpuacct")
	_, v1CPU := controllerDir(paths, "cpu")
	var v2CPU map[string]uint64 // cgroup2 cpu.stat, read once when usage or throttling needs it
	if hasV2 && !(v1Acct && v1CPU) {
		v2CPU = readKeyValues(v2, "cpu.stat")
	}

	if dir, ok := controllerDir(paths, "cpuacct"); ok {
		s.CPU.Usage.Total = readUint(dir, "cpuacct.usage")
		for _, f := range strings.Fields(readString(dir, "cpuacct.usage_percpu")) {
			n, _ := strconv.ParseUint(f, 10, 64)
			s.CPU.Usage.Percpu = append(s.CPU.Usage.Percpu, n)
		}
		kv := readKeyValues(dir, "cpuacct.stat")
		s.CPU.Usage.User = kv["user"] * (1e9 / userHZ)
		s.CPU.Usage.Kernel = kv["system"] * (1e9 / userHZ)
	} else if hasV2 {
		kv := v2CPU
		s.CPU.Usage.Total, s.CPU.Usage.User, s.CPU.Usage.Kernel = kv["usage_usec"]*1000, kv["user_usec"]*1000, kv["system_usec"]*1000
	}
	if dir, ok := controllerDir(paths, "cpu"); ok {
		kv := readKeyValues(dir, "cpu.stat")
		s.CPU.Throttling = CPUThrottling{kv["nr_periods"], kv["nr_throttled"], kv["throttled_time"]}
	} else if hasV2 {
		kv := v2CPU
		s.CPU.Throttling = CPUThrottling{kv["nr_periods"], kv["nr_throttled"], kv["throttled_usec"] * 1000}
	}

	if dir, ok := controllerDir(paths, "memory"); ok {
		entry := func(prefix string) MemoryEntry {
			return MemoryEntry{Limit: readUint(dir, prefix+"limit_in_bytes"), Usage: readUint(dir, prefix+"usage_in_bytes"),
				Max: readUint(dir, prefix+"max_usage_in_bytes"), Failcnt: readUint(dir, prefix+"failcnt")}
		}
		s.Memory.Usage, s.Memory.Swap, s.Memory.Kernel = entry("memory."), entry("memory.memsw."), entry("memory.kmem.")
		s.Memory.Raw = readKeyValues(dir, "memory.stat")
		s.Memory.Cache = s.Memory.Raw["cache"]
	} else if hasV2 {
		s.Memory.Usage = MemoryEntry{Limit: readMax(v2, "memory.max"), Usage: readUint(v2, "memory.current"),
			Max: readUint(v2, "memory.peak"), Failcnt: readKeyValues(v2, "memory.events")["max"]}
		s.Memory.Swap = MemoryEntry{Limit: readMax(v2, "memory.swap.max"), Usage: readUint(v2, "memory.swap.current")}
		s.Memory.Raw = readKeyValues(v2, "memory.stat")
		s.Memory.Cache = s.Memory.Raw["file"]
	}

	if dir, ok := controllerDir(paths, "pids"); ok {
		s.Pids = PidsStats{Current: readUint(dir, "pids.current"), Limit: readUint(dir, "pids.max")} // "max": 0
	} else if hasV2 {
		s.Pids = PidsStats{Current: readUint(v2, "pids.current"), Limit: readUint(v2, "pids.max")}
	}

	if dir, ok := controllerDir(paths, "blkio"); ok {
		s.Blkio.IoServiceBytesRecursive = readBlkio(dir, "blkio.throttle.io_service_bytes")
		s.Blkio.IoServicedRecursive = readBlkio(dir, "blkio.throttle.io_serviced")
	}

	// hugetlb: v1 files hugetlb.2MB.usage_in_bytes…, cgroup2 hugetlb.2MB.current…
	hugeDir, v1Huge := controllerDir(paths, "hugetlb")
	if !v1Huge && hasV2 {
		hugeDir = v2
	}
	if hugeDir != "" {
		names, _ := filepath.Glob(filepath.Join(hugeDir, "hugetlb.*.max"))
		if v1Huge {
			names, _ = filepath.Glob(filepath.Join(hugeDir, "hugetlb.*.limit_in_bytes"))
		}
		for _, n := range names {
			size := strings.Split(strings.TrimPrefix(filepath.Base(n), "hugetlb."), ".")[0]
			p := "hugetlb." + size + "."
			if v1Huge {
				s.Hugetlb[size] = HugetlbStats{Usage: readUint(hugeDir, p+"usage_in_bytes"),
					Max: readUint(hugeDir, p+"max_usage_in_bytes"), Failcnt: readUint(hugeDir, p+"failcnt")}
			} else {
				s.Hugetlb[size] = HugetlbStats{Usage: readUint(hugeDir, p+"current"),
					Failcnt: readKeyValues(hugeDir, p+"events")["max"]}
			}
		}
	}
	return s
}

// OOMKills is how many processes of the container the kernel's OOM killer has killed, as the
// memory controller counts them (v1 memory.oom_control "oom_kill", cgroup2 memory.events).
func (c *Container) OOMKills() uint64 {
	if dir, ok := controllerDir(c.s.Cgroups, "memory"); ok {
		return readKeyValues(dir, "memory.oom_control")["oom_kill"]
	}
	if v2, ok := c.s.Cgroups["unified"]; ok {
		return readKeyValues(v2, "memory.events")["oom_kill"]
	}
	return 0
}

// controllerDir is the container's cgroup directory of a v1 controller ("cpu" in "cpu,cpuacct").
func controllerDir(paths map[string]string, ctrl string) (string, bool) {
	for key, dir := range paths {
		if key == ctrl || key != "unified" && containsCtrl(key, ctrl) {
			return dir, true
		}
	}
	return "", false
}

func readString(dir, file string) string {
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return ""
	}
	return string(bytes.TrimSpace(b))
}

// readUint reads a file holding one number; missing or unreadable is 0.
func readUint(dir, file string) uint64 {
	n, _ := strconv.ParseUint(readString(dir, file), 10, 64)
	return n
}

// readMax reads a cgroup2 limit: "max" is the largest uint64.
func readMax(dir, file string) uint64 {
	if readString(dir, file) == "max" {
		return math.MaxUint64
	}
	return readUint(dir, file)
}

// readKeyValues reads "key value" lines (memory.stat, cpu.stat, memory.events…).
func readKeyValues(dir, file string) map[string]uint64 {
	f, err := os.Open(filepath.Join(dir, file))
	if err != nil {
		return nil
	}
	defer f.Close()
	kv := map[string]uint64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			kv[k] = n
		}
	}
	return kv
}

// readBlkio reads v1 "MAJOR:MINOR Op value" lines (the "Total" line is left out, as runc does).
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

// Event is one line of `events`: {"type":"stats","id":…,"data":Stats} or {"type":"oom","id":…}.
type Event struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data *Stats `json:"data,omitempty"`
}

// Events reports the container's stats every interval and an "oom" event when the kernel's
// OOM killer kills one of its processes (checked every second, or every interval if shorter),
// until the container stops (nil) or ctx ends. The container's lock is not held meanwhile.
func (c *Container) Events(ctx context.Context, interval time.Duration, emit func(Event) error) error {
	if interval <= 0 {
		return fmt.Errorf("events: interval %s: %w", interval, errdef.ErrInvalidArgument)
	}
	if st := c.Status(); st == StatusStopped {
		return fmt.Errorf("container %s is not running: %w", c.s.ID, errdef.ErrInvalidState)
	}
	c.Close()
	poll := min(interval, time.Second)
	t := time.NewTicker(poll)
	defer t.Stop()
	every := max(1, int((interval+poll/2)/poll)) // stats every this many polls
	ooms, polls := c.OOMKills(), 0
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			if n := c.OOMKills(); n > ooms {
				ooms = n
				if err := emit(Event{Type: "oom", ID: c.s.ID}); err != nil {
					return err
				}
			}
			if c.Status() == StatusStopped {
				return nil
			}
			if polls++; polls%every != 0 {
				continue
			}
			if err := emit(Event{Type: "stats", ID: c.s.ID, Data: c.Stats()}); err != nil {
				return err
			}
		}
	}
}
