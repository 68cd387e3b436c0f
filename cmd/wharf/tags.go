package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newTagsCmd(opts *globalOptions) *cobra.Command {
	var pageSize int
	cmd := &cobra.Command{
		Use:   "tags docker://HOST[:PORT]/REPO",
		Short: "List the tags of a registry repository",
		Long: `List the tags of a registry repository, one per line (--json: {"Repository", "Tags"} as
skopeo list-tags prints). The list is read page by page (--page-size tags per request,
following the registry's Link headers).`,
		Example: `  wharf tags docker://localhost:5000/busybox
  wharf tags --json docker://registry.example/app | jq -r '.Tags[]'`,
		Args: exactArgs(1),
	}
	cmd.Flags().IntVar(&pageSize, "page-size", 0, "tags per request (0: as many as the registry gives)")
	rf := addRegistryFlags(cmd, false)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		r, err := parseRegistry(args[0])
		if err != nil {
			return err
		}
		if pageSize < 0 {
			return usageErrorf("--page-size %d: must not be negative", pageSize)
		}
		h, err := openAny(cmd.Context(), r, false, rf)
		if err != nil {
			return err
		}
		defer h.Close()
		tags := []string{}
		err = h.Repo.TagPages(cmd.Context(), pageSize, "", func(page []string) error { tags = append(tags, page...); return nil })
		if err != nil {
			return fmt.Errorf("list tags of %s: %w", r.Path, err)
		}
		if opts.JSON {
			return writeJSON(cmd.OutOrStdout(), struct {
				Repository string
				Tags       []string
			}{r.Path, tags})
		}
		for _, t := range tags {
			fmt.Fprintln(cmd.OutOrStdout(), t)
		}
		return nil
	}
	return cmd
}
