package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/wharfoci/wharf/image/layout"
)

func newGCCmd(opts *globalOptions) *cobra.Command {
	var gcOpts layout.GCOptions
	cmd := &cobra.Command{
		Use:   "gc oci:DIR | oci-archive:FILE",
		Short: "Remove the blobs of a layout that nothing references",
		Long: `Remove every blob that index.json does not reach (through its manifests, indexes,
configs, layers, subjects and referrers), and interrupted uploads older than --ingest-max-age.
The layout is locked meanwhile, so no tag changes under the collection, and gc refuses to run
while another process is writing blobs into it (a copy in progress, whose blobs are not tagged
yet).`,
		Example: `  wharf gc oci:./busybox
  wharf gc --dry-run --json oci:./busybox
  wharf gc --keep-newer-than 1h oci:./shared-layout   # spare what recent writers left untagged`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := openWhole(cmd.Context(), args[0], false)
			if err != nil {
				return err
			}
			defer h.Close()
			res, err := h.Layout.GC(cmd.Context(), gcOpts)
			if err != nil {
				return err
			}
			if !gcOpts.DryRun {
				if err := h.Save(cmd.Context()); err != nil {
					return err
				}
			}
			if opts.JSON {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			verb := gcVerb(gcOpts.DryRun)
			if gcOpts.DryRun {
				for _, b := range res.Removed {
					opts.infof(cmd, "%s %s (%d bytes)", verb, b.Digest, b.Size)
				}
			}
			opts.infof(cmd, "gc %s: %s %d blobs (%d bytes) and %d stale ingests; %d blobs referenced", h.Ref.Path, verb, len(res.Removed), res.RemovedBytes, res.Ingests, res.Kept)
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&gcOpts.DryRun, "dry-run", false, "report what would be removed, remove nothing")
	f.DurationVar(&gcOpts.KeepNewerThan, "keep-newer-than", 0, "keep unreferenced blobs modified less than this long ago (e.g. 1h)")
	f.DurationVar(&gcOpts.IngestMaxAge, "ingest-max-age", 24*time.Hour, "remove interrupted uploads not touched for this long (0 keeps them all)")
	return cmd
}

// gcVerb is what a collection does to what it finds: removes it, or for a dry run would.
func gcVerb(dryRun bool) string {
	if dryRun {
		return "would remove"
	}
	return "removed"
}
