package bundle

import (
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/internal/rootfs"
)

// Annotation keys of conversion.md.
const (
	AnnotationOS           = "org.opencontainers.image.os"
	AnnotationArch         = "org.opencontainers.image.architecture"
	AnnotationVariant      = "org.opencontainers.image.variant"
	AnnotationOSVersion    = "org.opencontainers.image.os.version"
	AnnotationOSFeatures   = "org.opencontainers.image.os.features"
	AnnotationAuthor       = "org.opencontainers.image.author"
	AnnotationCreated      = "org.opencontainers.image.created"
	AnnotationStopSignal   = "org.opencontainers.image.stopSignal"
	AnnotationExposedPorts = "org.opencontainers.image.exposedPorts"
)

// ConfigOptions are the external inputs of a conversion.
type ConfigOptions struct {
	// UIDMap and GIDMap, when set, add a user namespace with these mappings.
	UIDMap, GIDMap []specs.LinuxIDMapping
	// VolumeSource returns the host directory mounted at a Config.Volumes destination
	// (index i in sorted order). When nil, volumes become tmpfs mounts.
	VolumeSource func(i int, dest string) (string, error)
}

// cleanContainerPath makes p an absolute, lexically clean container path and refuses paths
// that reach a process's file descriptors or root (/proc/self/fd/N as a cwd leaks host
// descriptors into the container, CVE-2024-21626).
func cleanContainerPath(p, what string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("%s: %w: empty path", what, errdef.ErrInvalidArgument)
	}
	if strings.IndexByte(p, 0) >= 0 {
		return "", fmt.Errorf("%s %q: %w: NUL byte", what, p, errdef.ErrInvalidArgument)
	}
	c := path.Clean("/" + p)
	if c == "/proc" || strings.HasPrefix(c, "/proc/") {
		return "", fmt.Errorf("%s %q: %w: paths under /proc are refused", what, p, errdef.ErrUnsafePath)
	}
	return c, nil
}

// RuntimeConfig converts the image config img into a runtime configuration (conversion.md) on
// top of DefaultSpec. User names are resolved in root (the unpacked rootfs).
func RuntimeConfig(img *ocispec.Image, root *rootfs.Root, opts ConfigOptions) (*specs.Spec, error) {
	s := DefaultSpec()
	c := img.Config
	// process.args: Entrypoint + Cmd
	args := append(append([]string{}, c.Entrypoint...), c.Cmd...)
	if len(args) > 0 {
		s.Process.Args = args
	}
	// process.env: verbatim, PATH added only when the image has none
	if len(c.Env) > 0 {
		s.Process.Env = append([]string{}, c.Env...)
		hasPath := false
		for _, e := range c.Env {
			if strings.HasPrefix(e, "PATH=") {
				hasPath = true
			}
		}
		if !hasPath {
			s.Process.Env = append(s.Process.Env, DefaultPath)
		}
	}
	if c.WorkingDir != "" {
		cwd, err := cleanContainerPath(c.WorkingDir, "working directory")
		if err != nil {
			return nil, err
		}
		s.Process.Cwd = cwd
	}
	if c.User != "" {
		u, err := ResolveUser(root, c.User)
		if err != nil {
			return nil, err
		}
		s.Process.User = specs.User{UID: u.UID, GID: u.GID, AdditionalGids: u.AdditionalGids}
	}
	// volumes
	vols := make([]string, 0, len(c.Volumes))
	for v := range c.Volumes {
		vols = append(vols, v)
	}
	sort.Strings(vols)
	for i, v := range vols {
		dest, err := cleanContainerPath(v, "volume")
		if err != nil {
			return nil, err
		}
		if dest == "/" {
			return nil, fmt.Errorf("volume %q: %w: the root can not be a volume", v, errdef.ErrInvalidArgument)
		}
		m := specs.Mount{Destination: dest, Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=755"}}
		if opts.VolumeSource != nil {
			src, err := opts.VolumeSource(i, dest)
			if err != nil {
				return nil, err
			}
			m = specs.Mount{Destination: dest, Type: "bind", Source: src, Options: []string{"rbind", "rprivate"}}
		}
		s.Mounts = append(s.Mounts, m)
	}
	// annotations: implicit ones, then Labels taking precedence
	ann := map[string]string{}
	set := func(k, v string) {
		if v != "" {
			ann[k] = v
		}
	}
	set(AnnotationOS, img.OS)
	set(AnnotationArch, img.Architecture)
	set(AnnotationVariant, img.Variant)
	set(AnnotationOSVersion, img.OSVersion)
	set(AnnotationOSFeatures, strings.Join(img.OSFeatures, ","))
	set(AnnotationAuthor, img.Author)
	if img.Created != nil {
		set(AnnotationCreated, img.Created.UTC().Format(time.RFC3339Nano))
	}
	set(AnnotationStopSignal, c.StopSignal)
	if len(c.ExposedPorts) > 0 {
		ports := make([]string, 0, len(c.ExposedPorts))
		for p := range c.ExposedPorts {
			ports = append(ports, p)
		}
		sort.Strings(ports)
		set(AnnotationExposedPorts, strings.Join(ports, ","))
	}
	for k, v := range c.Labels {
		ann[k] = v
	}
	if len(ann) > 0 {
		s.Annotations = ann
	}
	if len(opts.UIDMap) > 0 || len(opts.GIDMap) > 0 {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = opts.UIDMap
		s.Linux.GIDMappings = opts.GIDMap
	}
	return s, nil
}
