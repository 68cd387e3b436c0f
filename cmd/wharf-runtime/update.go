package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"github.com/wharfoci/wharf/errdef"
)

func newUpdateCmd(g *globalOptions) *cobra.Command {
	var resources string
	var memory, pids, cpuQuota int64
	var cpuPeriod, cpuShares uint64
	var cpusetCpus, cpusetMems string
	cmd := &cobra.Command{
		Use:   "update [flags] ID",
		Short: "change the memory, pids and cpu limits of a container",
		Args:  exactArgs(1, "a container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r := &specs.LinuxResources{}
			if resources != "" {
				var in io.Reader = os.Stdin
				if resources != "-" {
					f, err := os.Open(resources)
					if err != nil {
						return fmt.Errorf("read resources %s: %w", resources, err)
					}
					defer f.Close()
					in = f
				}
				if err := json.NewDecoder(io.LimitReader(in, 4<<20)).Decode(r); err != nil {
					return fmt.Errorf("parse resources %s: %v: %w", resources, err, errdef.ErrInvalidArgument)
				}
			}
			fl := cmd.Flags()
			if fl.Changed("memory") {
				r.Memory = &specs.LinuxMemory{Limit: &memory}
			}
			if fl.Changed("pids-limit") {
				r.Pids = &specs.LinuxPids{Limit: &pids}
			}
			if fl.Changed("cpu-quota") || fl.Changed("cpu-period") || fl.Changed("cpu-share") || fl.Changed("cpuset-cpus") || fl.Changed("cpuset-mems") {
				if r.CPU == nil {
					r.CPU = &specs.LinuxCPU{}
				}
				if fl.Changed("cpu-quota") {
					r.CPU.Quota = &cpuQuota
				}
				if fl.Changed("cpu-period") {
					r.CPU.Period = &cpuPeriod
				}
				if fl.Changed("cpu-share") {
					r.CPU.Shares = &cpuShares
				}
				r.CPU.Cpus, r.CPU.Mems = cpusetCpus, cpusetMems
			}
			c, err := g.runtime().Load(args[0])
			if err != nil {
				return err
			}
			defer c.Close()
			return c.Update(r)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&resources, "resources", "r", "", "a runtime-spec LinuxResources JSON file (- for stdin)")
	fl.Int64Var(&memory, "memory", 0, "memory limit in bytes")
	fl.Int64Var(&pids, "pids-limit", 0, "maximum number of processes")
	fl.Int64Var(&cpuQuota, "cpu-quota", 0, "CFS quota in microseconds")
	fl.Uint64Var(&cpuPeriod, "cpu-period", 0, "CFS period in microseconds")
	fl.Uint64Var(&cpuShares, "cpu-share", 0, "CPU shares")
	fl.StringVar(&cpusetCpus, "cpuset-cpus", "", "CPUs to use")
	fl.StringVar(&cpusetMems, "cpuset-mems", "", "memory nodes to use")
	return cmd
}
