package main

import (
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/wharfoci/wharf/image"
	"github.com/wharfoci/wharf/image/bundle"
)

func newConfigCmd(opts *globalOptions) *cobra.Command {
	var (
		entrypoint, cmdArgs, env, labels, ports, volumes []string
		workdir, user, stopSignal                        string
	)
	c := &cobra.Command{
		Use:   "config IMAGE [flags]",
		Short: "Change an image's config (entrypoint, cmd, env, user, labels…)",
		Long: `Store a new config made from IMAGE's with the changes given, and a new manifest pointing
at it, and move IMAGE's tag to it (an IMAGE named by digest gets the new manifest untagged).
The old manifest stays stored, reachable by its digest, until "wharf gc".

--entrypoint and --cmd replace the whole list (repeat the flag for each element; an empty
value clears it). --env KEY=VALUE sets a variable (replacing the same KEY). --label KEY=VALUE
sets a label; --port and --volume add an exposed port and a volume.`,
		Example: `  wharf config oci:./img:app --entrypoint /bin/app --cmd serve --cmd --port=80 --env MODE=prod
  wharf config oci:./img:app --user www:www --workdir /srv --label org.opencontainers.image.version=1.2`,
		Args: exactArgs(1),
	}
	f := c.Flags()
	f.StringArrayVar(&entrypoint, "entrypoint", nil, "entrypoint element (repeatable; replaces the list)")
	f.StringArrayVar(&cmdArgs, "cmd", nil, "cmd element (repeatable; replaces the list)")
	f.StringArrayVar(&env, "env", nil, "KEY=VALUE environment variable (repeatable)")
	f.StringVar(&workdir, "workdir", "", "working directory")
	f.StringVar(&user, "user", "", "user[:group] the process runs as")
	f.StringArrayVar(&labels, "label", nil, "KEY=VALUE label (repeatable)")
	f.StringArrayVar(&ports, "port", nil, "exposed port, PORT[/PROTO] (repeatable)")
	f.StringArrayVar(&volumes, "volume", nil, "volume path (repeatable)")
	f.StringVar(&stopSignal, "stop-signal", "", "signal that stops the container (SIGTERM…)")
	platform := platformFlag(c, "the platform whose image to change when IMAGE is an index")
	c.RunE = func(cmd *cobra.Command, args []string) error {
		for _, kv := range append(append([]string{}, env...), labels...) {
			if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
				return usageErrorf("%q: want KEY=VALUE", kv)
			}
		}
		for _, v := range volumes {
			if !strings.HasPrefix(v, "/") {
				return usageErrorf("--volume %q: want an absolute path", v)
			}
		}
		p, err := platform()
		if err != nil {
			return err
		}
		sde, err := sourceDateEpoch()
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		h, d, err := openImage(ctx, args[0])
		if err != nil {
			return err
		}
		defer h.Close()
		if image.IsIndex(d.MediaType) {
			want := image.DefaultPlatform()
			if p != nil {
				want = *p
			}
			if d, err = image.SelectManifest(ctx, h.Layout, d, want); err != nil {
				return err
			}
		}
		fl := cmd.Flags()
		md, err := bundle.Mutate(ctx, h.Layout, d, h.Ref.Tag, "wharf config "+strings.Join(args[1:], " "), sde, func(img *ocispec.Image) error {
			cfg := &img.Config
			if fl.Changed("entrypoint") {
				cfg.Entrypoint = nonEmpty(entrypoint)
			}
			if fl.Changed("cmd") {
				cfg.Cmd = nonEmpty(cmdArgs)
			}
			for _, kv := range env {
				k, _, _ := strings.Cut(kv, "=")
				out := cfg.Env[:0:0]
				for _, e := range cfg.Env {
					if ek, _, _ := strings.Cut(e, "="); ek != k {
						out = append(out, e)
					}
				}
				cfg.Env = append(out, kv)
			}
			if fl.Changed("workdir") {
				cfg.WorkingDir = workdir
			}
			if fl.Changed("user") {
				cfg.User = user
			}
			for _, kv := range labels {
				k, v, _ := strings.Cut(kv, "=")
				if cfg.Labels == nil {
					cfg.Labels = map[string]string{}
				}
				cfg.Labels[k] = v
			}
			for _, p := range ports {
				if !strings.Contains(p, "/") {
					p += "/tcp"
				}
				if cfg.ExposedPorts == nil {
					cfg.ExposedPorts = map[string]struct{}{}
				}
				cfg.ExposedPorts[p] = struct{}{}
			}
			for _, v := range volumes {
				if cfg.Volumes == nil {
					cfg.Volumes = map[string]struct{}{}
				}
				cfg.Volumes[v] = struct{}{}
			}
			if fl.Changed("stop-signal") {
				cfg.StopSignal = stopSignal
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := h.Save(ctx); err != nil {
			return err
		}
		if opts.JSON {
			return writeJSON(cmd.OutOrStdout(), tagResult{Layout: h.Ref.Path, Tag: h.Ref.Tag, Digest: md.Digest.String()})
		}
		opts.infof(cmd, "configured %s → %s", args[0], md.Digest)
		return nil
	}
	return c
}

// nonEmpty turns a list holding one empty string (--cmd "") into an empty list.
func nonEmpty(v []string) []string {
	if len(v) == 1 && v[0] == "" {
		return nil
	}
	return v
}
