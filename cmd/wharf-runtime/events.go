package main

import (
	"context"
	"encoding/json"
	"os/signal"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/runtime"
)

func newEventsCmd(g *globalOptions) *cobra.Command {
	var stats bool
	var interval time.Duration
	cmd := containerCmd(g, "events [flags] ID",
		"print a container's resource usage (JSON lines, as runc): every --interval and on OOM kills, or once with --stats",
		func(c *runtime.Container) error {
			enc := json.NewEncoder(g.stdout)
			if stats {
				return enc.Encode(runtime.Event{Type: "stats", ID: c.ID(), Data: c.Stats()})
			}
			ctx, stop := signal.NotifyContext(context.Background(), unix.SIGINT, unix.SIGTERM)
			defer stop()
			err := c.Events(ctx, interval, func(e runtime.Event) error { return enc.Encode(e) })
			if ctx.Err() != nil {
				return nil // interrupted: the usual way to end it
			}
			return err
		})
	cmd.Flags().BoolVar(&stats, "stats", false, "print the container's stats once and exit")
	cmd.Flags().DurationVar(&interval, "interval", 5*time.Second, "how often to print stats")
	return cmd
}
