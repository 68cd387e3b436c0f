package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wharfoci/wharf/distribution/reference"
)

func newCatalogCmd(opts *globalOptions) *cobra.Command {
	var pageSize int
	cmd := &cobra.Command{
		Use:   "catalog [docker://]HOST[:PORT]",
		Short: "List the repositories of a registry",
		Long: `List the repositories a registry holds, one per line, as crane catalog does (--json:
{"Registry", "Repositories"}), read page by page through the registry's _catalog API
(--page-size repositories per request, following its Link headers).`,
		Example: `  wharf catalog localhost:5000
  wharf catalog --json docker://registry.example | jq -r '.Repositories[]'`,
		Args: exactArgs(1),
	}
	cmd.Flags().IntVar(&pageSize, "page-size", 0, "repositories per request (0: as many as the registry gives)")
	rf := addRegistryFlags(cmd, false)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		host := strings.TrimSuffix(strings.TrimPrefix(args[0], "docker://"), "/")
		if err := reference.ValidateDomain(host); err != nil {
			return usageErrorf("%s: name a registry, HOST[:PORT]: %v", args[0], err)
		}
		if pageSize < 0 {
			return usageErrorf("--page-size %d: must not be negative", pageSize)
		}
		c, err := rf.client()
		if err != nil {
			return err
		}
		repos, err := c.Catalog(cmd.Context(), host, pageSize)
		if err != nil {
			return err
		}
		if repos == nil {
			repos = []string{}
		}
		if opts.JSON {
			return writeJSON(cmd.OutOrStdout(), struct {
				Registry     string
				Repositories []string
			}{host, repos})
		}
		for _, r := range repos {
			fmt.Fprintln(cmd.OutOrStdout(), r)
		}
		return nil
	}
	return cmd
}
