package runtime

import (
	"fmt"

	"github.com/wharfoci/wharf/errdef"
)

// Pause freezes every process of the container.
func (c *Container) Pause() error {
	if st := c.Status(); st != StatusRunning {
		return fmt.Errorf("cannot pause container %s: invalid state transition from %s to paused: %w", c.s.ID, st, errdef.ErrInvalidState)
	}
	return c.setFrozen(true)
}

// Resume thaws a paused container.
func (c *Container) Resume() error {
	if st := c.Status(); st != StatusPaused {
		return fmt.Errorf("cannot resume container %s: invalid state transition from %s to running: %w", c.s.ID, st, errdef.ErrInvalidState)
	}
	return c.setFrozen(false)
}

func (c *Container) setFrozen(freeze bool) error {
	if err := c.s.Cgroups.SetFrozen(freeze); err != nil {
		verb := "thaw"
		if freeze {
			verb = "freeze"
		}
		return fmt.Errorf("%s container %s: %w", verb, c.s.ID, err)
	}
	return nil
}
