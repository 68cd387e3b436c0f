package main

import (
	"github.com/spf13/cobra"
)

func newInitCmd(opts *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "init oci:DIR | oci-archive:FILE",
		Short: "Create an empty OCI image layout",
		Long: `Create an empty OCI image layout in DIR (created if missing): an oci-layout file,
an empty index.json and a blobs directory. A directory that already is a layout is left as it
is; a non-empty directory that is not one is refused. With oci-archive:FILE, an archive of an
empty layout is written (an existing archive is rewritten unchanged).`,
		Example: `  wharf init oci:./images
  wharf copy oci:./busybox:latest oci:./images:busybox`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := openWhole(cmd.Context(), args[0], true)
			if err != nil {
				return err
			}
			defer h.Close()
			if err := h.Save(cmd.Context()); err != nil {
				return err
			}
			if opts.JSON {
				return writeJSON(cmd.OutOrStdout(), map[string]string{"image": h.Ref.String()})
			}
			opts.infof(cmd, "initialized %s", h.Ref)
			return nil
		},
	}
}
