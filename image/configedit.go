package image

import (
	"fmt"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/errdef"
)

// A ConfigEdit changes the execution parameters of an image config (config.md "config"). Edits
// are composed in order by EditConfig, in the model of containerd's oci.SpecOpts: `wharf config`
// makes one per flag, and a builder one per ENV, LABEL, EXPOSE, VOLUME, USER, WORKDIR,
// ENTRYPOINT, CMD or STOPSIGNAL instruction. An edit checks its own arguments and returns an
// error wrapping errdef.ErrInvalidArgument for a malformed one; it never depends on the
// config it edits for that, so applying edits to an empty config checks them all.
type ConfigEdit func(*ocispec.ImageConfig) error

// EditConfig applies edits to c in order and stops at the first error (c may then hold the
// edits before it).
func EditConfig(c *ocispec.ImageConfig, edits ...ConfigEdit) error {
	for _, e := range edits {
		if err := e(c); err != nil {
			return err
		}
	}
	return nil
}

// WithEntrypoint replaces Entrypoint with args (none clears it).
func WithEntrypoint(args ...string) ConfigEdit {
	return func(c *ocispec.ImageConfig) error {
		c.Entrypoint = nilIfEmpty(args)
		return nil
	}
}

// WithCmd replaces Cmd with args (none clears it).
func WithCmd(args ...string) ConfigEdit {
	return func(c *ocispec.ImageConfig) error {
		c.Cmd = nilIfEmpty(args)
		return nil
	}
}

func nilIfEmpty(v []string) []string {
	if len(v) == 0 {
		return nil
	}
	return append([]string(nil), v...)
}

// WithEnv sets each KEY=VALUE of kv in Env (see SetEnv). An entry without "=" or with an
// empty KEY is refused.
func WithEnv(kv ...string) ConfigEdit {
	return func(c *ocispec.ImageConfig) error {
		for _, e := range kv {
			if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
				return fmt.Errorf("env %q: %w: want KEY=VALUE", e, errdef.ErrInvalidArgument)
			}
		}
		c.Env = SetEnv(c.Env, kv...)
		return nil
	}
}

// SetEnv returns env (a process environment, KEY=VALUE entries) with each entry of kv set:
// it replaces, where they stand, the entries of env with its KEY (the text before the first
// "=", or the whole entry when it has none), or is appended when there is none. env is not
// modified. This is how `wharf run --env`, `wharf config --env` and a Dockerfile's ENV set a
// variable (as docker and buildah do).
func SetEnv(env []string, kv ...string) []string {
	out := append([]string(nil), env...)
	for _, a := range kv {
		replaced := false
		for i, e := range out {
			if envKey(e) == envKey(a) {
				out[i], replaced = a, true
			}
		}
		if !replaced {
			out = append(out, a)
		}
	}
	return out
}

func envKey(e string) string {
	k, _, _ := strings.Cut(e, "=")
	return k
}

// WithLabel sets the label key (which may not be empty) to value.
func WithLabel(key, value string) ConfigEdit {
	return func(c *ocispec.ImageConfig) error {
		if key == "" {
			return fmt.Errorf("label %q: %w: empty key", key+"="+value, errdef.ErrInvalidArgument)
		}
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		c.Labels[key] = value
		return nil
	}
}

// WithExposedPort adds port, PORT[/PROTO] (PROTO tcp when not given), to ExposedPorts.
func WithExposedPort(port string) ConfigEdit {
	return func(c *ocispec.ImageConfig) error {
		if !strings.Contains(port, "/") {
			port += "/tcp"
		}
		c.ExposedPorts = addTo(c.ExposedPorts, port)
		return nil
	}
}

// WithVolume adds path, which must be absolute, to Volumes. (Whether a runtime may mount
// there is checked when the image is converted to a bundle.)
func WithVolume(path string) ConfigEdit {
	return func(c *ocispec.ImageConfig) error {
		if !strings.HasPrefix(path, "/") {
			return fmt.Errorf("volume %q: %w: want an absolute path", path, errdef.ErrInvalidArgument)
		}
		c.Volumes = addTo(c.Volumes, path)
		return nil
	}
}

// addTo adds k to the set m (made when nil) and returns it.
func addTo(m map[string]struct{}, k string) map[string]struct{} {
	if m == nil {
		m = map[string]struct{}{}
	}
	m[k] = struct{}{}
	return m
}

// WithUser sets User (user[:group], names or ids, resolved in the image at run time).
func WithUser(user string) ConfigEdit {
	return func(c *ocispec.ImageConfig) error {
		c.User = user
		return nil
	}
}

// WithWorkingDir sets WorkingDir.
func WithWorkingDir(dir string) ConfigEdit {
	return func(c *ocispec.ImageConfig) error {
		c.WorkingDir = dir
		return nil
	}
}

// WithStopSignal sets StopSignal (SIGTERM, or a signal number).
func WithStopSignal(sig string) ConfigEdit {
	return func(c *ocispec.ImageConfig) error {
		c.StopSignal = sig
		return nil
	}
}
