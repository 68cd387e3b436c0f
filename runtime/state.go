package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/internal/cgroups"
)

// DefaultRoot is where container state lives when no --root is given.
const DefaultRoot = "/run/wharf-runtime"

const (
	stateFile = "state.json"
	fifoName  = "exec.fifo"
)

// Status values of runtime.md, plus "paused" as runc reports it.
const (
	StatusCreating = "creating"
	StatusCreated  = "created"
	StatusRunning  = "running"
	StatusPaused   = "paused"
	StatusStopped  = "stopped"
)

var idRE = regexp.MustCompile(`^[\w+\-.]+$`)

// ValidateID checks a container id the way runc does: letters, digits, "_", "+", "-", ".", and
// not "." or "..".
func ValidateID(id string) error {
	if id == "" || id == "." || id == ".." || !idRE.MatchString(id) || len(id) > 1024 {
		return fmt.Errorf("invalid container id %q: %w", id, errdef.ErrInvalidArgument)
	}
	return nil
}

// saved is what state.json holds: everything later commands need, since each is a new process.
type saved struct {
	ID          string            `json:"id"`
	Pid         int               `json:"init_pid"`
	PidStart    uint64            `json:"init_start_time"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Owner       string            `json:"owner"`
	Cgroups     cgroups.Paths     `json:"cgroup_paths,omitempty"`
	// HostMounts: the container shares the runtime's mount namespace, so its mounts outlive
	// it there; RootfsMounts are the mounts found at Rootfs before create (mount IDs, often
	// none), and delete detaches the others.
	HostMounts   bool        `json:"host_mounts,omitempty"`
	RootfsMounts []int       `json:"rootfs_mounts,omitempty"`
	Spec         *specs.Spec `json:"config"`
}

// State is the JSON `state` prints (runtime.md "State" plus runc's rootfs, created and owner).
type State struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Owner       string            `json:"owner"`
}

// Container is one container's state directory, opened (and usually locked) by a command.
type Container struct {
	rt   *Runtime
	dir  string
	lock *os.File
	s    saved

	initProc *os.Process // set when this process started the init (run)
}

func (rt *Runtime) containerDir(id string) string { return filepath.Join(rt.Root, id) }

// Load opens the state of container id and takes its lock (released by Close).
func (rt *Runtime) Load(id string) (*Container, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	dir := rt.containerDir(id)
	lk, err := lockDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("container %s does not exist: %w", id, errdef.ErrNotFound)
		}
		return nil, fmt.Errorf("lock container %s: %w", id, err)
	}
	c := &Container{rt: rt, dir: dir, lock: lk}
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			// create holds the lock until state.json is written: holding it now means that
			// create died half-way (killed); its directory is debris
			os.RemoveAll(dir)
			lk.Close()
			return nil, fmt.Errorf("container %s does not exist: %w", id, errdef.ErrNotFound)
		}
		lk.Close()
		return nil, fmt.Errorf("read state of container %s: %w", id, err)
	}
	if err := json.Unmarshal(b, &c.s); err != nil {
		lk.Close()
		return nil, fmt.Errorf("read state of container %s: %w", id, err)
	}
	return c, nil
}

// lockDir opens dir and takes an exclusive flock on it.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Close releases the container's lock.
func (c *Container) Close() error {
	if c.lock == nil {
		return nil
	}
	err := c.lock.Close()
	c.lock = nil
	return err
}

// ID is the container's id.
func (c *Container) ID() string { return c.s.ID }

// Spec is the container's config as it was at create.
func (c *Container) Spec() *specs.Spec { return c.s.Spec }

func (c *Container) save() error {
	b, err := json.Marshal(&c.s)
	if err != nil {
		return err
	}
	tmp := filepath.Join(c.dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write state of container %s: %w", c.s.ID, err)
	}
	if err := os.Rename(tmp, filepath.Join(c.dir, stateFile)); err != nil {
		return fmt.Errorf("write state of container %s: %w", c.s.ID, err)
	}
	return nil
}

// procStart returns the start time (field 22 of /proc/PID/stat) and the state letter of pid.
func procStart(pid int) (uint64, byte, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	st, err := strconv.ParseUint(f[19], 10, 64)
	return st, f[0][0], err
}

// initAlive reports whether the container's init still runs (not a zombie, and the pid was not
// reused by another process).
func (c *Container) initAlive() bool {
	if c.s.Pid <= 0 {
		return false
	}
	st, letter, err := procStart(c.s.Pid)
	if err != nil || st != c.s.PidStart || letter == 'Z' || letter == 'X' {
		return false
	}
	return true
}

// Status computes the container's status from the init process, the exec fifo and the freezer.
func (c *Container) Status() string {
	if !c.initAlive() {
		return StatusStopped
	}
	if _, err := os.Lstat(filepath.Join(c.dir, fifoName)); err == nil {
		return StatusCreated
	}
	if c.s.Cgroups.Frozen() {
		return StatusPaused
	}
	return StatusRunning
}

// State returns what the `state` command prints.
func (c *Container) State() State {
	st := c.Status()
	pid := c.s.Pid
	if st == StatusStopped {
		pid = 0
	}
	return State{
		OCIVersion: specs.Version, ID: c.s.ID, Pid: pid, Status: st, Bundle: c.s.Bundle,
		Rootfs: c.s.Rootfs, Created: c.s.Created, Annotations: c.s.Annotations, Owner: c.s.Owner,
	}
}

// specState is the state given to hooks on stdin (runtime.md "State").
func (c *Container) specState(status string) specs.State {
	pid := c.s.Pid
	if status == StatusStopped {
		pid = 0
	}
	return specs.State{Version: specs.Version, ID: c.s.ID, Status: specs.ContainerState(status), Pid: pid,
		Bundle: c.s.Bundle, Annotations: c.s.Annotations}
}

// List returns the state of every container under the root, sorted by id.
func (rt *Runtime) List() ([]State, error) {
	ents, err := os.ReadDir(rt.Root)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("list containers in %s: %w", rt.Root, err)
	}
	var out []State
	for _, e := range ents {
		if !e.IsDir() || ValidateID(e.Name()) != nil {
			continue
		}
		c, err := rt.Load(e.Name())
		if err != nil {
			continue
		}
		out = append(out, c.State())
		c.Close()
	}
	return out, nil
}
