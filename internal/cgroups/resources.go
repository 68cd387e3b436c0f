package cgroups

import (
	"errors"
	"fmt"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// A write is one value for one cgroup file.
type write struct{ dir, file, val string }

// Apply writes the memory, pids and cpu limits of r (config-linux.md "Memory", "CPU", "pids";
// the rest of linux.resources is not applied yet): the v1 files where the host mounts the
// controller in a v1 hierarchy (v1 and hybrid hosts), else the cgroup2 files. A nil r writes
// nothing. Every write is tried; the error joins each that failed.
func (p Paths) Apply(r *specs.LinuxResources) error {
	var errs []error
	for _, w := range p.resourceWrites(r) {
		if err := writeFile(w.dir, w.file, w.val); err != nil {
			errs = append(errs, fmt.Errorf("set %s to %s in %s: %w", w.file, w.val, w.dir, err))
		}
	}
	return errors.Join(errs...)
}

// resourceWrites is what Apply writes, in order.
func (p Paths) resourceWrites(r *specs.LinuxResources) []write {
	if r == nil {
		return nil
	}
	var ws []write
	ws = append(ws, p.memoryWrites(r.Memory)...)
	ws = append(ws, p.pidsWrites(r.Pids)...)
	ws = append(ws, p.cpuWrites(r.CPU)...)
	ws = append(ws, p.cpusetWrites(r.CPU)...)
	return ws
}

// memoryWrites: limit, reservation (soft limit; cgroup2 memory.low) and swap (v1's
// memory+swap limit; not written on cgroup2, whose memory.swap.max means swap alone).
func (p Paths) memoryWrites(m *specs.LinuxMemory) []write {
	if m == nil {
		return nil
	}
	var ws []write
	if dir, ok := p.Controller("memory"); ok {
		if m.Limit != nil {
			ws = append(ws, write{dir, "memory.limit_in_bytes", strconv.FormatInt(*m.Limit, 10)})
		}
		if m.Reservation != nil {
			ws = append(ws, write{dir, "memory.soft_limit_in_bytes", strconv.FormatInt(*m.Reservation, 10)})
		}
		if m.Swap != nil {
			ws = append(ws, write{dir, "memory.memsw.limit_in_bytes", strconv.FormatInt(*m.Swap, 10)})
		}
	} else if v2, ok := p[Unified]; ok {
		if m.Limit != nil {
			ws = append(ws, write{v2, "memory.max", v2Max(*m.Limit)})
		}
		if m.Reservation != nil {
			ws = append(ws, write{v2, "memory.low", strconv.FormatInt(*m.Reservation, 10)})
		}
	}
	return ws
}

// pidsWrites: pids.max, the same file on v1 and cgroup2 (0 or less: "max").
func (p Paths) pidsWrites(l *specs.LinuxPids) []write {
	if l == nil || l.Limit == nil {
		return nil
	}
	val := v2Max(*l.Limit)
	if dir, ok := p.Controller("pids"); ok {
		return []write{{dir, "pids.max", val}}
	}
	if v2, ok := p[Unified]; ok {
		return []write{{v2, "pids.max", val}}
	}
	return nil
}

// cpuWrites: v1 shares, CFS period and quota (zero values are left alone), or cgroup2's
// cpu.max "QUOTA PERIOD" (quota "max" unless positive, period 100000 unless given).
func (p Paths) cpuWrites(c *specs.LinuxCPU) []write {
	if c == nil {
		return nil
	}
	if dir, ok := p.Controller("cpu"); ok {
		var ws []write
		if c.Shares != nil && *c.Shares != 0 {
			ws = append(ws, write{dir, "cpu.shares", strconv.FormatUint(*c.Shares, 10)})
		}
		if c.Period != nil && *c.Period != 0 {
			ws = append(ws, write{dir, "cpu.cfs_period_us", strconv.FormatUint(*c.Period, 10)})
		}
		if c.Quota != nil && *c.Quota != 0 {
			ws = append(ws, write{dir, "cpu.cfs_quota_us", strconv.FormatInt(*c.Quota, 10)})
		}
		return ws
	}
	v2, ok := p[Unified]
	if !ok || c.Quota == nil && c.Period == nil {
		return nil
	}
	period := uint64(100000)
	if c.Period != nil && *c.Period != 0 {
		period = *c.Period
	}
	quota := "max"
	if c.Quota != nil && *c.Quota > 0 {
		quota = strconv.FormatInt(*c.Quota, 10)
	}
	return []write{{v2, "cpu.max", quota + " " + strconv.FormatUint(period, 10)}}
}

// cpusetWrites: cpus and mems, on a v1 cpuset hierarchy only.
func (p Paths) cpusetWrites(c *specs.LinuxCPU) []write {
	dir, ok := p.Controller("cpuset")
	if c == nil || !ok {
		return nil
	}
	var ws []write
	if c.Cpus != "" {
		ws = append(ws, write{dir, "cpuset.cpus", c.Cpus})
	}
	if c.Mems != "" {
		ws = append(ws, write{dir, "cpuset.mems", c.Mems})
	}
	return ws
}

// v2Max is a cgroup2 limit: the number, or "max" for 0 or less.
func v2Max(n int64) string {
	if n <= 0 {
		return "max"
	}
	return strconv.FormatInt(n, 10)
}
