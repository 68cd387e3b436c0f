package runtime

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/errdef"
)

// A hierarchy is one mounted cgroup tree: a v1 hierarchy (named by its controllers, or
// "name=systemd") or the v2 unified tree (key "").
type hierarchy struct {
	key   string // "cpu,cpuacct", "freezer", "name=systemd", "" for cgroup2
	mount string // mountpoint, e.g. /sys/fs/cgroup/freezer
	root  string // the mount's root inside the hierarchy (mountinfo field 4)
}

// hierarchies lists the cgroup mounts of the current mount namespace, one per hierarchy.
func hierarchies() ([]hierarchy, error) {
	mounts, err := readMountinfo()
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var hs []hierarchy
	for _, m := range mounts {
		if m.fstype != "cgroup" && m.fstype != "cgroup2" {
			continue
		}
		h := hierarchy{mount: m.point, root: m.root}
		if m.fstype == "cgroup" {
			var ctrls []string
			for _, o := range strings.Split(m.superOptions, ",") {
				switch {
				case strings.HasPrefix(o, "name="):
					ctrls = append(ctrls, o)
				case o == "rw" || o == "ro" || strings.Contains(o, "=") || o == "clone_children" ||
					o == "noprefix" || o == "xattr" || o == "cpuset_v2_mode" || o == "favordynmods":
				default:
					ctrls = append(ctrls, o)
				}
			}
			sort.Strings(ctrls)
			h.key = strings.Join(ctrls, ",")
			if h.key == "" {
				continue
			}
		}
		if seen[h.key] {
			continue
		}
		seen[h.key] = true
		hs = append(hs, h)
	}
	return hs, nil
}

// ownCgroups maps hierarchy key → this process's cgroup path in it (/proc/self/cgroup).
func ownCgroups(pid string) (map[string]string, error) {
	b, err := os.ReadFile("/proc/" + pid + "/cgroup")
	if err != nil {
		return nil, err
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

// cgroupInner turns the config's cgroupsPath into a path inside each hierarchy, following runc:
// an absolute path is taken from each hierarchy's root, a relative one from the runtime's own
// cgroup, an empty one is the container id (relative). With systemd, "slice:prefix:name" becomes
// slice-expanded directories and "prefix-name.scope" (driven through cgroupfs here).
func cgroupInner(cgroupsPath, id string, systemd bool) (string, bool, error) {
	p := cgroupsPath
	if systemd {
		if p == "" {
			p = "system.slice:wharf:" + id
		}
		parts := strings.Split(p, ":")
		if len(parts) != 3 {
			return "", false, fmt.Errorf("parse systemd cgroupsPath %q: want slice:prefix:name: %w", p, errdef.ErrInvalidArgument)
		}
		slice, err := expandSlice(parts[0])
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
	if p == "" {
		return id, false, nil
	}
	if strings.Contains(p, ":") && !strings.HasPrefix(p, "/") {
		// a systemd-style path given without --systemd-cgroup: take it as systemd would
		return cgroupInner(p, id, true)
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

// expandSlice turns "a-b-c.slice" into "/a.slice/a-b.slice/a-b-c.slice" (systemd.slice(5)).
func expandSlice(slice string) (string, error) {
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

// cgroupPaths computes the host directory of the container's cgroup in every hierarchy.
func cgroupPaths(cgroupsPath, id string, systemd bool) (map[string]string, error) {
	inner, abs, err := cgroupInner(cgroupsPath, id, systemd)
	if err != nil {
		return nil, err
	}
	hs, err := hierarchies()
	if err != nil {
		return nil, fmt.Errorf("list cgroup hierarchies: %w", err)
	}
	own := map[string]string{}
	if !abs {
		if own, err = ownCgroups("self"); err != nil {
			return nil, fmt.Errorf("read own cgroups: %w", err)
		}
	}
	paths := map[string]string{}
	for _, h := range hs {
		p := inner
		if !abs {
			p = path.Join(own[h.key], inner)
		}
		// the mount shows the hierarchy from h.root (a cgroup namespace or a bind mount)
		rel, err := filepath.Rel(h.root, path.Join("/", p))
		if err != nil || strings.HasPrefix(rel, "..") {
			rel = p
		}
		name := h.key
		if name == "" {
			name = "unified"
		}
		paths[name] = filepath.Join(h.mount, rel)
	}
	return paths, nil
}

// createCgroups makes the container's cgroup directories (cpuset gets its parent's cpus and
// mems, as v1 requires before a task may join).
func createCgroups(paths map[string]string) error {
	for name, dir := range paths {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create cgroup %s: %w", dir, err)
		}
		if strings.Contains(name, "cpuset") && name != "unified" {
			if err := fillCpuset(dir); err != nil {
				return err
			}
		}
	}
	return nil
}

func fillCpuset(dir string) error {
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return fmt.Errorf("read %s/%s: %w", dir, f, err)
		}
		if strings.TrimSpace(string(b)) != "" {
			continue
		}
		if err := fillCpuset(filepath.Dir(dir)); err != nil {
			return err
		}
		pb, err := os.ReadFile(filepath.Join(filepath.Dir(dir), f))
		if err != nil {
			return fmt.Errorf("read %s/%s: %w", filepath.Dir(dir), f, err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), pb, 0); err != nil {
			return fmt.Errorf("write %s/%s: %w", dir, f, err)
		}
	}
	return nil
}

// joinCgroups moves pid into every cgroup of paths.
func joinCgroups(paths map[string]string, pid int) error {
	s := strconv.Itoa(pid)
	for _, dir := range paths {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(s), 0); err != nil {
			return fmt.Errorf("add pid %d to cgroup %s: %w", pid, dir, err)
		}
	}
	return nil
}

// removeCgroups removes the container's leaf cgroups; a cgroup that still holds processes is
// retried for a short while (they are being killed).
func removeCgroups(paths map[string]string) error {
	var errs []error
	for _, dir := range paths {
		var err error
		for i := 0; i < 100; i++ {
			err = unix.Rmdir(dir)
			if err == nil || errors.Is(err, unix.ENOENT) {
				err = nil
				break
			}
			if !errors.Is(err, unix.EBUSY) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dir, err))
		}
	}
	return errors.Join(errs...)
}

// cgroupPids lists the processes in the container's cgroup (the first v1 hierarchy that has
// one, else the unified one).
func cgroupPids(paths map[string]string) ([]int, error) {
	for _, pref := range []string{"pids", "freezer", "memory", "devices", "cpu,cpuacct", "name=systemd", "unified"} {
		if dir, ok := paths[pref]; ok {
			return readPids(filepath.Join(dir, "cgroup.procs"))
		}
	}
	for _, dir := range paths {
		return readPids(filepath.Join(dir, "cgroup.procs"))
	}
	return nil, fmt.Errorf("list container processes: no cgroup: %w", errdef.ErrNotFound)
}

func readPids(file string) ([]int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("list container processes: %w", err)
	}
	var pids []int
	for _, l := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(l); err == nil {
			pids = append(pids, n)
		}
	}
	return pids, nil
}

// freezer: v1 freezer.state, or cgroup.freeze on a v2-only host.
func (c *Container) freezerFile() (string, string, string) {
	if dir, ok := c.s.Cgroups["freezer"]; ok {
		return filepath.Join(dir, "freezer.state"), "FROZEN", "THAWED"
	}
	if dir, ok := c.s.Cgroups["unified"]; ok && len(c.s.Cgroups) == 1 {
		return filepath.Join(dir, "cgroup.freeze"), "1", "0"
	}
	return "", "", ""
}

func (c *Container) frozen() bool {
	f, frozen, _ := c.freezerFile()
	if f == "" {
		return false
	}
	b, err := os.ReadFile(f)
	if err != nil {
		return false
	}
	s := strings.TrimSpace(string(b))
	return s == frozen || s == "FREEZING"
}

func (c *Container) setFrozen(freeze bool) error {
	f, frozen, thawed := c.freezerFile()
	if f == "" {
		return fmt.Errorf("container %s has no freezer cgroup: %w", c.s.ID, errdef.ErrUnsupported)
	}
	want := thawed
	if freeze {
		want = frozen
	}
	for i := 0; i < 1000; i++ {
		if err := os.WriteFile(f, []byte(want), 0); err != nil {
			return fmt.Errorf("write %s: %w", f, err)
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("read %s: %w", f, err)
		}
		if strings.TrimSpace(string(b)) == want {
			return nil
		}
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("freeze container %s: the freezer did not reach %s", c.s.ID, want)
}
