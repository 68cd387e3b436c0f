package main

import (
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/wharfoci/wharf/image"
)

// platformFlag adds --platform to cmd and returns a function that parses it (nil when unset).
// A malformed value is a usage error.
func platformFlag(cmd *cobra.Command, help string) func() (*ocispec.Platform, error) {
	s := cmd.Flags().String("platform", "", help)
	return func() (*ocispec.Platform, error) {
		if *s == "" {
			return nil, nil
		}
		p, err := image.ParsePlatform(*s)
		if err != nil {
			return nil, asUsage(err)
		}
		return &p, nil
	}
}
