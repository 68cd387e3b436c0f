package main

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

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
  wharf run --runtime runc oci:./busybox id
  wharf run -u nobody -w /tmp -v "$PWD:/src:ro" --network host --memory 64m oci:./busybox sh -c 'id; ls /src'`,
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
	var entrypoint, memory string
	f := cmd.Flags()
	f.StringVar(&entrypoint, "entrypoint", "", "replace the image's Entrypoint (a command, or a JSON array) and drop its Cmd")
	f.StringVarP(&o.Workdir, "workdir", "w", "", "the process's working directory in the container")
	f.StringVarP(&o.User, "user", "u", "", "USER[:GROUP] to run as (names from the image's /etc/passwd and /etc/group, or ids)")
	f.StringVar(&o.Hostname, "hostname", "", "the container's hostname (default: the container id)")
	f.StringArrayVarP(&o.Volumes, "volume", "v", nil, "bind mount SRC:DST[:ro|rw] from this host (repeatable)")
	f.BoolVar(&o.ReadOnly, "read-only", false, "mount the container's root file system read-only")
	f.StringVar(&o.Network, "network", "private", "private (only loopback, in a network namespace of its own) or host")
	f.StringVarP(&memory, "memory", "m", "", "memory limit: bytes, or a number with k, m or g")
	f.Int64Var(&o.PidsLimit, "pids-limit", 0, "at most this many processes")
	f.Float64Var(&o.CPUs, "cpus", 0, "CPU time limit, in CPUs (0.5: half of one)")
	f.StringArrayVar(&o.CapAdd, "cap-add", nil, "add a capability (CAP_NET_ADMIN, net_admin, ALL; repeatable)")
	f.StringArrayVar(&o.CapDrop, "cap-drop", nil, "drop a capability (repeatable; ALL drops every one)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if f.Changed("entrypoint") {
			ep, err := parseEntrypoint(entrypoint)
			if err != nil {
				return err
			}
			o.Entrypoint = ep
		}
		if memory != "" {
			n, err := parseBytes(memory)
			if err != nil {
				return usageErrorf("--memory %q: %v", memory, err)
			}
			o.Memory = n
		}
		if err := o.Check(); err != nil {
			return asUsage(err)
		}
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

// parseEntrypoint reads --entrypoint as podman does: a JSON array of strings, or one command.
func parseEntrypoint(s string) ([]string, error) {
	if strings.HasPrefix(strings.TrimSpace(s), "[") {
		var ep []string
		if err := json.Unmarshal([]byte(s), &ep); err != nil {
			return nil, usageErrorf("--entrypoint %q: not a JSON array of strings: %v", s, err)
		}
		return ep, nil
	}
	if s == "" {
		return []string{}, nil
	}
	return []string{s}, nil
}

// parseBytes reads a size: a number of bytes, or one with a k, m or g suffix (powers of 1024,
// optionally followed by b, as podman's --memory).
func parseBytes(s string) (int64, error) {
	t := strings.TrimSuffix(strings.ToLower(s), "b")
	mult := int64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'k':
			mult, t = 1<<10, t[:n-1]
		case 'm':
			mult, t = 1<<20, t[:n-1]
		case 'g':
			mult, t = 1<<30, t[:n-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("not a positive size")
	}
	return n * mult, nil
}
