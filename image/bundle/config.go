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
	"github.com/wharfoci/wharf/internal/ctrpath"
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

// CheckPath is the one container-path check (internal/ctrpath: absolute, no "..", not on the
// kernel's /proc or /sys unless another mount of mounts is there) of p against the mounts of a
// runtime config: what unpack applies to an image's working directory and volumes, and run and
// build to theirs. It returns p cleaned.
func CheckPath(p, what string, mounts []specs.Mount) (string, error) {
	ms := make([]ctrpath.Mount, 0, len(mounts))
	for _, m := range mounts {
		ms = append(ms, ctrpath.Mount{Destination: m.Destination, Type: m.Type, Source: m.Source})
	}
	return ctrpath.Check(p, what, ms)
}

// imagePath checks a path of the image config (WorkingDir, a key of Volumes). image-spec asks
// for neither an absolute nor a clean path and conversion.md passes it on, so it is read from
// "/" and cleaned first (what a runtime would make of it), then checked with CheckPath.
func imagePath(p, what string, mounts []specs.Mount) (string, error) {
	if p != "" {
		p = path.Clean("/" + p)
	}
	return CheckPath(p, what, mounts)
}

// RuntimeConfig converts the image config img into a runtime configuration (conversion.md) on
// top of DefaultSpec, field by field in the order of conversion.md's table. User names are
// resolved in root (the unpacked rootfs).
func RuntimeConfig(img *ocispec.Image, root *rootfs.Root, opts ConfigOptions) (*specs.Spec, error) {
	s := DefaultSpec()
	c := img.Config
	setArgs(s, c)
	setEnv(s, c)
	if err := setCwd(s, c); err != nil {
		return nil, err
	}
	if err := setUser(s, c, root); err != nil {
		return nil, err
	}
	if err := addVolumes(s, c, opts.VolumeSource); err != nil {
		return nil, err
	}
	if ann := annotations(img); len(ann) > 0 {
		s.Annotations = ann
	}
	if len(opts.UIDMap) > 0 || len(opts.GIDMap) > 0 {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = opts.UIDMap
		s.Linux.GIDMappings = opts.GIDMap
	}
	return s, nil
}

// setArgs: process.args is Entrypoint followed by Cmd (the default's when both are empty).
func setArgs(s *specs.Spec, c ocispec.ImageConfig) {
	if args := append(append([]string{}, c.Entrypoint...), c.Cmd...); len(args) > 0 {
		s.Process.Args = args
	}
}

// setEnv: process.env is Env verbatim, DefaultPath added only when it sets no PATH.
func setEnv(s *specs.Spec, c ocispec.ImageConfig) {
	if len(c.Env) == 0 {
		return
	}
	s.Process.Env = append([]string{}, c.Env...)
	for _, e := range c.Env {
		if strings.HasPrefix(e, "PATH=") {
			return
		}
	}
	s.Process.Env = append(s.Process.Env, DefaultPath)
}

// setCwd: process.cwd is WorkingDir, checked (a cwd under /proc reaches the host's
// descriptors: CVE-2024-21626).
func setCwd(s *specs.Spec, c ocispec.ImageConfig) error {
	if c.WorkingDir == "" {
		return nil
	}
	cwd, err := imagePath(c.WorkingDir, "working directory", s.Mounts)
	if err != nil {
		return err
	}
	s.Process.Cwd = cwd
	return nil
}

// setUser: process.user is User resolved in the rootfs' /etc/passwd and /etc/group.
func setUser(s *specs.Spec, c ocispec.ImageConfig, root *rootfs.Root) error {
	if c.User == "" {
		return nil
	}
	u, err := ResolveUser(root, c.User)
	if err != nil {
		return err
	}
	s.Process.User = specs.User{UID: u.UID, GID: u.GID, AdditionalGids: u.AdditionalGids}
	return nil
}

// addVolumes: each of Volumes, in sorted order, becomes a mount: a tmpfs, or a bind of the
// host directory source gives (see ConfigOptions.VolumeSource). The root cannot be one.
func addVolumes(s *specs.Spec, c ocispec.ImageConfig, source func(i int, dest string) (string, error)) error {
	vols := make([]string, 0, len(c.Volumes))
	for v := range c.Volumes {
		vols = append(vols, v)
	}
	sort.Strings(vols)
	for i, v := range vols {
		dest, err := imagePath(v, "volume", s.Mounts)
		if err != nil {
			return err
		}
		if dest == "/" {
			return fmt.Errorf("volume %q: %w: the root can not be a volume", v, errdef.ErrInvalidArgument)
		}
		m := specs.Mount{Destination: dest, Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=755"}}
		if source != nil {
			src, err := source(i, dest)
			if err != nil {
				return err
			}
			m = specs.Mount{Destination: dest, Type: "bind", Source: src, Options: []string{"rbind", "rprivate"}}
		}
		s.Mounts = append(s.Mounts, m)
	}
	return nil
}

// annotations: the implicit annotations of conversion.md (os, architecture, variant,
// os.version, os.features, author, created, stopSignal, exposedPorts), then Labels, which take
// precedence.
func annotations(img *ocispec.Image) map[string]string {
	c := img.Config
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
	return ann
}
