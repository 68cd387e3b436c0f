package runtime

import (
	"github.com/wharfoci/wharf/internal/specdefault"

	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/wharfoci/wharf/errdef"
)

const maxConfig = 4 << 20

// LoadSpec reads and validates bundle/config.json.
func LoadSpec(bundle string) (*specs.Spec, error) {
	f, err := os.Open(filepath.Join(bundle, "config.json"))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("read bundle %s: config.json: %w", bundle, errdef.ErrNotFound)
		}
		return nil, fmt.Errorf("read bundle %s: %w", bundle, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxConfig+1))
	if err != nil {
		return nil, fmt.Errorf("read bundle %s: %w", bundle, err)
	}
	if len(b) > maxConfig {
		return nil, fmt.Errorf("read bundle %s: config.json over %d bytes: %w", bundle, maxConfig, errdef.ErrTooLarge)
	}
	var s specs.Spec
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("parse %s/config.json: %v: %w", bundle, err, errdef.ErrInvalidArgument)
	}
	if err := ValidateSpec(&s); err != nil {
		return nil, fmt.Errorf("validate %s/config.json: %w", bundle, err)
	}
	return &s, nil
}

var nsTypes = map[specs.LinuxNamespaceType]bool{
	specs.PIDNamespace: true, specs.NetworkNamespace: true, specs.MountNamespace: true,
	specs.IPCNamespace: true, specs.UTSNamespace: true, specs.UserNamespace: true,
	specs.CgroupNamespace: true, specs.TimeNamespace: true,
}

// ValidateSpec checks what the runtime relies on: a supported ociVersion major, a root, a
// process with args and an absolute cwd, known and unique namespaces, absolute mount
// destinations.
func ValidateSpec(s *specs.Spec) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf(format+": %w", append(a, errdef.ErrInvalidArgument)...)
	}
	if s.Version == "" {
		return bad("ociVersion is missing")
	}
	major, _, _ := strings.Cut(s.Version, ".")
	if n, err := strconv.Atoi(major); err != nil || n != specs.VersionMajor {
		return fmt.Errorf("ociVersion %q: only major version %d is supported: %w", s.Version, specs.VersionMajor, errdef.ErrUnsupported)
	}
	if s.Root == nil || s.Root.Path == "" {
		return bad("root.path is missing")
	}
	if s.Process == nil {
		return bad("process is missing")
	}
	if err := validateProcess(s.Process); err != nil {
		return err
	}
	for i, m := range s.Mounts {
		if !filepath.IsAbs(m.Destination) {
			return bad("mounts[%d]: destination %q is not absolute", i, m.Destination)
		}
	}
	if s.Linux != nil {
		seen := map[specs.LinuxNamespaceType]bool{}
		for _, ns := range s.Linux.Namespaces {
			if !nsTypes[ns.Type] {
				return bad("unknown namespace type %q", ns.Type)
			}
			if seen[ns.Type] {
				return bad("duplicate namespace %q", ns.Type)
			}
			seen[ns.Type] = true
			if ns.Path != "" && !filepath.IsAbs(ns.Path) {
				return bad("namespace %s: path %q is not absolute", ns.Type, ns.Path)
			}
		}
		if (len(s.Linux.UIDMappings) > 0 || len(s.Linux.GIDMappings) > 0) && !seen[specs.UserNamespace] {
			return bad("uid/gid mappings need a user namespace")
		}
		for k := range s.Linux.Sysctl {
			if k == "" || strings.Contains(k, "..") || strings.HasPrefix(k, "/") {
				return bad("invalid sysctl %q", k)
			}
		}
	}
	if err := validateSysctls(s); err != nil {
		return err
	}
	if s.Hooks != nil {
		all := [][]specs.Hook{s.Hooks.Prestart, s.Hooks.CreateRuntime, s.Hooks.CreateContainer, //nolint:staticcheck
			s.Hooks.StartContainer, s.Hooks.Poststart, s.Hooks.Poststop}
		for _, hs := range all {
			for _, h := range hs {
				if !filepath.IsAbs(h.Path) {
					return bad("hook path %q is not absolute", h.Path)
				}
			}
		}
	}
	return nil
}

func validateProcess(p *specs.Process) error {
	if len(p.Args) == 0 && p.CommandLine == "" {
		return fmt.Errorf("process.args is empty: %w", errdef.ErrInvalidArgument)
	}
	if err := validateLSM(p); err != nil {
		return err
	}
	if p.Cwd == "" || !filepath.IsAbs(p.Cwd) {
		return fmt.Errorf("process.cwd %q is not absolute: %w", p.Cwd, errdef.ErrInvalidArgument)
	}
	for _, r := range p.Rlimits {
		if _, ok := rlimitNames[r.Type]; !ok {
			return fmt.Errorf("unknown rlimit %q: %w", r.Type, errdef.ErrInvalidArgument)
		}
		if r.Soft > r.Hard {
			return fmt.Errorf("rlimit %s: soft %d above hard %d: %w", r.Type, r.Soft, r.Hard, errdef.ErrInvalidArgument)
		}
	}
	if p.Capabilities != nil {
		for _, set := range [][]string{p.Capabilities.Bounding, p.Capabilities.Effective, p.Capabilities.Permitted,
			p.Capabilities.Inheritable, p.Capabilities.Ambient} {
			for _, c := range set {
				if _, ok := capNumber(c); !ok {
					return fmt.Errorf("unknown capability %q: %w", c, errdef.ErrInvalidArgument)
				}
			}
		}
	}
	return nil
}

// DefaultSpec is the config.json `spec` writes: runc's default (busybox-friendly) container.
func DefaultSpec() *specs.Spec { return specdefault.Spec() }
