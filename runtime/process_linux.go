package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/internal/specdefault"
)

var capNames = specdefault.Capabilities

// KnownCapabilities lists the capability names the runtime understands (for `features`).
func KnownCapabilities() []string { return append([]string(nil), capNames...) }

func capNumber(name string) (int, bool) {
	n := specdefault.CapabilityName(name)
	for i, c := range capNames {
		if c == n {
			return i, true
		}
	}
	return 0, false
}

// lastCap is the highest capability the kernel knows.
func lastCap() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			return n
		}
	}
	return len(capNames) - 1
}

// capMask is the set of names the kernel knows, limited to avail.
func capMask(names []string, avail uint64) uint64 {
	var m uint64
	last := lastCap()
	for _, n := range names {
		if i, ok := capNumber(n); ok && i <= last {
			m |= 1 << uint(i)
		}
	}
	return m & avail
}

// boundingSet is what the runtime itself may still grant: a host whose root lacks, say,
// CAP_SYS_RESOURCE can not give it to a container, and asking for it would fail every
// privileged container (podman --privileged asks for all), so such capabilities are left out.
func boundingSet() uint64 {
	var m uint64
	for i := 0; i <= lastCap(); i++ {
		if r, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(i), 0, 0, 0); err != nil || r == 1 {
			m |= 1 << uint(i)
		}
	}
	return m
}

var rlimitNames = map[string]int{
	"RLIMIT_CPU": unix.RLIMIT_CPU, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_DATA": unix.RLIMIT_DATA,
	"RLIMIT_STACK": unix.RLIMIT_STACK, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK,
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE, "RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO,
	"RLIMIT_RTTIME": unix.RLIMIT_RTTIME,
}

// setRlimits applies process.rlimits. syscall.Setrlimit (not x/sys) so that Go does not restore
// its startup RLIMIT_NOFILE at exec.
func setRlimits(rls []specs.POSIXRlimit) error {
	for _, r := range rls {
		res := rlimitNames[r.Type]
		if err := syscall.Setrlimit(res, &syscall.Rlimit{Cur: r.Soft, Max: r.Hard}); err != nil {
			var cur syscall.Rlimit
			_ = syscall.Getrlimit(res, &cur)
			if errors.Is(err, unix.EPERM) && r.Hard > cur.Max {
				return fmt.Errorf("set %s to %d:%d: %w (the hard limit %d can not be raised without CAP_SYS_RESOURCE)", r.Type, r.Soft, r.Hard, err, cur.Max)
			}
			return fmt.Errorf("set %s to %d:%d: %w", r.Type, r.Soft, r.Hard, err)
		}
	}
	return nil
}

// finalizeProcess switches the calling thread (which will exec) to the process's user and
// capabilities: bounding set, keepcaps, groups/gid/uid, capset, ambient, no_new_privileges.
// Everything here acts on the calling thread only, which is the one that calls execve.
func finalizeProcess(p *specs.Process) error {
	caps := p.Capabilities
	avail := boundingSet()
	if caps != nil {
		keep := capMask(caps.Bounding, avail)
		for i := 0; i <= lastCap(); i++ {
			if keep&(1<<uint(i)) != 0 {
				continue
			}
			if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(i), 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
				return fmt.Errorf("drop capability %s from the bounding set: %w", capNames[i], err)
			}
		}
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set keepcaps: %w", err)
	}
	u := p.User
	groups := make([]uint32, 0, len(u.AdditionalGids))
	groups = append(groups, u.AdditionalGids...)
	if err := setgroupsThread(groups); err != nil && !(errors.Is(err, unix.EPERM) && len(groups) == 0) {
		return fmt.Errorf("set additional groups %v: %w", groups, err)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(u.GID), uintptr(u.GID), uintptr(u.GID)); e != 0 {
		return fmt.Errorf("set gid %d: %w", u.GID, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(u.UID), uintptr(u.UID), uintptr(u.UID)); e != 0 {
		return fmt.Errorf("set uid %d: %w", u.UID, e)
	}
	if caps != nil {
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		set := func(names []string, f func(d *unix.CapUserData) *uint32) {
			m := capMask(names, avail)
			*f(&data[0]) = uint32(m)
			*f(&data[1]) = uint32(m >> 32)
		}
		set(caps.Effective, func(d *unix.CapUserData) *uint32 { return &d.Effective })
		set(caps.Permitted, func(d *unix.CapUserData) *uint32 { return &d.Permitted })
		set(caps.Inheritable, func(d *unix.CapUserData) *uint32 { return &d.Inheritable })
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			return fmt.Errorf("set capabilities: %w", err)
		}
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("clear ambient capabilities: %w", err)
		}
		for _, n := range caps.Ambient {
			i, _ := capNumber(n)
			if i > lastCap() {
				continue
			}
			// as runc: an ambient capability outside permitted∩inheritable is skipped
			if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(i), 0, 0); err != nil && !errors.Is(err, unix.EPERM) {
				return fmt.Errorf("raise ambient capability %s: %w", n, err)
			}
		}
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("clear keepcaps: %w", err)
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("set no_new_privileges: %w", err)
		}
	}
	return nil
}

func setgroupsThread(groups []uint32) error {
	var p unsafe.Pointer
	if len(groups) > 0 {
		p = unsafe.Pointer(&groups[0])
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(groups)), uintptr(p), 0); e != 0 {
		return e
	}
	return nil
}

// lookPath finds file in the container's PATH (from env), as execvp would.
func lookPath(file string, env []string) (string, error) {
	if strings.Contains(file, "/") {
		return file, nil
	}
	return searchPath(file, env)
}

// checkExecutable fails when the process's executable can not be found (relative names resolve
// against cwd, as they will once the process has changed to it).
func checkExecutable(file, cwd string, env []string) error {
	if !strings.Contains(file, "/") {
		_, err := searchPath(file, env)
		return err
	}
	p := file
	if !filepath.IsAbs(p) {
		p = filepath.Join(cwd, p)
	}
	st, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("exec %s: %w", file, err)
	}
	if st.IsDir() {
		return fmt.Errorf("exec %s: is a directory", file)
	}
	return nil
}

func searchPath(file string, env []string) (string, error) {
	pathEnv := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			pathEnv = v
		}
	}
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("executable file %q not found in $PATH", file)
}

// closeExtraFds marks every descriptor from first up close-on-exec.
func closeExtraFds(first int) {
	if err := unix.CloseRange(uint(first), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err == nil {
		return
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < first {
			continue
		}
		unix.CloseOnExec(fd)
	}
}
