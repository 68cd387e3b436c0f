package runtime

import (
	"fmt"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/wharfoci/wharf/errdef"
)

var ipcSysctls = map[string]bool{
	"kernel.msgmax": true, "kernel.msgmnb": true, "kernel.msgmni": true, "kernel.sem": true,
	"kernel.shmall": true, "kernel.shmmax": true, "kernel.shmmni": true, "kernel.shm_rmid_forced": true,
}

// validateSysctls refuses a sysctl that is not namespaced, or whose namespace the container does
// not have of its own: writing it would change the host (config-linux.md "Sysctl").
func validateSysctls(s *specs.Spec) error {
	if s.Linux == nil || len(s.Linux.Sysctl) == 0 {
		return nil
	}
	own := map[specs.LinuxNamespaceType]bool{}
	for _, ns := range s.Linux.Namespaces {
		// a namespace joined by path is someone else's, but still not the host's: allowed
		own[ns.Type] = true
	}
	for k := range s.Linux.Sysctl {
		k = strings.ReplaceAll(k, "/", ".")
		var need specs.LinuxNamespaceType
		switch {
		case ipcSysctls[k] || strings.HasPrefix(k, "fs.mqueue."):
			need = specs.IPCNamespace
		case strings.HasPrefix(k, "net."):
			need = specs.NetworkNamespace
		case k == "kernel.hostname" || k == "kernel.domainname":
			need = specs.UTSNamespace
		default:
			return fmt.Errorf("sysctl %q is not namespaced: setting it would change the host: %w", k, errdef.ErrInvalidArgument)
		}
		if !own[need] {
			return fmt.Errorf("sysctl %q needs a %s namespace of the container's own: %w", k, need, errdef.ErrInvalidArgument)
		}
	}
	return nil
}
