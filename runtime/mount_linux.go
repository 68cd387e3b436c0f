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

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/internal/cgroups"
	"github.com/wharfoci/wharf/internal/rootfs"
)

type mountFlag struct {
	clear bool
	flag  uintptr
}

var mountFlags = map[string]mountFlag{
	"acl": {false, unix.MS_POSIXACL}, "noacl": {true, unix.MS_POSIXACL},
	"async": {true, unix.MS_SYNCHRONOUS}, "sync": {false, unix.MS_SYNCHRONOUS},
	"atime": {true, unix.MS_NOATIME}, "noatime": {false, unix.MS_NOATIME},
	"bind": {false, unix.MS_BIND}, "rbind": {false, unix.MS_BIND | unix.MS_REC},
	"defaults": {false, 0},
	"dev":      {true, unix.MS_NODEV}, "nodev": {false, unix.MS_NODEV},
	"diratime": {true, unix.MS_NODIRATIME}, "nodiratime": {false, unix.MS_NODIRATIME},
	"dirsync": {false, unix.MS_DIRSYNC},
	"exec":    {true, unix.MS_NOEXEC}, "noexec": {false, unix.MS_NOEXEC},
	"iversion": {false, unix.MS_I_VERSION}, "noiversion": {true, unix.MS_I_VERSION},
	"lazytime": {false, unix.MS_LAZYTIME}, "nolazytime": {true, unix.MS_LAZYTIME},
	"loud": {true, unix.MS_SILENT}, "silent": {false, unix.MS_SILENT},
	"mand": {false, unix.MS_MANDLOCK}, "nomand": {true, unix.MS_MANDLOCK},
	"relatime": {false, unix.MS_RELATIME}, "norelatime": {true, unix.MS_RELATIME},
	"remount": {false, unix.MS_REMOUNT},
	"ro":      {false, unix.MS_RDONLY}, "rw": {true, unix.MS_RDONLY},
	"strictatime": {false, unix.MS_STRICTATIME}, "nostrictatime": {true, unix.MS_STRICTATIME},
	"suid": {true, unix.MS_NOSUID}, "nosuid": {false, unix.MS_NOSUID},
	"nosymfollow": {false, unix.MS_NOSYMFOLLOW}, "symfollow": {true, unix.MS_NOSYMFOLLOW},
}

var propagationFlags = map[string]uintptr{
	"private": unix.MS_PRIVATE, "rprivate": unix.MS_PRIVATE | unix.MS_REC,
	"shared": unix.MS_SHARED, "rshared": unix.MS_SHARED | unix.MS_REC,
	"slave": unix.MS_SLAVE, "rslave": unix.MS_SLAVE | unix.MS_REC,
	"unbindable": unix.MS_UNBINDABLE, "runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// recursive mount attributes (mount_setattr, AT_RECURSIVE): "rro", "rnosuid"…
var recAttrs = map[string]mountFlag{
	"rro": {false, unix.MOUNT_ATTR_RDONLY}, "rrw": {true, unix.MOUNT_ATTR_RDONLY},
	"rnosuid": {false, unix.MOUNT_ATTR_NOSUID}, "rsuid": {true, unix.MOUNT_ATTR_NOSUID},
	"rnodev": {false, unix.MOUNT_ATTR_NODEV}, "rdev": {true, unix.MOUNT_ATTR_NODEV},
	"rnoexec": {false, unix.MOUNT_ATTR_NOEXEC}, "rexec": {true, unix.MOUNT_ATTR_NOEXEC},
	"rnodiratime": {false, unix.MOUNT_ATTR_NODIRATIME}, "rdiratime": {true, unix.MOUNT_ATTR_NODIRATIME},
	"rnoatime": {false, unix.MOUNT_ATTR_NOATIME}, "rstrictatime": {false, unix.MOUNT_ATTR_STRICTATIME},
	"rrelatime": {false, unix.MOUNT_ATTR_RELATIME}, "rnosymfollow": {false, unix.MOUNT_ATTR_NOSYMFOLLOW},
	"rsymfollow": {true, unix.MOUNT_ATTR_NOSYMFOLLOW},
}

// MountOptions lists the options the runtime understands (for `features`).
func MountOptions() []string {
	var out []string
	for k := range mountFlags {
		out = append(out, k)
	}
	for k := range propagationFlags {
		out = append(out, k)
	}
	for k := range recAttrs {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

type parsedMount struct {
	flags    uintptr
	prop     []uintptr
	attrSet  uint64
	attrClr  uint64
	data     []string
	bind     bool
	explicit uintptr // flags asked for explicitly (a remount must apply them)
}

func parseMountOptions(m specs.Mount) parsedMount {
	var p parsedMount
	for _, o := range m.Options {
		if f, ok := mountFlags[o]; ok {
			if f.clear {
				p.flags &^= f.flag
			} else {
				p.flags |= f.flag
			}
			continue
		}
		if f, ok := propagationFlags[o]; ok {
			p.prop = append(p.prop, f)
			continue
		}
		if a, ok := recAttrs[o]; ok {
			if a.clear {
				p.attrClr |= uint64(a.flag)
			} else {
				p.attrSet |= uint64(a.flag)
			}
			continue
		}
		switch o {
		case "tmpcopyup", "idmap", "ridmap", "copy-symlink", "nocopy", "private-propagation":
			continue
		}
		p.data = append(p.data, o)
	}
	p.bind = m.Type == "bind" || p.flags&unix.MS_BIND != 0
	return p
}

func procFd(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }

// mountCtx carries what the mount steps of one container need.
type mountCtx struct {
	root    *rootfs.Root
	rootfs  string
	bundle  string
	cgroups cgroups.Paths
}

// openDest resolves dest inside the rootfs (symlinks included, never leaving it) and creates it
// as a directory, or as an empty file when file is true.
func (mc *mountCtx) openDest(dest string, file bool) (*os.File, error) {
	if !file {
		f, err := mc.root.MkdirAllFollow(dest, 0o755)
		if err != nil {
			return nil, fmt.Errorf("create mount point %s: %w", dest, err)
		}
		return f, nil
	}
	if f, err := mc.root.OpenFileXDev(dest, unix.O_PATH, 0); err == nil {
		return f, nil
	}
	d, err := mc.root.MkdirAllFollow(path.Dir(rootfs.Clean(dest)), 0o755)
	if err != nil {
		return nil, fmt.Errorf("create mount point %s: %w", dest, err)
	}
	d.Close()
	f, err := mc.root.OpenFileXDev(dest, unix.O_CREAT|unix.O_RDONLY|unix.O_NONBLOCK, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create mount point %s: %w", dest, err)
	}
	f.Close()
	return mc.root.OpenFileXDev(dest, unix.O_PATH, 0)
}

// reopen resolves dest again: after a mount, the old descriptor names what is underneath.
func (mc *mountCtx) reopen(dest string) (*os.File, error) {
	f, err := mc.root.OpenFileXDev(dest, unix.O_PATH, 0)
	if err != nil {
		return nil, fmt.Errorf("reopen mount point %s: %w", dest, err)
	}
	return f, nil
}

// mountOne performs one config mount with its options and propagation.
func (mc *mountCtx) mountOne(m specs.Mount) error {
	p := parseMountOptions(m)
	data := strings.Join(p.data, ",")
	switch {
	case p.bind:
		src := m.Source
		if !filepath.IsAbs(src) {
			src = filepath.Join(mc.bundle, src)
		}
		st, err := os.Stat(src)
		if err != nil {
			return fmt.Errorf("bind mount %s: source: %w", m.Destination, err)
		}
		dst, err := mc.openDest(m.Destination, !st.IsDir())
		if err != nil {
			return err
		}
		err = unix.Mount(src, procFd(dst), "", unix.MS_BIND|(p.flags&unix.MS_REC), "")
		dst.Close()
		if err != nil {
			return fmt.Errorf("bind mount %s on %s: %w", src, m.Destination, err)
		}
		if rest := p.flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT); rest != 0 || data != "" {
			if err := mc.remount(m.Destination, rest|unix.MS_BIND, src); err != nil {
				return err
			}
		}
	case m.Type == "cgroup":
		return mc.mountCgroup(m, p)
	default:
		dst, err := mc.openDest(m.Destination, false)
		if err != nil {
			return err
		}
		err = unix.Mount(m.Source, procFd(dst), m.Type, p.flags&^unix.MS_REMOUNT, data)
		if err != nil && m.Type == "sysfs" && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.EBUSY)) {
			// no network namespace of our own: show the host's /sys instead, as runc does
			err = unix.Mount("/sys", procFd(dst), "", unix.MS_BIND|unix.MS_REC, "")
			if err == nil && p.flags&unix.MS_RDONLY != 0 {
				dst.Close()
				return mc.remount(m.Destination, p.flags|unix.MS_BIND, "/sys")
			}
		}
		dst.Close()
		if err != nil {
			return fmt.Errorf("mount %s (%s) on %s: %w", m.Source, m.Type, m.Destination, err)
		}
	}
	return mc.applyPropagation(m.Destination, p)
}

func (mc *mountCtx) applyPropagation(dest string, p parsedMount) error {
	if len(p.prop) == 0 && p.attrSet == 0 && p.attrClr == 0 {
		return nil
	}
	f, err := mc.reopen(dest)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, pf := range p.prop {
		if err := unix.Mount("", procFd(f), "", pf, ""); err != nil {
			return fmt.Errorf("set propagation of %s: %w", dest, err)
		}
	}
	if p.attrSet != 0 || p.attrClr != 0 {
		attr := &unix.MountAttr{Attr_set: p.attrSet, Attr_clr: p.attrClr}
		if err := unix.MountSetattr(int(f.Fd()), "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr); err != nil {
			return fmt.Errorf("set recursive attributes of %s: %w", dest, err)
		}
	}
	return nil
}

// remount applies flags to the mount at dest. In a user namespace the flags the kernel locked
// (nosuid, nodev, noexec, atime) must be kept: on EPERM they are read from src and retried.
func (mc *mountCtx) remount(dest string, flags uintptr, src string) error {
	f, err := mc.reopen(dest)
	if err != nil {
		return err
	}
	defer f.Close()
	return remountPath(procFd(f), dest, flags, src)
}

func remountPath(target, name string, flags uintptr, src string) error {
	err := unix.Mount("", target, "", flags|unix.MS_REMOUNT, "")
	if errors.Is(err, unix.EPERM) {
		var st unix.Statfs_t
		if src == "" {
			src = target
		}
		if unix.Statfs(src, &st) == nil {
			locked := uintptr(st.Flags) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME | unix.MS_RDONLY)
			err = unix.Mount("", target, "", flags|locked|unix.MS_REMOUNT, "")
		}
	}
	if err != nil {
		return fmt.Errorf("remount %s: %w", name, err)
	}
	return nil
}

// mountCgroup shows the container's own cgroups at dest: a tmpfs with one bind mount per
// hierarchy (cgroup v1 and hybrid), or the cgroup2 directory itself on a v2-only host.
func (mc *mountCtx) mountCgroup(m specs.Mount, p parsedMount) error {
	ro := p.flags&unix.MS_RDONLY != 0
	bindFlags := uintptr(unix.MS_BIND) | p.flags&(unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC|unix.MS_RDONLY)
	if dir, ok := mc.cgroups.UnifiedOnly(); ok {
		dst, err := mc.openDest(m.Destination, false)
		if err != nil {
			return err
		}
		err = unix.Mount(dir, procFd(dst), "", unix.MS_BIND, "")
		dst.Close()
		if err != nil {
			return fmt.Errorf("bind cgroup %s on %s: %w", dir, m.Destination, err)
		}
		return mc.remount(m.Destination, bindFlags, dir)
	}
	dst, err := mc.openDest(m.Destination, false)
	if err != nil {
		return err
	}
	err = unix.Mount("tmpfs", procFd(dst), "tmpfs", p.flags&^(unix.MS_RDONLY|unix.MS_REMOUNT|unix.MS_BIND|unix.MS_REC), "mode=755")
	dst.Close()
	if err != nil {
		return fmt.Errorf("mount tmpfs for cgroups on %s: %w", m.Destination, err)
	}
	keys := make([]string, 0, len(mc.cgroups))
	for k := range mc.cgroups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		name := strings.TrimPrefix(key, "name=")
		sub := path.Join(m.Destination, name)
		d, err := mc.openDest(sub, false)
		if err != nil {
			return err
		}
		err = unix.Mount(mc.cgroups[key], procFd(d), "", unix.MS_BIND, "")
		d.Close()
		if err != nil {
			return fmt.Errorf("bind cgroup %s on %s: %w", mc.cgroups[key], sub, err)
		}
		if err := mc.remount(sub, bindFlags, mc.cgroups[key]); err != nil {
			return err
		}
		if ctrls := strings.Split(key, ","); len(ctrls) > 1 {
			dirf, err := mc.openDest(m.Destination, false)
			if err != nil {
				return err
			}
			for _, c := range ctrls {
				_ = unix.Symlinkat(name, int(dirf.Fd()), c)
			}
			dirf.Close()
		}
	}
	if ro {
		return mc.remount(m.Destination, p.flags&^(unix.MS_BIND|unix.MS_REC)|unix.MS_RDONLY, "")
	}
	return nil
}

// isBindMountedDev reports whether /dev comes from a bind mount (then nodes are not created).
func devIsBind(s *specs.Spec) bool {
	for _, m := range s.Mounts {
		if path.Clean(m.Destination) == "/dev" {
			return parseMountOptions(m).bind
		}
	}
	return false
}

var defaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0},
}

// createDevices makes the default nodes and linux.devices inside the rootfs: mknod, or a bind
// mount of the host node in a user namespace (where mknod is refused).
func (mc *mountCtx) createDevices(s *specs.Spec, userNS bool) error {
	devs := append([]specs.LinuxDevice(nil), defaultDevices...)
	if s.Linux != nil {
		devs = append(devs, s.Linux.Devices...)
	}
	for _, d := range devs {
		if err := mc.createDevice(d, userNS); err != nil {
			return err
		}
	}
	return nil
}

func (mc *mountCtx) createDevice(d specs.LinuxDevice, userNS bool) error {
	dir, err := mc.root.MkdirAllFollow(path.Dir(rootfs.Clean(d.Path)), 0o755)
	if err != nil {
		return fmt.Errorf("create device %s: %w", d.Path, err)
	}
	defer dir.Close()
	// dir is O_PATH: reach it through /proc/self/fd to use the *at calls
	dirPath := procFd(dir)
	name := path.Base(d.Path)
	full := dirPath + "/" + name
	if userNS {
		f, err := os.OpenFile(full, os.O_CREATE|os.O_RDONLY|unix.O_NOFOLLOW, 0o644)
		if err != nil && !errors.Is(err, unix.ELOOP) {
			return fmt.Errorf("create device %s: %w", d.Path, err)
		}
		if f != nil {
			f.Close()
		}
		if err := unix.Mount(d.Path, full, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind device %s: %w", d.Path, err)
		}
		return nil
	}
	mode := uint32(0o666)
	if d.FileMode != nil {
		mode = uint32(*d.FileMode) & 0o7777
	}
	switch d.Type {
	case "c", "u":
		mode |= unix.S_IFCHR
	case "b":
		mode |= unix.S_IFBLK
	case "p":
		mode |= unix.S_IFIFO
	default:
		return fmt.Errorf("create device %s: type %q: %w", d.Path, d.Type, errdef.ErrInvalidArgument)
	}
	_ = unix.Unlink(full)
	if err := unix.Mknod(full, mode, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor)))); err != nil {
		return fmt.Errorf("create device %s: %w", d.Path, err)
	}
	if err := unix.Chmod(full, mode&0o7777); err != nil {
		return fmt.Errorf("chmod device %s: %w", d.Path, err)
	}
	uid, gid := 0, 0
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	if err := unix.Lchown(full, uid, gid); err != nil {
		return fmt.Errorf("chown device %s: %w", d.Path, err)
	}
	return nil
}

// devSymlinks adds /dev/fd, stdin, stdout, stderr, ptmx (→ pts/ptmx) and core when absent.
func (mc *mountCtx) devSymlinks() error {
	dev, err := mc.root.MkdirAllFollow("/dev", 0o755)
	if err != nil {
		return err
	}
	defer dev.Close()
	dir := procFd(dev)
	links := [][2]string{{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
		{"/proc/self/fd/2", "stderr"}}
	if _, err := os.Stat("/proc/kcore"); err == nil {
		links = append(links, [2]string{"/proc/kcore", "core"})
	}
	for _, l := range links {
		if err := unix.Symlink(l[0], dir+"/"+l[1]); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create /dev/%s: %w", l[1], err)
		}
	}
	_ = unix.Unlink(dir + "/ptmx")
	if err := unix.Symlink("pts/ptmx", dir+"/ptmx"); err != nil {
		return fmt.Errorf("create /dev/ptmx: %w", err)
	}
	return nil
}

// pivotRoot makes rootfs the root: pivot_root(".", ".") and a lazy unmount of the old root,
// which stays unreachable.
func pivotRoot(rootfsPath string) error {
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open old root: %w", err)
	}
	defer unix.Close(oldroot)
	newroot, err := unix.Open(rootfsPath, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open rootfs %s: %w", rootfsPath, err)
	}
	defer unix.Close(newroot)
	if err := unix.Fchdir(newroot); err != nil {
		return fmt.Errorf("chdir to rootfs: %w", err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root to %s: %w", rootfsPath, err)
	}
	if err := unix.Fchdir(oldroot); err != nil {
		return fmt.Errorf("chdir to old root: %w", err)
	}
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make old root slave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount old root: %w", err)
	}
	return unix.Chdir("/")
}

// moveRoot is --no-pivot: move the rootfs mount over / and chroot into it.
func moveRoot(rootfsPath string) error {
	if err := unix.Chdir(rootfsPath); err != nil {
		return fmt.Errorf("chdir to rootfs: %w", err)
	}
	if err := unix.Mount(rootfsPath, "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move rootfs %s to /: %w", rootfsPath, err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot to rootfs: %w", err)
	}
	return unix.Chdir("/")
}

// chrootRoot makes rootfs the root of a container without a mount namespace of its own:
// pivot_root and moving a mount over / would change the runtime's namespace, so chroot (the
// rootfs is the private bind prepareRootfs made).
func chrootRoot(rootfsPath string) error {
	if err := unix.Chdir(rootfsPath); err != nil {
		return fmt.Errorf("chdir to rootfs: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot to rootfs %s: %w", rootfsPath, err)
	}
	return unix.Chdir("/")
}

// enterRoot makes the directory fd (an init's /proc/PID/root) the root, for exec into a
// container that shares the runtime's mount namespace.
func enterRoot(fd int) error {
	if err := unix.Fchdir(fd); err != nil {
		return fmt.Errorf("chdir to the container's root: %w", err)
	}
	unix.Close(fd)
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot to the container's root: %w", err)
	}
	return unix.Chdir("/")
}

// maskPaths hides each path: /dev/null over a file, an empty read-only tmpfs over a directory.
func maskPaths(paths []string) error {
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return fmt.Errorf("mask %s: %w", p, err)
		}
		if st.IsDir() {
			err = unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY, "")
		} else {
			err = unix.Mount("/dev/null", p, "", unix.MS_BIND, "")
		}
		if err != nil {
			return fmt.Errorf("mask %s: %w", p, err)
		}
	}
	return nil
}

// readonlyPaths bind-mounts each path on itself read-only.
func readonlyPaths(paths []string) error {
	for _, p := range paths {
		if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return fmt.Errorf("make %s read-only: %w", p, err)
		}
		if err := remountPath(p, p, unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, p); err != nil {
			return err
		}
	}
	return nil
}

func writeSysctls(sysctl map[string]string) error {
	keys := make([]string, 0, len(sysctl))
	for k := range sysctl {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
		if err := os.WriteFile(p, []byte(sysctl[k]), 0); err != nil {
			return fmt.Errorf("set sysctl %s=%s: %w", k, sysctl[k], err)
		}
	}
	return nil
}
