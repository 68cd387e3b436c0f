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
	cmd := &cobra.Command{
		Use:   "run [flags] IMAGE [COMMAND [ARG...]]",
		Short: "Run a command in a new container from an image",
		Long: `Unpack IMAGE (a layout, an archive or a registry image) into a fresh bundle under
--state-dir, then run it with wharf-runtime (or --runtime, any runc-compatible runtime) on
this terminal, as "podman run --rm" would: COMMAND replaces the image's Entrypoint and Cmd,
signals are forwarded, and wharf exits with the container's status (128+N when signal N
killed it). The container and its bundle are removed when it exits (--keep-bundle keeps the
bundle). Needs root.

--workdir and --volume's destinations are absolute paths in the container, without "..", and
neither on /proc nor on /sys (a working directory or mount there reaches the host:
CVE-2024-21626).`,
		Example: `  wharf run oci:./busybox:latest echo hello
  wharf run -t oci:./busybox:latest sh
  wharf run --env GREETING=hi docker://127.0.0.1:5000/demo/busybox:latest sh -c 'echo $GREETING'
  wharf run --runtime runc oci:./busybox id
  wharf run -u nobody -w /tmp -v "$PWD:/src:ro" --network host --memory 64m oci:./busybox sh -c 'id; ls /src'`,
		Args: minArgs(1),
	}
	cmd.Flags().SetInterspersed(false) // flags after IMAGE belong to COMMAND
	mf := addManifestFlags(cmd, "run")
	flags := addRunFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		o, err := flags.options(cmd)
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		h, md, err := mf.open(ctx, args[0])
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

// runFlags are wharf run's flags: most fill run.Options directly, --entrypoint and --memory
// are parsed into it.
type runFlags struct {
	o                  wharfrun.Options
	entrypoint, memory string
}

func addRunFlags(cmd *cobra.Command) *runFlags {
	rf := &runFlags{}
	o, f := &rf.o, cmd.Flags()
	f.StringVar(&o.ID, "name", "", "the container's id (default: wharf-<random>)")
	f.StringArrayVarP(&o.Env, "env", "e", nil, "set an environment variable KEY=VALUE (repeatable)")
	f.BoolVarP(&o.Tty, "tty", "t", false, "give the container a terminal (on this one)")
	f.StringVar(&o.Runtime, "runtime", "", "the OCI runtime binary (default: wharf-runtime beside wharf, else on PATH)")
	f.StringVar(&o.RuntimeRoot, "runtime-root", "", "the runtime's --root (default: the runtime's own)")
	f.StringVar(&o.StateDir, "state-dir", wharfrun.DefaultStateDir, "where bundles are unpacked")
	f.BoolVar(&o.Keep, "keep-bundle", false, "keep the bundle after the container exits")
	f.StringVar(&rf.entrypoint, "entrypoint", "", "replace the image's Entrypoint (a command, or a JSON array) and drop its Cmd")
	f.StringVarP(&o.Workdir, "workdir", "w", "", "the process's working directory in the container")
	f.StringVarP(&o.User, "user", "u", "", "USER[:GROUP] to run as (names from the image's /etc/passwd and /etc/group, or ids)")
	f.StringVar(&o.Hostname, "hostname", "", "the container's hostname (default: the container id)")
	f.StringArrayVarP(&o.Volumes, "volume", "v", nil, "bind mount SRC:DST[:ro|rw] from this host (repeatable)")
	f.BoolVar(&o.ReadOnly, "read-only", false, "mount the container's root file system read-only")
	f.StringVar(&o.Network, "network", "private", "private (only loopback, in a network namespace of its own) or host")
	f.StringVarP(&rf.memory, "memory", "m", "", "memory limit: bytes, or a number with k, m or g")
	f.Int64Var(&o.PidsLimit, "pids-limit", 0, "at most this many processes")
	f.Float64Var(&o.CPUs, "cpus", 0, "CPU time limit, in CPUs (0.5: half of one)")
	f.StringArrayVar(&o.CapAdd, "cap-add", nil, "add a capability (CAP_NET_ADMIN, net_admin, ALL; repeatable)")
	f.StringArrayVar(&o.CapDrop, "cap-drop", nil, "drop a capability (repeatable; ALL drops every one)")
	return rf
}

// options returns the run options the flags make, checked (run.Options.Check): anything wrong
// is a usage error, found before any image is read.
func (rf *runFlags) options(cmd *cobra.Command) (wharfrun.Options, error) {
	o := rf.o
	if cmd.Flags().Changed("entrypoint") {
		ep, err := parseEntrypoint(rf.entrypoint)
		if err != nil {
			return o, err
		}
		o.Entrypoint = ep
	}
	if rf.memory != "" {
		n, err := parseBytes(rf.memory)
		if err != nil {
			return o, usageErrorf("--memory %q: %v", rf.memory, err)
		}
		o.Memory = n
	}
	if err := o.Check(); err != nil {
		return o, asUsage(err)
	}
	return o, nil
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
