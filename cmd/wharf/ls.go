package main

import (
	"fmt"
	"text/tabwriter"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/wharfoci/wharf/image/layout"
)

// lsEntry is one line of `wharf ls --json`.
type lsEntry struct {
	Tag         string            `json:"tag,omitempty"`
	Digest      digest.Digest     `json:"digest"`
	MediaType   string            `json:"mediaType"`
	Size        int64             `json:"size"`
	Platform    string            `json:"platform,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

func newLsCmd(opts *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "ls oci:DIR | oci-archive:FILE",
		Aliases: []string{"list"},
		Short:   "List the tags of an OCI image layout with their digests",
		Long: `List every entry of the layout's index.json: its tag (the
org.opencontainers.image.ref.name annotation; "-" for an untagged entry), digest, media type,
size and platform (when the entry has one).`,
		Example: `  wharf ls oci:./busybox
  wharf ls --json oci:./busybox | jq -r '.[] | .tag + " " + .digest'`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := openWhole(cmd.Context(), args[0], false)
			if err != nil {
				return err
			}
			defer h.Close()
			entries, err := h.Layout.List(cmd.Context())
			if err != nil {
				return err
			}
			return printEntries(cmd, opts, entries)
		},
	}
}

func printEntries(cmd *cobra.Command, opts *globalOptions, entries []layout.Entry) error {
	out := make([]lsEntry, 0, len(entries))
	for _, e := range entries {
		le := lsEntry{Tag: e.Name, Digest: e.Descriptor.Digest, MediaType: e.Descriptor.MediaType, Size: e.Descriptor.Size}
		if p := e.Descriptor.Platform; p != nil {
			le.Platform = formatPlatform(p)
		}
		for k, v := range e.Descriptor.Annotations {
			if k == layout.RefName {
				continue
			}
			if le.Annotations == nil {
				le.Annotations = map[string]string{}
			}
			le.Annotations[k] = v
		}
		out = append(out, le)
	}
	if opts.JSON {
		return writeJSON(cmd.OutOrStdout(), out)
	}
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TAG\tDIGEST\tMEDIA TYPE\tSIZE\tPLATFORM")
	for _, e := range out {
		tag, plat := e.Tag, e.Platform
		if tag == "" {
			tag = "-"
		}
		if plat == "" {
			plat = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", tag, e.Digest, e.MediaType, e.Size, plat)
	}
	return tw.Flush()
}

// formatPlatform is "os/arch[/variant]".
func formatPlatform(p *ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}
