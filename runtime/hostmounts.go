package runtime

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// A mountEntry is one line of /proc/self/mountinfo (proc(5)).
type mountEntry struct {
	id           int
	root         string // the mount's root inside its file system
	point        string // mount point, unescaped
	fstype       string
	superOptions string
}

// readMountinfo lists the mounts of the caller's mount namespace, in mount order.
func readMountinfo() ([]mountEntry, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ms []mountEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, x := range fields {
			if x == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || len(fields) < sep+4 {
			continue
		}
		id, err := strconv.Atoi(fields[0])
		if err != nil {
			continue
		}
		ms = append(ms, mountEntry{id: id, root: unescapeMount(fields[3]), point: unescapeMount(fields[4]),
			fstype: fields[sep+1], superOptions: fields[sep+3]})
	}
	return ms, sc.Err()
}

// mountIDsAt returns the IDs of the mounts whose mount point is path (absolute, symlinks
// resolved), bottom first.
func mountIDsAt(path string) ([]int, error) {
	ms, err := readMountinfo()
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	var ids []int
	for _, m := range ms {
		if m.point == path {
			ids = append(ids, m.id)
		}
	}
	return ids, nil
}

// detachHostMounts undoes, for a container that shared the runtime's mount namespace, what its
// init mounted: the private bind of the rootfs, with everything mounted under it, is detached
// from rootfs (MNT_DETACH, topmost first) until only the mounts that were there before create
// (keep, e.g. a snapshot mounted by containerd) remain.
func detachHostMounts(rootfs string, keep []int) error {
	kept := map[int]bool{}
	for _, id := range keep {
		kept[id] = true
	}
	for range 16 { // a bound: the init mounts one bind there
		ids, err := mountIDsAt(rootfs)
		if err != nil {
			return err
		}
		if len(ids) == 0 || kept[ids[len(ids)-1]] {
			return nil
		}
		if err := unix.Unmount(rootfs, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("detach the rootfs bind %s: %w", rootfs, err)
		}
	}
	return fmt.Errorf("detach the rootfs bind %s: still mounted", rootfs)
}

func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
