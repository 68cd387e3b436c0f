package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/errdef"
)

// Controller is the container's directory in the v1 hierarchy that has ctrl ("cpu" is in
// "cpu,cpuacct"); ok is false when no v1 hierarchy has it (cgroup2's controllers are files of
// the Unified directory).
func (p Paths) Controller(ctrl string) (dir string, ok bool) {
	for key, dir := range p {
		if key == ctrl || key != Unified && hasController(key, ctrl) {
			return dir, true
		}
	}
	return "", false
}

func hasController(key, ctrl string) bool {
	for _, k := range strings.Split(key, ",") {
		if k == ctrl {
			return true
		}
	}
	return false
}

// UnifiedOnly returns the cgroup2 directory when it is the container's only one (a v2 host);
// ok is false on v1 and hybrid hosts.
func (p Paths) UnifiedOnly() (dir string, ok bool) {
	dir, ok = p[Unified]
	return dir, ok && len(p) == 1
}

// Create makes the container's cgroup directories (and their parents). A v1 cpuset cgroup gets
// its parent's cpus and mems, copied down from the nearest ancestor that has them, as v1
// requires before a task may join.
func (p Paths) Create() error {
	for name, dir := range p {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create cgroup %s: %w", dir, err)
		}
		if name != Unified && hasController(name, "cpuset") {
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
		parent := filepath.Dir(dir)
		if err := fillCpuset(parent); err != nil {
			return err
		}
		pb, err := os.ReadFile(filepath.Join(parent, f))
		if err != nil {
			return fmt.Errorf("read %s/%s: %w", parent, f, err)
		}
		if err := writeFile(dir, f, string(pb)); err != nil {
			return fmt.Errorf("write %s/%s: %w", dir, f, err)
		}
	}
	return nil
}

// Join moves pid into every cgroup of p (cgroup.procs).
func (p Paths) Join(pid int) error {
	s := strconv.Itoa(pid)
	for _, dir := range p {
		if err := writeFile(dir, "cgroup.procs", s); err != nil {
			return fmt.Errorf("add pid %d to cgroup %s: %w", pid, dir, err)
		}
	}
	return nil
}

// Remove removes the container's cgroup directories (not their parents). One that still
// holds processes is retried for about a second (they are being killed); one already gone is
// not an error.
func (p Paths) Remove() error {
	var errs []error
	for _, dir := range p {
		if err := rmdir(dir); err != nil {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dir, err))
		}
	}
	return errors.Join(errs...)
}

func rmdir(dir string) error {
	var err error
	for i := 0; i < 100; i++ {
		err = unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
	return err
}

// pidsOrder is where Pids looks first: a v1 hierarchy that is always there on such hosts,
// else the unified one.
var pidsOrder = []string{"pids", "freezer", "memory", "devices", "cpu,cpuacct", "name=systemd", Unified}

// Pids lists the processes in the container's cgroups (cgroup.procs of one hierarchy: each
// holds them all). No cgroup at all is ErrNotFound.
func (p Paths) Pids() ([]int, error) {
	for _, pref := range pidsOrder {
		if dir, ok := p[pref]; ok {
			return readPids(filepath.Join(dir, "cgroup.procs"))
		}
	}
	for _, dir := range p {
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

// Signal sends sig to every process of the container's cgroups, best effort. SIGKILL is sent
// with the v1 freezer frozen, so that nothing forks in between, and the cgroup is thawed
// after (frozen processes die once thawed).
func (p Paths) Signal(sig unix.Signal) {
	freezer := ""
	if d, ok := p["freezer"]; ok && sig == unix.SIGKILL {
		freezer = d
		_ = writeFile(freezer, "freezer.state", "FROZEN")
	}
	pids, _ := p.Pids()
	for _, pid := range pids {
		_ = unix.Kill(pid, sig)
	}
	if freezer != "" {
		_ = writeFile(freezer, "freezer.state", "THAWED")
	}
}

// Kill sends SIGKILL to the container's processes until none is left, for at most about a
// second; it returns as soon as the cgroups are empty or unreadable.
func (p Paths) Kill() {
	for i := 0; i < 200; i++ {
		pids, err := p.Pids()
		if err != nil || len(pids) == 0 {
			return
		}
		p.Signal(unix.SIGKILL)
		time.Sleep(5 * time.Millisecond)
	}
}
