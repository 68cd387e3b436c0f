// Package ctrpath is the one check of a path inside a container — a process's working
// directory, a mount's destination — that wharf makes before a runtime sees it (`wharf run`'s
// --workdir and --volume, the image config's WorkingDir and Volumes at unpack, and build's
// WORKDIR and RUN mounts). The runtime resolves every such path in the rootfs anyway
// (internal/rootfs); what this check refuses is a path that resolves inside the container and
// still reaches the host: the kernel's /proc and /sys. A working directory at /proc/self/fd/N
// is a descriptor the runtime left open on a host directory (CVE-2024-21626), and a mount there
// shadows the kernel's view of a process.
//
// It is a leaf: it imports the standard library and errdef only, so that run, image/bundle and
// build share it.
package ctrpath

import (
	"fmt"
	"path"
	"strings"

	"github.com/wharfoci/wharf/errdef"
)

// Mount is what Check needs to know of a mount a container configuration declares
// (runtime-spec config.md mounts: destination, type, source).
type Mount struct {
	Destination string
	Type        string
	Source      string
}

// kernel reports whether the file system m mounts is the kernel's view of processes or
// devices: a proc or sysfs mount, or a bind mount of the host's /proc or /sys.
func (m Mount) kernel() bool {
	return m.Type == "proc" || m.Type == "sysfs" || strings.HasPrefix(m.Source, "/") && isKernelPath(path.Clean(m.Source))
}

// dest is the mount's destination, cleaned.
func (m Mount) dest() string { return path.Clean("/" + m.Destination) }

// kernelRoots are where a container sees the kernel's file systems.
var kernelRoots = []string{"/proc", "/sys"}

func isKernelPath(p string) bool {
	for _, r := range kernelRoots {
		if within(p, r) {
			return true
		}
	}
	return false
}

// within reports whether the clean absolute path p is dir or below it.
func within(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// Check returns p, lexically cleaned, when it may be a working directory or a mount
// destination in a container whose configuration declares mounts (the mounts made before the
// path is used: a mount's own destination is checked against the mounts declared before it).
// The rules, in order:
//
//   - p is not empty and holds no NUL byte;
//   - p is absolute (starts with "/");
//   - no element of p is ".." (a path that climbs is a mistake, whatever it resolves to);
//   - p is not on the kernel's view of processes and devices. The mount p is on is the
//     deepest one whose destination holds it (p itself or a directory above it; of two at one
//     destination, the later). p is refused when that mount is the kernel's (type proc or
//     sysfs, or a bind of the host's /proc or /sys), and when p lies at or under /proc or /sys
//     and no mount at or under those directories holds it (the container's /proc and /sys are
//     the kernel's, mounted or not). So /proc/self/fd/5 is refused, and a bind mount at
//     /proc/x (or the cgroup mount at /sys/fs/cgroup) makes the paths below it fine.
//
// Errors name what (the flag or field, e.g. "--workdir") and the path, and wrap
// errdef.ErrInvalidArgument (empty, NUL, relative, "..") or errdef.ErrUnsafePath (the kernel's
// file systems).
func Check(p, what string, mounts []Mount) (string, error) {
	switch {
	case p == "":
		return "", fmt.Errorf("%s: %w: empty path", what, errdef.ErrInvalidArgument)
	case strings.IndexByte(p, 0) >= 0:
		return "", fmt.Errorf("%s %q: %w: NUL byte in a path", what, p, errdef.ErrInvalidArgument)
	case !strings.HasPrefix(p, "/"):
		return "", fmt.Errorf("%s %q: %w: want an absolute path in the container", what, p, errdef.ErrInvalidArgument)
	}
	for _, e := range strings.Split(p, "/") {
		if e == ".." {
			return "", fmt.Errorf("%s %q: %w: \"..\" in a container path", what, p, errdef.ErrInvalidArgument)
		}
	}
	c := path.Clean(p)
	m, ok := deepest(c, mounts)
	if ok && m.kernel() || isKernelPath(c) && !(ok && isKernelPath(m.dest())) {
		return "", fmt.Errorf("%s %q: %w: on /proc or /sys, the kernel's view of processes (a working directory or mount there can reach the host: CVE-2024-21626)", what, p, errdef.ErrUnsafePath)
	}
	return c, nil
}

// deepest returns the mount with the longest destination holding the clean path p (the one
// p is on); later mounts win over earlier ones of the same destination, as they are mounted
// over them.
func deepest(p string, mounts []Mount) (Mount, bool) {
	var best Mount
	found := false
	for _, m := range mounts {
		if !within(p, m.dest()) {
			continue
		}
		if !found || len(m.dest()) >= len(best.dest()) {
			best, found = m, true
		}
	}
	return best, found
}
