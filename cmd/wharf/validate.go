package main

import (
	"fmt"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/wharfoci/wharf/image/layout"
)

// validateOutput is what `wharf validate --json` prints on success.
type validateOutput struct {
	Image string `json:"image"`
	Valid bool   `json:"valid"`
	layout.ValidateResult
}

func newValidateCmd(opts *globalOptions) *cobra.Command {
	var vopts layout.ValidateOptions
	cmd := &cobra.Command{
		Use:   "validate IMAGE",
		Short: "Check every blob an image reaches: digest, size, schema and semantics",
		Long: `Check the image IMAGE names — or, for oci:DIR or oci-archive:FILE without a tag, every
entry of index.json — and everything it reaches: every descriptor (digest grammar, size,
embedded data), every blob (present, not a symlink, exactly its size, hashing to its digest),
every index, manifest and config (image-spec JSON schema and semantic rules, nested indexes),
each config against its manifest (one diff_id per layer) and, unless --diff-ids=false, each
layer's uncompressed digest against its diff_id.

The first problem ends the check with exit code 1 and one line naming the path to the blob at
fault, e.g.:
  wharf: validate oci:img:latest: index.json[latest] → sha256:… (manifest) → sha256:… (layer): digest mismatch: …`,
		Example: `  wharf validate oci:./busybox:latest
  wharf validate oci:./busybox              # every tag and untagged entry
  wharf validate --json oci-archive:./busybox.tar | jq .blobs`,
		Args: exactArgs(1),
	}
	cmd.Flags().BoolVar(&vopts.DiffIDs, "diff-ids", true, "decompress layers and check them against the config's rootfs.diff_ids")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		r, err := parseImage(args[0])
		if err != nil {
			return err
		}
		h, err := openRef(ctx, r, false)
		if err != nil {
			return err
		}
		defer h.Close()
		var roots []ocispec.Descriptor
		if r.Ref() != "" {
			d, err := h.ResolveImage(ctx)
			if err != nil {
				return fmt.Errorf("validate %s: %w", r, err)
			}
			roots = []ocispec.Descriptor{d}
		}
		if opts.Debug {
			vopts.Progress = func(path []layout.Step) {
				s := path[len(path)-1]
				opts.debugf(cmd, "ok %s%s (%s)", strings.Repeat("  ", len(path)-1), s.Digest, s.Kind)
			}
		}
		res, err := h.Layout.Validate(ctx, roots, vopts)
		if err != nil {
			return fmt.Errorf("validate %s: %w", r, err)
		}
		if opts.JSON {
			return writeJSON(cmd.OutOrStdout(), validateOutput{Image: r.String(), Valid: true, ValidateResult: res})
		}
		if opts.Quiet {
			return nil
		}
		var parts []string
		for _, c := range []struct {
			n         int
			one, many string
		}{{res.Indexes, "index", "indexes"}, {res.Manifests, "manifest", "manifests"}, {res.Configs, "config", "configs"},
			{res.Layers, "layer", "layers"}, {res.Others, "other blob", "other blobs"}, {res.Skipped, "absent non-distributable layer", "absent non-distributable layers"}} {
			if c.n > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", c.n, plural2(c.n, c.one, c.many)))
			}
		}
		_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s: valid: %d %s, %d %s, %s (%s)\n",
			r, res.Roots, plural2(res.Roots, "root", "roots"), res.Blobs, plural2(res.Blobs, "blob", "blobs"), humanBytes(res.Bytes), strings.Join(parts, ", "))
		return err
	}
	return cmd
}

func plural2(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// humanBytes formats n as "1.0 MiB", "512 B"…
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
