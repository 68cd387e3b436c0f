package snapshot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Mount is one mount a snapshot needs, as containerd's mount.Mount: mount(2)'s type, source
// and options (flags and data mixed, in fstab's words).
type Mount struct {
	Type    string   `json:"type"`
	Source  string   `json:"source"`
	Options []string `json:"options,omitempty"`
}

// MountAll mounts mounts on target, in order.
func MountAll(mounts []Mount, target string) error {
	for _, m := range mounts {
		if err := m.Mount(target); err != nil {
			return err
		}
	}
	return nil
}

var flagOpts = map[string]struct {
	clear bool
	flag  uintptr
}{
	"ro": {false, unix.MS_RDONLY}, "rw": {true, unix.MS_RDONLY},
	"bind": {false, unix.MS_BIND}, "rbind": {false, unix.MS_BIND | unix.MS_REC},
	"nosuid": {false, unix.MS_NOSUID}, "nodev": {false, unix.MS_NODEV}, "noexec": {false, unix.MS_NOEXEC},
}

// Mount mounts m on target (a directory). A read-only bind is made read-only with a remount,
// as the kernel ignores MS_RDONLY on the first bind. An overlay whose options do not fit one
// page (many lower directories) is mounted with fsopen/fsconfig, one "lowerdir+" per layer.
func (m Mount) Mount(target string) error {
	var flags uintptr
	var data []string
	for _, o := range m.Options {
		if f, ok := flagOpts[o]; ok {
			if f.clear {
				flags &^= f.flag
			} else {
				flags |= f.flag
			}
			continue
		}
		data = append(data, o)
	}
	if m.Type == "overlay" {
		d := strings.Join(data, ",")
		if len(d) < unix.Getpagesize()-512 {
			if err := unix.Mount("overlay", target, "overlay", flags, d); err != nil {
				return fmt.Errorf("mount overlay on %s: %w", target, err)
			}
			return nil
		}
		return mountOverlayFD(data, target)
	}
	if flags&unix.MS_BIND == 0 {
		if err := unix.Mount(m.Source, target, m.Type, flags, strings.Join(data, ",")); err != nil {
			return fmt.Errorf("mount %s %s on %s: %w", m.Type, m.Source, target, err)
		}
		return nil
	}
	if err := unix.Mount(m.Source, target, "", flags&(unix.MS_BIND|unix.MS_REC), ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", m.Source, target, err)
	}
	if flags&^(unix.MS_BIND|unix.MS_REC) != 0 {
		if err := unix.Mount("", target, "", flags|unix.MS_REMOUNT|unix.MS_BIND, ""); err != nil {
			unix.Unmount(target, unix.MNT_DETACH)
			return fmt.Errorf("remount %s: %w", target, err)
		}
	}
	return nil
}

// mountOverlayFD mounts an overlay through the new mount API: each lower directory is its own
// fsconfig call (Linux 6.8's "lowerdir+"), so the number of layers is bounded by overlayfs
// (500), not by a page of options.
func mountOverlayFD(data []string, target string) error {
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("mount overlay on %s: fsopen: %w", target, err)
	}
	defer unix.Close(fd)
	for _, o := range data {
		k, v, _ := strings.Cut(o, "=")
		switch k {
		case "lowerdir":
			for _, l := range strings.Split(v, ":") {
				if err := unix.FsconfigSetString(fd, "lowerdir+", l); err != nil {
					return fmt.Errorf("mount overlay on %s: lowerdir+ %s: %w", target, l, err)
				}
			}
		default:
			if v == "" && !strings.Contains(o, "=") {
				err = unix.FsconfigSetFlag(fd, k)
			} else {
				err = unix.FsconfigSetString(fd, k, v)
			}
			if err != nil {
				return fmt.Errorf("mount overlay on %s: %s: %w", target, o, err)
			}
		}
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return fmt.Errorf("mount overlay on %s: create: %w", target, err)
	}
	mfd, err := unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("mount overlay on %s: fsmount: %w", target, err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("mount overlay on %s: move_mount: %w", target, err)
	}
	return nil
}

// Unmount unmounts target and everything below it, deepest first; a target that is not a
// mount point is not an error.
func Unmount(target string) error {
	for {
		err := unix.Unmount(target, 0)
		switch {
		case err == nil:
			continue // something may be stacked beneath
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			return nil
		case errors.Is(err, unix.EBUSY):
			if err := unix.Unmount(target, unix.MNT_DETACH); err != nil {
				return fmt.Errorf("unmount %s: %w", target, err)
			}
			return nil
		default:
			return fmt.Errorf("unmount %s: %w", target, err)
		}
	}
}

// overlaySupported reports whether an overlay with an upper directory mounts on root's file
// system (a probe in a temporary directory under root, removed afterwards).
func overlaySupported(root string) bool {
	d, err := os.MkdirTemp(root, ".probe-")
	if err != nil {
		return false
	}
	defer os.RemoveAll(d)
	for _, s := range []string{"lower", "upper", "work", "merged"} {
		if os.Mkdir(filepath.Join(d, s), 0o755) != nil {
			return false
		}
	}
	m := Mount{Type: "overlay", Source: "overlay", Options: []string{
		"lowerdir=" + filepath.Join(d, "lower"), "upperdir=" + filepath.Join(d, "upper"), "workdir=" + filepath.Join(d, "work")}}
	if m.Mount(filepath.Join(d, "merged")) != nil {
		return false
	}
	unix.Unmount(filepath.Join(d, "merged"), unix.MNT_DETACH)
	return true
}
