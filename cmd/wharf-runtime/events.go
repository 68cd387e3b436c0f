package main

import (
	"encoding/json"
	"os"
	"os/signal"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/runtime"
)

func newEventsCmd(g *globalOptions) *cobra.Command {
	var stats bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "events [flags] ID",
		Short: "print a container's resource usage (JSON lines, as runc): every --interval and on OOM kills, or once with --stats",
		Args:  exactArgs(1, "a container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.runtime().Load(args[0])
			if err != nil {
				return err
			}
			defer c.Close()
			enc := json.NewEncoder(os.Stdout)
			if stats {
				s, err := c.Stats()
				if err != nil {
					return err
				}
				return enc.Encode(runtime.Event{Type: "stats", ID: c.ID(), Data: s})
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), unix.SIGINT, unix.SIGTERM)
			defer stop()
			err = c.Events(ctx, interval, func(e runtime.Event) error { return enc.Encode(e) })
			if ctx.Err() != nil {
				return nil // interrupted: the usual way to end it
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&stats, "stats", false, "print the container's stats once and exit")
	cmd.Flags().DurationVar(&interval, "interval", 5*time.Second, "how often to print stats")
	return cmd
}
