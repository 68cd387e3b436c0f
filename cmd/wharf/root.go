package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// globalOptions holds the flags every command shares. Commands receive a pointer to the one
// instance the root command fills in, so the values are read when a command runs, not when it
// is constructed.
type globalOptions struct {
	// JSON asks for machine-readable output on stdout (one JSON document per command).
	JSON bool
	// Debug prints details to stderr: the full error chain, library diagnostics.
	Debug bool
	// Quiet suppresses progress and informational lines; results and errors are still printed.
	Quiet bool
}

const rootLong = `wharf builds, ships and runs OCI images: image layouts and archives (image-spec),
registries (distribution-spec) and containers (runtime-spec, with wharf-runtime).

Image names (as skopeo's; the path ends at the first ':'):
  oci:DIR[:TAG|@DIGEST]           an OCI image layout directory; without TAG or DIGEST the
                                  layout must hold exactly one image
  oci-archive:FILE[:TAG|@DIGEST]  a tar archive of an OCI image layout
  docker://[HOST[:PORT]/]REPO[:TAG|@DIGEST]
                                  a registry repository (copy, inspect, tags, delete);
                                  docker's defaults: busybox is docker.io/library/busybox:latest

Exit codes:
  0    success
  1    the operation failed (I/O error, invalid or hostile content, a failed validation)
  2    usage error: unknown command or flag, wrong arguments, malformed image name, tag or
       platform, a layout holding several images where one was meant
  3    not found: the layout, archive, tag, digest, platform or blob named does not exist
  130  interrupted (SIGINT or SIGTERM)

Errors are printed on stderr as one line: "wharf: <what failed>: <why>".`

// newRootCmd builds the wharf command tree. Each command is one constructor taking the shared
// options; add yours with one AddCommand line.
func newRootCmd() *cobra.Command {
	opts := &globalOptions{}
	root := &cobra.Command{
		Use:           "wharf",
		Short:         "Build, ship and run OCI images",
		Long:          rootLong,
		SilenceErrors: true,
		SilenceUsage:  true,
		// Args and RunE make "wharf nosuchcommand" a usage error (exit 2) rather than a silent help.
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown command %q for %q (see \"wharf --help\")", args[0], cmd.CommandPath())
			}
			return nil
		},
		RunE:              func(cmd *cobra.Command, args []string) error { return cmd.Help() },
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: true},
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageErrorf("%s (see \"%s --help\")", err, cmd.CommandPath())
	})
	pf := root.PersistentFlags()
	pf.BoolVar(&opts.JSON, "json", false, "print machine-readable JSON on stdout")
	pf.BoolVar(&opts.Debug, "debug", false, "print debugging details (the full error chain) on stderr")
	pf.BoolVarP(&opts.Quiet, "quiet", "q", false, "print no progress or informational lines")

	root.AddCommand(newInitCmd(opts))
	root.AddCommand(newLsCmd(opts))
	root.AddCommand(newInspectCmd(opts))
	root.AddCommand(newValidateCmd(opts))
	root.AddCommand(newCopyCmd(opts))
	root.AddCommand(newSyncCmd(opts))
	root.AddCommand(newTagsCmd(opts))
	root.AddCommand(newCatalogCmd(opts))
	root.AddCommand(newDeleteCmd(opts))
	root.AddCommand(newLoginCmd(opts))
	root.AddCommand(newLogoutCmd(opts))
	root.AddCommand(newTagCmd(opts))
	root.AddCommand(newUntagCmd(opts))
	root.AddCommand(newGCCmd(opts))
	root.AddCommand(newUnpackCmd(opts))
	root.AddCommand(newRepackCmd(opts))
	root.AddCommand(newNewCmd(opts))
	root.AddCommand(newConfigCmd(opts))
	root.AddCommand(newServeCmd(opts))
	root.AddCommand(newRunCmd(opts))
	root.AddCommand(newArtifactCmd(opts))
	root.AddCommand(newManifestCmd(opts))
	root.AddCommand(newVersionCmd(opts))
	return root
}

// run executes wharf with args and returns the process exit code. Errors are printed on stderr
// as one line.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	_, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	code := exitCode(ctx, err)
	var es *exitStatus
	if errors.As(err, &es) {
		return code
	}
	fmt.Fprintf(stderr, "wharf: %s\n", oneLine(err.Error()))
	if debug, _ := root.PersistentFlags().GetBool("debug"); debug {
		printChain(stderr, err)
	}
	return code
}
