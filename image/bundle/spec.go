package bundle

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/wharfoci/wharf/internal/specdefault"
)

// DefaultPath is the PATH a process gets when the image sets none.
const DefaultPath = specdefault.Path

// DefaultSpec returns the runtime configuration every bundle starts from: runc's default
// (internal/specdefault: pid, network, ipc, uts, mount and cgroup namespaces, the usual /proc,
// /dev, /sys mounts, masked and read-only kernel paths, a small capability set, RLIMIT_NOFILE
// 1024, noNewPrivileges) with a writable root (a bundle is also where changes for repack are
// made), no terminal, and root as the user until the image says otherwise.
func DefaultSpec() *specs.Spec {
	s := specdefault.Spec()
	s.Root.Readonly = false
	s.Process.Terminal = false
	s.Process.Env = []string{DefaultPath}
	s.Process.User = specs.User{UID: 0, GID: 0}
	return s
}
