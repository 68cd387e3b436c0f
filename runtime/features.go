package runtime

import (
	"sort"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
)

// Features describes what this runtime implements (features.md), as `features` prints it.
func Features() *features.Features {
	t, f := true, false
	var ns []string
	for t := range nsProcName {
		ns = append(ns, string(t))
	}
	sort.Strings(ns)
	return &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
		MountOptions:  MountOptions(),
		Linux: &features.Linux{
			Namespaces:   ns,
			Capabilities: KnownCapabilities(),
			Cgroup:       &features.Cgroup{V1: &t, V2: &t, Systemd: &f, SystemdUser: &f, Rdma: &f},
			Seccomp: &features.Seccomp{Enabled: &t,
				Actions: []string{string(specs.ActKill), string(specs.ActKillProcess), string(specs.ActKillThread), string(specs.ActTrap),
					string(specs.ActErrno), string(specs.ActTrace), string(specs.ActAllow), string(specs.ActLog)},
				Operators: []string{string(specs.OpNotEqual), string(specs.OpLessThan), string(specs.OpLessEqual), string(specs.OpEqualTo),
					string(specs.OpGreaterEqual), string(specs.OpGreaterThan), string(specs.OpMaskedEqual)},
				Archs:          []string{string(specs.ArchX86), string(specs.ArchX86_64), string(specs.ArchX32)},
				KnownFlags:     []string{string(specs.LinuxSeccompFlagLog), string(specs.LinuxSeccompFlagSpecAllow), string(specs.LinuxSeccompFlagWaitKillableRecv)},
				SupportedFlags: []string{string(specs.LinuxSeccompFlagLog), string(specs.LinuxSeccompFlagSpecAllow), string(specs.LinuxSeccompFlagWaitKillableRecv)},
			},
			Apparmor:        &features.Apparmor{Enabled: &t},
			Selinux:         &features.Selinux{Enabled: &t},
			IntelRdt:        &features.IntelRdt{Enabled: &f},
			MountExtensions: &features.MountExtensions{IDMap: &features.IDMap{Enabled: &f}},
		},
		Annotations: map[string]string{
			"org.opencontainers.runc.checkpoint.enabled": "false",
			"io.github.wharfoci.wharf-runtime.version":   Version,
			"io.github.wharfoci.wharf-runtime.nsenter":   strconv.FormatBool(haveNsenter),
		},
	}
}

// Version is the runtime's version, printed by --version.
var Version = "0.1.0"
