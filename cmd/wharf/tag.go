package main

import (
	"github.com/spf13/cobra"

	"github.com/wharfoci/wharf/imageref"
)

// tagResult is what `wharf tag --json` and `wharf untag --json` print.
type tagResult struct {
	Layout string `json:"layout"`
	Tag    string `json:"tag"`
	Digest string `json:"digest,omitempty"`
}

func newTagCmd(opts *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "tag IMAGE NEWTAG",
		Short: "Name an image of a layout with another tag",
		Long: `Add NEWTAG to the index.json of IMAGE's layout, pointing at the manifest or index IMAGE
names. A tag that already exists moves. NEWTAG follows the ref-name grammar of image-spec:
components of letters and digits joined by one of - . _ : @ + or --, separated by /.`,
		Example: `  wharf tag oci:./busybox:latest v1
  wharf tag oci:./busybox@sha256:2b1f… stable`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := imageref.ValidateTag(args[1]); err != nil {
				return asUsage(err)
			}
			h, d, err := openImage(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			defer h.Close()
			r := h.Ref
			if err := h.Layout.Tag(cmd.Context(), d, args[1]); err != nil {
				return err
			}
			if err := h.Save(cmd.Context()); err != nil {
				return err
			}
			if opts.JSON {
				return writeJSON(cmd.OutOrStdout(), tagResult{Layout: r.Path, Tag: args[1], Digest: d.Digest.String()})
			}
			opts.infof(cmd, "tagged %s:%s:%s → %s", r.Transport, r.Path, args[1], d.Digest)
			return nil
		},
	}
}

func newUntagCmd(opts *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "untag oci:DIR:TAG",
		Short: "Remove a tag from a layout",
		Long: `Remove the index.json entries named TAG (or, with @DIGEST, the untagged entry of that
digest). The blobs stay until "wharf gc" removes what nothing references any more.`,
		Example: `  wharf untag oci:./busybox:v1
  wharf untag oci:./busybox:v1 && wharf gc oci:./busybox`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := parseImage(args[0])
			if err != nil {
				return err
			}
			if r.Ref() == "" {
				return usageErrorf("%s: name the tag to remove, oci:%s:TAG", args[0], r.Path)
			}
			h, err := openRef(cmd.Context(), r, false)
			if err != nil {
				return err
			}
			defer h.Close()
			if err := h.Layout.Untag(cmd.Context(), r.Ref()); err != nil {
				return err
			}
			if err := h.Save(cmd.Context()); err != nil {
				return err
			}
			if opts.JSON {
				return writeJSON(cmd.OutOrStdout(), tagResult{Layout: r.Path, Tag: r.Ref()})
			}
			opts.infof(cmd, "untagged %s", r)
			return nil
		},
	}
}
