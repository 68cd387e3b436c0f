package runtime

import (
	"context"
	"fmt"
	"time"

	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/internal/cgroups"
)

// Stats is what `events` reports of a container's cgroups, in the JSON shape runc prints
// (see cgroups.Stats).
type Stats = cgroups.Stats

// Stats reads the container's cgroups: v1 controllers where the host mounts them, the unified
// hierarchy otherwise (hybrid hosts have both).
func (c *Container) Stats() *Stats { return c.s.Cgroups.Stats() }

// OOMKills is how many processes of the container the kernel's OOM killer has killed, as the
// memory controller counts them (v1 memory.oom_control "oom_kill", cgroup2 memory.events).
func (c *Container) OOMKills() uint64 { return c.s.Cgroups.OOMKills() }

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
