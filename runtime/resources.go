package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/wharfoci/wharf/errdef"
)

// applyResources writes the memory, pids and cpu limits of linux.resources (the cheap part of
// config-linux.md "Control groups"; the rest is the next issue). v1 files on v1 and hybrid
// hosts, v2 files when the controller lives in the unified hierarchy.
func applyResources(paths map[string]string, r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	var ws []cgWrite
	v1 := func(ctrl string) (string, bool) { return controllerDir(paths, ctrl) }
	v2, hasV2 := paths["unified"]
	if m := r.Memory; m != nil {
		if dir, ok := v1("memory"); ok {
			if m.Limit != nil {
				ws = append(ws, cgWrite{dir, "memory.limit_in_bytes", strconv.FormatInt(*m.Limit, 10)})
			}
			if m.Reservation != nil {
				ws = append(ws, cgWrite{dir, "memory.soft_limit_in_bytes", strconv.FormatInt(*m.Reservation, 10)})
			}
			if m.Swap != nil {
				ws = append(ws, cgWrite{dir, "memory.memsw.limit_in_bytes", strconv.FormatInt(*m.Swap, 10)})
			}
		} else if hasV2 {
			if m.Limit != nil {
				ws = append(ws, cgWrite{v2, "memory.max", v2Max(*m.Limit)})
			}
			if m.Reservation != nil {
				ws = append(ws, cgWrite{v2, "memory.low", strconv.FormatInt(*m.Reservation, 10)})
			}
		}
	}
	if p := r.Pids; p != nil && p.Limit != nil {
		val := v2Max(*p.Limit)
		if dir, ok := v1("pids"); ok {
			ws = append(ws, cgWrite{dir, "pids.max", val})
		} else if hasV2 {
			ws = append(ws, cgWrite{v2, "pids.max", val})
		}
	}
	if c := r.CPU; c != nil {
		if dir, ok := v1("cpu"); ok {
			if c.Shares != nil && *c.Shares != 0 {
				ws = append(ws, cgWrite{dir, "cpu.shares", strconv.FormatUint(*c.Shares, 10)})
			}
			if c.Period != nil && *c.Period != 0 {
				ws = append(ws, cgWrite{dir, "cpu.cfs_period_us", strconv.FormatUint(*c.Period, 10)})
			}
			if c.Quota != nil && *c.Quota != 0 {
				ws = append(ws, cgWrite{dir, "cpu.cfs_quota_us", strconv.FormatInt(*c.Quota, 10)})
			}
		} else if hasV2 && (c.Quota != nil || c.Period != nil) {
			period := uint64(100000)
			if c.Period != nil && *c.Period != 0 {
				period = *c.Period
			}
			quota := "max"
			if c.Quota != nil && *c.Quota > 0 {
				quota = strconv.FormatInt(*c.Quota, 10)
			}
			ws = append(ws, cgWrite{v2, "cpu.max", quota + " " + strconv.FormatUint(period, 10)})
		}
		if dir, ok := v1("cpuset"); ok {
			if c.Cpus != "" {
				ws = append(ws, cgWrite{dir, "cpuset.cpus", c.Cpus})
			}
			if c.Mems != "" {
				ws = append(ws, cgWrite{dir, "cpuset.mems", c.Mems})
			}
		}
	}
	var errs []error
	for _, w := range ws {
		if err := os.WriteFile(filepath.Join(w.dir, w.file), []byte(w.val), 0); err != nil {
			errs = append(errs, fmt.Errorf("set %s to %s in %s: %w", w.file, w.val, w.dir, err))
		}
	}
	return errors.Join(errs...)
}

type cgWrite struct{ dir, file, val string }

func v2Max(n int64) string {
	if n <= 0 {
		return "max"
	}
	return strconv.FormatInt(n, 10)
}

func containsCtrl(key, ctrl string) bool {
	for _, k := range splitComma(key) {
		if k == ctrl {
			return true
		}
	}
	return false
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}

// Update applies new resource limits to a created, running or paused container (the memory,
// pids and cpu subset applyResources knows) and records them in its config.
func (c *Container) Update(r *specs.LinuxResources) error {
	if st := c.Status(); st == StatusStopped {
		return fmt.Errorf("update container %s: it is stopped: %w", c.s.ID, errdef.ErrInvalidState)
	}
	if err := applyResources(c.s.Cgroups, r); err != nil {
		return fmt.Errorf("update container %s: %w", c.s.ID, err)
	}
	if c.s.Spec.Linux == nil {
		c.s.Spec.Linux = &specs.Linux{}
	}
	cur := c.s.Spec.Linux.Resources
	if cur == nil {
		cur = &specs.LinuxResources{}
		c.s.Spec.Linux.Resources = cur
	}
	if r.Memory != nil {
		cur.Memory = r.Memory
	}
	if r.Pids != nil {
		cur.Pids = r.Pids
	}
	if r.CPU != nil {
		cur.CPU = r.CPU
	}
	return c.save()
}
