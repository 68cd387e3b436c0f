package main

import (
	"github.com/spf13/cobra"

	wharfrun "github.com/wharfoci/wharf/run"
)

func newRunCmd(opts *globalOptions) *cobra.Command {
	var o wharfrun.Options
	cmd := &cobra.Command{
		Use:   "run [flags] IMAGE [COMMAND [ARG...]]",
		Short: "Run a command in a new container from an image",
		Long: `Unpack IMAGE (a layout, an archive or a registry image) into a fresh bundle under
--state-dir, then run it with wharf-runtime (or --runtime, any runc-compatible runtime) on
this terminal, as "podman run --rm" would: COMMAND replaces the image's Entrypoint and Cmd,
signals are forwarded, and wharf exits with the container's status (128+N when signal N
killed it). The container and its bundle are removed when it exits (--keep-bundle keeps the
bundle). Needs root.`,
		Example: `  wharf run oci:./busybox:latest echo hello
  wharf run -t oci:./busybox:latest sh
  wharf run --env GREETING=hi docker://127.0.0.1:5000/demo/busybox:latest sh -c 'echo $GREETING'
  wharf run --runtime runc oci:./busybox id`,
		Args: minArgs(1),
	}
	cmd.Flags().SetInterspersed(false) // flags after IMAGE belong to COMMAND
	platform := platformFlag(cmd, "the platform to run from an index (default: this machine's)")
	rf := addRegistryFlags(cmd, false)
	cmd.Flags().StringVar(&o.ID, "name", "", "the container's id (default: wharf-<random>)")
	cmd.Flags().StringArrayVarP(&o.Env, "env", "e", nil, "set an environment variable KEY=VALUE (repeatable)")
	cmd.Flags().BoolVarP(&o.Tty, "tty", "t", false, "give the container a terminal (on this one)")
	cmd.Flags().StringVar(&o.Runtime, "runtime", "", "the OCI runtime binary (default: wharf-runtime beside wharf, else on PATH)")
	cmd.Flags().StringVar(&o.RuntimeRoot, "runtime-root", "", "the runtime's --root (default: the runtime's own)")
	cmd.Flags().StringVar(&o.StateDir, "state-dir", wharfrun.DefaultStateDir, "where bundles are unpacked")
	cmd.Flags().BoolVar(&o.Keep, "keep-bundle", false, "keep the bundle after the container exits")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		p, err := platform()
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		h, md, err := openManifest(ctx, args[0], p, rf)
		if err != nil {
			return err
		}
		defer h.Close()
		o.Args = args[1:]
		o.Stdin, o.Stdout, o.Stderr = cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
		o.Bundle = func(dir string) { opts.debugf(cmd, "bundle %s", dir) }
		status, err := wharfrun.Run(ctx, h.Target(), md, o)
		if err != nil {
			return err
		}
		if status != 0 {
			return &exitStatus{code: status}
		}
		return nil
	}
	return cmd
}
