package cgroups

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/internal/mountinfo"
)

// Paths maps each hierarchy a container is in to its cgroup directory on the host: a v1
// hierarchy by its sorted controllers ("cpu,cpuacct", "freezer", "name=systemd"), the cgroup2
// tree by Unified. It is what a container's state keeps.
type Paths map[string]string

// Unified is the key of the cgroup2 hierarchy in Paths.
const Unified = "unified"

// A Hierarchy is one mounted cgroup tree.
type Hierarchy struct {
	// Key names it: its sorted v1 controllers ("cpu,cpuacct"), "name=systemd", or "" for cgroup2.
	Key string
	// Mount is where it is mounted, e.g. /sys/fs/cgroup/freezer.
	Mount string
	// Root is the directory of the hierarchy the mount shows (mountinfo's fourth field: "/"
	// unless the mount was made in a cgroup namespace or is a bind mount).
	Root string
}

// v1Options are the superblock options of a v1 cgroup mount that are not controllers.
var v1Options = map[string]bool{
	"rw": true, "ro": true, "clone_children": true, "noprefix": true, "xattr": true,
	"cpuset_v2_mode": true, "favordynmods": true,
}

// ParseMountinfo lists the cgroup hierarchies of a /proc/PID/mountinfo (proc(5)), one per
// hierarchy: the first mount of each, in mount order. A v1 mount without a controller or name
// is left out.
func ParseMountinfo(r io.Reader) ([]Hierarchy, error) {
	seen := map[string]bool{}
	var hs []Hierarchy
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		h, ok := parseMountLine(sc.Text())
		if !ok || seen[h.Key] {
			continue
		}
		seen[h.Key] = true
		hs = append(hs, h)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return hs, nil
}

// parseMountLine reads one mountinfo line: "ID PARENT MAJ:MIN ROOT POINT OPTS [TAGS...] -
// FSTYPE SOURCE SUPEROPTS"; ok is false for a line that is not a cgroup hierarchy.
func parseMountLine(line string) (Hierarchy, bool) {
	e, ok := mountinfo.ParseLine(line)
	if !ok {
		return Hierarchy{}, false
	}
	h := Hierarchy{Root: e.Root, Mount: e.Point}
	switch e.FSType {
	case "cgroup2":
		return h, true
	case "cgroup":
		var ctrls []string
		for _, o := range strings.Split(e.SuperOptions, ",") {
			if strings.HasPrefix(o, "name=") || !v1Options[o] && !strings.Contains(o, "=") {
				ctrls = append(ctrls, o)
			}
		}
		sort.Strings(ctrls)
		h.Key = strings.Join(ctrls, ",")
		return h, h.Key != ""
	}
	return Hierarchy{}, false
}

// ParseProcCgroup reads a /proc/PID/cgroup (cgroups(7)): hierarchy key (as Hierarchy.Key) →
// the process's cgroup in it.
func ParseProcCgroup(r io.Reader) (map[string]string, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read /proc/PID/cgroup: %w", err)
	}
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		ctrls := strings.Split(parts[1], ",")
		sort.Strings(ctrls)
		m[strings.Join(ctrls, ",")] = parts[2]
	}
	return m, nil
}

// InnerPath turns a config's cgroupsPath into the container's path inside each hierarchy, as
// runc does: an absolute path is taken from each hierarchy's root (abs), a relative one from
// the runtime's own cgroup, an empty one is the container id (relative). With systemd (or a
// path of that form), "slice:prefix:name" becomes the slice's expanded directories and
// "prefix-name.scope", an absolute path. A path that names the root cgroup is refused.
func InnerPath(cgroupsPath, id string, systemd bool) (inner string, abs bool, err error) {
	p := cgroupsPath
	if systemd {
		return systemdPath(p, id)
	}
	if p == "" {
		return id, false, nil
	}
	if strings.Contains(p, ":") && !strings.HasPrefix(p, "/") {
		// a systemd-style path given without --systemd-cgroup: take it as systemd would
		return systemdPath(p, id)
	}
	clean := path.Clean("/" + p)
	if clean == "/" {
		return "", false, fmt.Errorf("cgroupsPath %q names the root cgroup: %w", p, errdef.ErrInvalidArgument)
	}
	if path.IsAbs(p) {
		return clean, true, nil
	}
	return strings.TrimPrefix(clean, "/"), false, nil
}

// systemdPath expands "slice:prefix:name" (empty: system.slice:wharf:ID); a name that is a
// slice itself is kept as it is.
func systemdPath(p, id string) (string, bool, error) {
	if p == "" {
		p = "system.slice:wharf:" + id
	}
	parts := strings.Split(p, ":")
	if len(parts) != 3 {
		return "", false, fmt.Errorf("parse systemd cgroupsPath %q: want slice:prefix:name: %w", p, errdef.ErrInvalidArgument)
	}
	slice, err := ExpandSlice(parts[0])
	if err != nil {
		return "", false, err
	}
	unit := parts[2]
	if !strings.HasSuffix(unit, ".slice") {
		if parts[1] != "" {
			unit = parts[1] + "-" + unit
		}
		unit += ".scope"
	}
	return path.Join(slice, unit), true, nil
}

// ExpandSlice turns "a-b-c.slice" into "/a.slice/a-b.slice/a-b-c.slice" (systemd.slice(5));
// "" and "-.slice" are the root, "/".
func ExpandSlice(slice string) (string, error) {
	if slice == "" || slice == "-.slice" {
		return "/", nil
	}
	if !strings.HasSuffix(slice, ".slice") || strings.Contains(slice, "/") {
		return "", fmt.Errorf("invalid systemd slice %q: %w", slice, errdef.ErrInvalidArgument)
	}
	name := strings.TrimSuffix(slice, ".slice")
	out, prefix := "", ""
	for _, comp := range strings.Split(name, "-") {
		if comp == "" {
			return "", fmt.Errorf("invalid systemd slice %q: %w", slice, errdef.ErrInvalidArgument)
		}
		out += "/" + prefix + comp + ".slice"
		prefix += comp + "-"
	}
	return out, nil
}

// Resolve computes the container's directory in every hierarchy of hs for cgroupsPath (see
// InnerPath); own is the runtime's own cgroup per hierarchy (ParseProcCgroup), which a relative
// path starts from. A hierarchy mounted from a subdirectory (Root) shows the path relative to
// it; a path outside it is taken as it is, under the mount.
func Resolve(hs []Hierarchy, own map[string]string, cgroupsPath, id string, systemd bool) (Paths, error) {
	inner, abs, err := InnerPath(cgroupsPath, id, systemd)
	if err != nil {
		return nil, err
	}
	paths := Paths{}
	for _, h := range hs {
		p := inner
		if !abs {
			p = path.Join(own[h.Key], inner)
		}
		rel, err := filepath.Rel(h.Root, path.Join("/", p))
		if err != nil || strings.HasPrefix(rel, "..") {
			rel = p
		}
		name := h.Key
		if name == "" {
			name = Unified
		}
		paths[name] = filepath.Join(h.Mount, rel)
	}
	return paths, nil
}

// HostPaths is Resolve for the calling process: the hierarchies of its mount namespace
// (/proc/self/mountinfo) and, for a relative cgroupsPath, its own cgroups (/proc/self/cgroup).
// The directories are not created (Create does).
func HostPaths(cgroupsPath, id string, systemd bool) (Paths, error) {
	_, abs, err := InnerPath(cgroupsPath, id, systemd)
	if err != nil {
		return nil, err
	}
	hs, err := readFileWith("/proc/self/mountinfo", ParseMountinfo)
	if err != nil {
		return nil, fmt.Errorf("list cgroup hierarchies: %w", err)
	}
	var own map[string]string
	if !abs {
		if own, err = readFileWith("/proc/self/cgroup", ParseProcCgroup); err != nil {
			return nil, fmt.Errorf("read own cgroups: %w", err)
		}
	}
	return Resolve(hs, own, cgroupsPath, id, systemd)
}

func readFileWith[T any](name string, parse func(io.Reader) (T, error)) (T, error) {
	f, err := os.Open(name)
	if err != nil {
		var zero T
		return zero, err
	}
	defer f.Close()
	return parse(f)
}
