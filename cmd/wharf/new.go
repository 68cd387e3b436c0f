package main

import (
	"github.com/spf13/cobra"

	"github.com/wharfoci/wharf/image/bundle"
)

func newNewCmd(opts *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "new oci:DIR[:TAG]",
		Short: "Create an empty image (no layers) in a layout",
		Long: `Store an image with no layers and an empty config for this machine's platform (or
--platform) in the layout DIR, created if missing, and tag it TAG (default latest).
SOURCE_DATE_EPOCH sets its created time.`,
		Example: `  wharf new oci:./img:base && wharf unpack oci:./img:base b && cp -a app b/rootfs/ && wharf repack b oci:./img:app`,
		Args:    exactArgs(1),
	}
	platform := platformFlag(cmd, "the platform of the new image (default: this machine's)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		p, err := platform()
		if err != nil {
			return err
		}
		sde, err := sourceDateEpoch()
		if err != nil {
			return err
		}
		r, err := parseImage(args[0])
		if err != nil {
			return err
		}
		tag := r.Ref()
		if tag == "" {
			tag = "latest"
		}
		h, err := openRef(cmd.Context(), r, true)
		if err != nil {
			return err
		}
		defer h.Close()
		d, err := bundle.NewImage(cmd.Context(), h.Layout, tag, p, sde)
		if err != nil {
			return err
		}
		if err := h.Save(cmd.Context()); err != nil {
			return err
		}
		if opts.JSON {
			return writeJSON(cmd.OutOrStdout(), tagResult{Layout: r.Path, Tag: tag, Digest: d.Digest.String()})
		}
		opts.infof(cmd, "created %s:%s:%s → %s", r.Transport, r.Path, tag, d.Digest)
		return nil
	}
	return cmd
}
