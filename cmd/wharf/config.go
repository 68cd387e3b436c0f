package main

import (
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/wharfoci/wharf/image"
	"github.com/wharfoci/wharf/image/bundle"
)

func newConfigCmd(opts *globalOptions) *cobra.Command {
	c := &cobra.Command{
		Use:   "config IMAGE [flags]",
		Short: "Change an image's config (entrypoint, cmd, env, user, labels…)",
		Long: `Store a new config made from IMAGE's with the changes given, and a new manifest pointing
at it, and move IMAGE's tag to it (an IMAGE named by digest gets the new manifest untagged).
The old manifest stays stored, reachable by its digest, until "wharf gc".

--entrypoint and --cmd replace the whole list (repeat the flag for each element; an empty
value clears it). --env KEY=VALUE sets a variable (replacing the same KEY where it stands).
--label KEY=VALUE sets a label; --port and --volume add an exposed port and a volume.`,
		Example: `  wharf config oci:./img:app --entrypoint /bin/app --cmd serve --cmd --port=80 --env MODE=prod
  wharf config oci:./img:app --user www:www --workdir /srv --label org.opencontainers.image.version=1.2`,
		Args: exactArgs(1),
	}
	cf := addConfigFlags(c)
	platform := platformFlag(c, "the platform whose image to change when IMAGE is an index")
	c.RunE = func(cmd *cobra.Command, args []string) error {
		edits, err := cf.edits(cmd)
		if err != nil {
			return err
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
		if d, err = image.SelectManifest(ctx, h.Layout, d, p); err != nil {
			return err
		}
		md, err := bundle.Mutate(ctx, h.Layout, d, h.Ref.Tag, "wharf config "+strings.Join(args[1:], " "), sde, func(img *ocispec.Image) error {
			return image.EditConfig(&img.Config, edits...)
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

// configFlags are wharf config's changes, each a flag.
type configFlags struct {
	entrypoint, cmd, env, labels, ports, volumes []string
	workdir, user, stopSignal                    string
}

func addConfigFlags(c *cobra.Command) *configFlags {
	cf := &configFlags{}
	f := c.Flags()
	f.StringArrayVar(&cf.entrypoint, "entrypoint", nil, "entrypoint element (repeatable; replaces the list)")
	f.StringArrayVar(&cf.cmd, "cmd", nil, "cmd element (repeatable; replaces the list)")
	f.StringArrayVar(&cf.env, "env", nil, "KEY=VALUE environment variable (repeatable)")
	f.StringVar(&cf.workdir, "workdir", "", "working directory")
	f.StringVar(&cf.user, "user", "", "user[:group] the process runs as")
	f.StringArrayVar(&cf.labels, "label", nil, "KEY=VALUE label (repeatable)")
	f.StringArrayVar(&cf.ports, "port", nil, "exposed port, PORT[/PROTO] (repeatable)")
	f.StringArrayVar(&cf.volumes, "volume", nil, "volume path (repeatable)")
	f.StringVar(&cf.stopSignal, "stop-signal", "", "signal that stops the container (SIGTERM…)")
	return cf
}

// edits turns the flags given into config edits, in a fixed order (entrypoint, cmd, env,
// workdir, user, labels, ports, volumes, stop signal), checked: a malformed one is a usage
// error before any image is read.
func (cf *configFlags) edits(cmd *cobra.Command) ([]image.ConfigEdit, error) {
	changed := cmd.Flags().Changed
	var edits []image.ConfigEdit
	if changed("entrypoint") {
		edits = append(edits, image.WithEntrypoint(nonEmpty(cf.entrypoint)...))
	}
	if changed("cmd") {
		edits = append(edits, image.WithCmd(nonEmpty(cf.cmd)...))
	}
	if len(cf.env) > 0 {
		edits = append(edits, image.WithEnv(cf.env...))
	}
	if changed("workdir") {
		edits = append(edits, image.WithWorkingDir(cf.workdir))
	}
	if changed("user") {
		edits = append(edits, image.WithUser(cf.user))
	}
	labels, err := parseKeyValues("--label", cf.labels)
	if err != nil {
		return nil, err
	}
	for k, v := range labels {
		edits = append(edits, image.WithLabel(k, v))
	}
	for _, p := range cf.ports {
		edits = append(edits, image.WithExposedPort(p))
	}
	for _, v := range cf.volumes {
		edits = append(edits, image.WithVolume(v))
	}
	if changed("stop-signal") {
		edits = append(edits, image.WithStopSignal(cf.stopSignal))
	}
	// An edit's checks do not depend on the config it edits: a scratch config checks them all.
	if err := image.EditConfig(&ocispec.ImageConfig{}, edits...); err != nil {
		return nil, asUsage(err)
	}
	return edits, nil
}

// nonEmpty turns a list holding one empty string (--cmd "") into an empty list.
func nonEmpty(v []string) []string {
	if len(v) == 1 && v[0] == "" {
		return nil
	}
	return v
}
