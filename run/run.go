package run

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/image"
	"github.com/wharfoci/wharf/image/bundle"
	"github.com/wharfoci/wharf/internal/rootfs"
	"github.com/wharfoci/wharf/internal/specdefault"
)

// DefaultStateDir holds the bundles of running containers (one directory each, removed when the
// container is gone unless Options.Keep).
const DefaultStateDir = "/run/wharf/bundles"

// Options control Run.
type Options struct {
	// ID names the container (default: wharf-<12 random hex>).
	ID string
	// Args replaces the image's Entrypoint+Cmd when not empty.
	Args []string
	// Env entries (KEY=VALUE) are added to the image's environment, replacing equal keys.
	Env []string
	// Tty gives the process a terminal: the runtime puts it on the caller's terminal.
	Tty bool
	// Runtime is the runtime binary (default: wharf-runtime beside the running executable,
	// else on PATH).
	Runtime string
	// RuntimeRoot is passed to the runtime as --root when set.
	RuntimeRoot string
	// StateDir is where bundles are unpacked (default DefaultStateDir).
	StateDir string
	// Keep leaves the bundle in place after the container exits.
	Keep bool
	// Unpack is passed to bundle.Unpack (limits, id maps, progress).
	Unpack bundle.Options
	// Stdin, Stdout and Stderr are the container's stdio (default: the process's own).
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Bundle, when set, is called with the bundle directory once it is ready, before the run.
	Bundle func(dir string)

	// What podman run's flags of the same names change in the container:
	// Entrypoint, when not nil, replaces the image's Entrypoint and drops its Cmd; Args follow it.
	Entrypoint []string
	// Workdir is the process's working directory (absolute, in the container).
	Workdir string
	// User is USER[:GROUP], names or ids, resolved in the image's /etc/passwd and /etc/group.
	User string
	// Hostname replaces the container's hostname (default: the image's, else the id).
	Hostname string
	// Volumes are bind mounts SRC:DST[:ro|rw] of host directories or files.
	Volumes []string
	// ReadOnly mounts the root file system read-only.
	ReadOnly bool
	// Network is "private" (the default: a network namespace with only loopback) or "host".
	Network string
	// Memory (bytes), PidsLimit and CPUs (a fraction of CPUs, by CFS quota) limit the
	// container when above 0.
	Memory, PidsLimit int64
	CPUs              float64
	// CapAdd and CapDrop change the capabilities (names with or without CAP_, or ALL).
	CapAdd, CapDrop []string
}

// Run unpacks the image manifest desc read from f into a fresh bundle and runs it to
// completion with the runtime. It returns the container's exit status (128+N for a process
// killed by signal N); err is set only when wharf or the runtime failed before or around the
// container (then the status is meaningless). Signals wharf receives (INT, TERM, HUP, QUIT,
// USR1, USR2) are forwarded to the runtime, which forwards them to the container.
func Run(ctx context.Context, f content.Fetcher, desc ocispec.Descriptor, opts Options) (int, error) {
	if opts.ID == "" {
		var b [6]byte
		if _, err := rand.Read(b[:]); err != nil {
			return -1, err
		}
		opts.ID = "wharf-" + hex.EncodeToString(b[:])
	}
	rt, err := FindRuntime(opts.Runtime, opts.RuntimeRoot)
	if err != nil {
		return -1, err
	}
	if opts.StateDir == "" {
		opts.StateDir = DefaultStateDir
	}
	if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
		return -1, fmt.Errorf("create state directory: %w", err)
	}
	dir, err := os.MkdirTemp(opts.StateDir, opts.ID+"-")
	if err != nil {
		return -1, fmt.Errorf("create bundle directory: %w", err)
	}
	if !opts.Keep {
		defer os.RemoveAll(dir)
	}
	b := filepath.Join(dir, "bundle")
	if _, err := bundle.Unpack(ctx, f, desc, b, opts.Unpack); err != nil {
		return -1, err
	}
	if err := adjustConfig(b, opts); err != nil {
		return -1, err
	}
	if opts.Bundle != nil {
		opts.Bundle(b)
	}
	return rt.Run(ctx, opts.ID, b, Stdio{In: or(opts.Stdin, io.Reader(os.Stdin)), Out: orW(opts.Stdout, os.Stdout), Err: orW(opts.Stderr, os.Stderr)}, true)
}

// adjustConfig applies the run options to the config.json of the bundle dir.
func adjustConfig(dir string, opts Options) error {
	path := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if s.Process == nil || s.Root == nil || s.Linux == nil {
		return fmt.Errorf("%s: no process, root or linux section: %w", path, errdef.ErrInvalidArgument)
	}
	if err := opts.Check(); err != nil {
		return err
	}
	for _, edit := range opts.specEdits(filepath.Join(dir, s.Root.Path)) {
		if err := edit(&s); err != nil {
			return err
		}
	}
	out, err := json.MarshalIndent(&s, "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, 0o600)
}

// specEdits are the options as edits of a bundle's config (rootfs: its root file system),
// applied in order, in the model of containerd's oci.SpecOpts: one per podman flag.
func (o Options) specEdits(rootfs string) []func(*specs.Spec) error {
	return []func(*specs.Spec) error{
		o.withArgs, o.withProcess, func(s *specs.Spec) error { return o.withUser(s, rootfs) },
		o.withHostname, o.withVolumes, o.withNetwork, o.withLimits, o.withCapabilities,
	}
}

// withArgs: COMMAND replaces the image's Entrypoint and Cmd; --entrypoint replaces the
// Entrypoint, drops the Cmd and COMMAND follows it. Something must remain to run.
func (o Options) withArgs(s *specs.Spec) error {
	switch {
	case o.Entrypoint != nil:
		s.Process.Args = append(append([]string(nil), o.Entrypoint...), o.Args...)
	case len(o.Args) > 0:
		s.Process.Args = o.Args
	}
	if len(s.Process.Args) == 0 {
		return fmt.Errorf("run: the image has no Entrypoint or Cmd and no command was given: %w", errdef.ErrInvalidArgument)
	}
	return nil
}

// withProcess: --env (image.SetEnv), --tty, --workdir (checked by Check).
func (o Options) withProcess(s *specs.Spec) error {
	s.Process.Env = image.SetEnv(s.Process.Env, o.Env...)
	s.Process.Terminal = o.Tty
	if o.Workdir != "" {
		s.Process.Cwd = filepath.Clean(o.Workdir)
	}
	return nil
}

// withUser: --user resolved in the rootfs' /etc/passwd and /etc/group.
func (o Options) withUser(s *specs.Spec, rootfsDir string) error {
	if o.User == "" {
		return nil
	}
	root, err := rootfs.Open(rootfsDir)
	if err != nil {
		return err
	}
	u, err := bundle.ResolveUser(root, o.User)
	root.Close()
	if err != nil {
		return fmt.Errorf("--user %s: %w", o.User, err)
	}
	s.Process.User = specs.User{UID: u.UID, GID: u.GID, AdditionalGids: u.AdditionalGids}
	return nil
}

// withHostname: --hostname, else the image's, else the container id.
func (o Options) withHostname(s *specs.Spec) error {
	switch {
	case o.Hostname != "":
		s.Hostname = o.Hostname
	case s.Hostname == "":
		s.Hostname = o.ID
	}
	return nil
}

// withVolumes: each --volume becomes a bind mount (its source must exist); --read-only.
func (o Options) withVolumes(s *specs.Spec) error {
	for _, v := range o.Volumes {
		m, err := parseVolume(v, s.Mounts)
		if err != nil {
			return err
		}
		s.Mounts = append(s.Mounts, m)
	}
	s.Root.Readonly = s.Root.Readonly || o.ReadOnly
	return nil
}

// withNetwork: --network host leaves the network namespace out.
func (o Options) withNetwork(s *specs.Spec) error {
	if o.Network != "host" {
		return nil
	}
	var nss []specs.LinuxNamespace
	for _, ns := range s.Linux.Namespaces {
		if ns.Type != specs.NetworkNamespace {
			nss = append(nss, ns)
		}
	}
	s.Linux.Namespaces = nss
	return nil
}

// Check reports what is wrong with the options themselves, before any image is read: paths
// (the container-path check of bundle.CheckPath, against the default mounts and the volumes),
// volume syntax, network, limits, capability names. (A volume's source must also exist, and
// the user must be in the image: adjustConfig finds that out.)
func (o Options) Check() error {
	mounts := bundle.DefaultSpec().Mounts
	for _, v := range o.Volumes {
		m, err := volumeMount(v, mounts)
		if err != nil {
			return err
		}
		mounts = append(mounts, m)
	}
	if o.Workdir != "" {
		if _, err := bundle.CheckPath(o.Workdir, "--workdir", mounts); err != nil {
			return err
		}
	}
	switch o.Network {
	case "", "private", "none", "host":
	default:
		return fmt.Errorf("--network %q: private or host: %w", o.Network, errdef.ErrInvalidArgument)
	}
	if o.Memory < 0 || o.PidsLimit < 0 || o.CPUs < 0 {
		return fmt.Errorf("run: negative --memory, --pids-limit or --cpus: %w", errdef.ErrInvalidArgument)
	}
	if o.CPUs > 0 && cpuQuota(o.CPUs) < 1000 {
		return fmt.Errorf("--cpus %g: at least 0.01: %w", o.CPUs, errdef.ErrInvalidArgument)
	}
	if _, _, err := capList(o.CapAdd, "--cap-add"); err != nil {
		return err
	}
	_, _, err := capList(o.CapDrop, "--cap-drop")
	return err
}

// cpuPeriod is the CFS period --cpus is a quota of.
const cpuPeriod = 100000

func cpuQuota(cpus float64) int64 { return int64(cpus * cpuPeriod) }

// volumeMount reads SRC:DST[:ro|rw] into a bind mount of the host path SRC (made absolute) at
// DST, checked against the mounts made before it.
func volumeMount(v string, mounts []specs.Mount) (specs.Mount, error) {
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return specs.Mount{}, fmt.Errorf("--volume %q: want SRC:DST[:ro|rw]: %w", v, errdef.ErrInvalidArgument)
	}
	src, err := filepath.Abs(parts[0])
	if err != nil {
		return specs.Mount{}, err
	}
	dst, err := bundle.CheckPath(parts[1], "--volume", mounts)
	if err != nil {
		return specs.Mount{}, err
	}
	m := specs.Mount{Destination: dst, Type: "bind", Source: src, Options: []string{"rbind", "rprivate"}}
	if len(parts) == 3 {
		switch parts[2] {
		case "ro":
			m.Options = append(m.Options, "ro")
		case "rw":
		default:
			return specs.Mount{}, fmt.Errorf("--volume %q: option %q: ro or rw: %w", v, parts[2], errdef.ErrInvalidArgument)
		}
	}
	return m, nil
}

// parseVolume is volumeMount of a source that must exist.
func parseVolume(v string, mounts []specs.Mount) (specs.Mount, error) {
	m, err := volumeMount(v, mounts)
	if err != nil {
		return specs.Mount{}, err
	}
	if _, err := os.Stat(m.Source); err != nil {
		return specs.Mount{}, fmt.Errorf("--volume %q: %w", v, err)
	}
	return m, nil
}

// withLimits: --memory, --pids-limit and --cpus (checked by Check).
func (o Options) withLimits(s *specs.Spec) error {
	if o.Memory == 0 && o.PidsLimit == 0 && o.CPUs == 0 {
		return nil
	}
	if s.Linux.Resources == nil {
		s.Linux.Resources = &specs.LinuxResources{}
	}
	r := s.Linux.Resources
	if o.Memory > 0 {
		mem := o.Memory
		r.Memory = &specs.LinuxMemory{Limit: &mem}
	}
	if o.PidsLimit > 0 {
		pids := o.PidsLimit
		r.Pids = &specs.LinuxPids{Limit: &pids}
	}
	if o.CPUs > 0 {
		period, quota := uint64(cpuPeriod), cpuQuota(o.CPUs)
		r.CPU = &specs.LinuxCPU{Period: &period, Quota: &quota}
	}
	return nil
}

// withCapabilities drops then adds capabilities in the bounding, effective and permitted sets
// (and the ambient and inheritable ones, for drops), as podman's --cap-drop and --cap-add.
func (o Options) withCapabilities(s *specs.Spec) error {
	if len(o.CapAdd) == 0 && len(o.CapDrop) == 0 {
		return nil
	}
	dropped, dropAll, err := capList(o.CapDrop, "--cap-drop")
	if err != nil {
		return err
	}
	added, addAll, err := capList(o.CapAdd, "--cap-add")
	if err != nil {
		return err
	}
	if addAll {
		added = specdefault.Capabilities
	}
	if s.Process.Capabilities == nil {
		s.Process.Capabilities = &specs.LinuxCapabilities{}
	}
	c := s.Process.Capabilities
	edit := func(set []string, addTo bool) []string {
		var out []string
		for _, n := range set {
			if !dropAll && !slices.Contains(dropped, n) {
				out = append(out, n)
			}
		}
		if addTo {
			for _, n := range added {
				if !slices.Contains(out, n) {
					out = append(out, n)
				}
			}
		}
		return out
	}
	c.Bounding, c.Effective, c.Permitted = edit(c.Bounding, true), edit(c.Effective, true), edit(c.Permitted, true)
	c.Ambient, c.Inheritable = edit(c.Ambient, false), edit(c.Inheritable, false)
	return nil
}

// capList reads capability names (specdefault.CapabilityName: CAP_X or x), or ALL, which it
// reports instead of a list.
func capList(names []string, flag string) ([]string, bool, error) {
	var out []string
	for _, n := range names {
		if strings.EqualFold(n, "ALL") {
			return nil, true, nil
		}
		u := specdefault.CapabilityName(n)
		if !slices.Contains(specdefault.Capabilities, u) {
			return nil, false, fmt.Errorf("%s %s: %w: unknown capability", flag, n, errdef.ErrInvalidArgument)
		}
		out = append(out, u)
	}
	return out, false, nil
}

func or(r, def io.Reader) io.Reader {
	if r == nil {
		return def
	}
	return r
}

func orW(w, def io.Writer) io.Writer {
	if w == nil {
		return def
	}
	return w
}
