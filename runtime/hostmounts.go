package runtime

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/internal/mountinfo"
)

// mountIDsAt returns the IDs of the mounts whose mount point is path (absolute, symlinks
// resolved), bottom first.
func mountIDsAt(path string) ([]int, error) {
	ms, err := mountinfo.Self()
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	var ids []int
	for _, m := range ms {
		if m.Point == path {
			ids = append(ids, m.ID)
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
