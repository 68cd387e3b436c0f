package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newDeleteCmd(opts *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "delete docker://HOST[:PORT]/REPO[:TAG|@DIGEST]",
		Short: "Delete an image's manifest from a registry",
		Long: `Delete the manifest or index a registry reference names. A tag is resolved to its digest
first and the manifest is deleted by digest, as skopeo delete does: every tag naming it goes
with it. Blobs are left to the registry's garbage collection.`,
		Example: `  wharf delete docker://localhost:5000/busybox:old
  wharf delete docker://localhost:5000/busybox@sha256:0d14b19606332e6bd0eca92e3f90af8b4a6340ea753efafbf0fbf8ca3b3916c7`,
		Args: exactArgs(1),
	}
	rf := addRegistryFlags(cmd, false)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		r, err := parseRegistry(args[0])
		if err != nil {
			return err
		}
		h, err := openAny(cmd.Context(), r, false, rf)
		if err != nil {
			return err
		}
		defer h.Close()
		if err := h.Repo.DeleteManifest(cmd.Context(), r.Ref()); err != nil {
			return fmt.Errorf("delete %s: %w", r, err)
		}
		opts.infof(cmd, "deleted %s", r)
		return nil
	}
	return cmd
}
