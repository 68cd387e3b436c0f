package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time: go build -ldflags "-X main.version=v1.2.3" (the Makefile does).
var version = ""

// Spec versions wharf implements.
const (
	imageSpecVersion        = "1.1.1"
	runtimeSpecVersion      = "1.3.0"
	distributionSpecVersion = "1.1.1"
)

type versionInfo struct {
	Version          string `json:"version"`
	GoVersion        string `json:"goVersion"`
	Platform         string `json:"platform"`
	ImageSpec        string `json:"imageSpec"`
	RuntimeSpec      string `json:"runtimeSpec"`
	DistributionSpec string `json:"distributionSpec"`
}

func currentVersion() versionInfo {
	v := version
	if v == "" {
		v = "devel"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	return versionInfo{
		Version:          v,
		GoVersion:        runtime.Version(),
		Platform:         runtime.GOOS + "/" + runtime.GOARCH,
		ImageSpec:        imageSpecVersion,
		RuntimeSpec:      runtimeSpecVersion,
		DistributionSpec: distributionSpecVersion,
	}
}

func newVersionCmd(opts *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print wharf's version and the OCI spec versions it implements",
		Example: `  wharf version
  wharf version --json | jq -r .version`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v := currentVersion()
			if opts.JSON {
				return writeJSON(cmd.OutOrStdout(), v)
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "wharf version %s\ngo: %s %s\nimage-spec: %s\nruntime-spec: %s\ndistribution-spec: %s\n",
				v.Version, v.GoVersion, v.Platform, v.ImageSpec, v.RuntimeSpec, v.DistributionSpec)
			return err
		},
	}
}
