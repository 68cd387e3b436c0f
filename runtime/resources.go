package runtime

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/wharfoci/wharf/errdef"
)

// Update applies new resource limits to a created, running or paused container (the memory,
// pids and cpu subset cgroups.Paths.Apply knows) and records them in its config.
func (c *Container) Update(r *specs.LinuxResources) error {
	if st := c.Status(); st == StatusStopped {
		return fmt.Errorf("update container %s: it is stopped: %w", c.s.ID, errdef.ErrInvalidState)
	}
	if err := c.s.Cgroups.Apply(r); err != nil {
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
