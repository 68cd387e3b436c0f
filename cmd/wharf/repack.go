package main

import (
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/wharfoci/wharf/image"
	"github.com/wharfoci/wharf/image/bundle"
)

// sourceDateEpoch reads SOURCE_DATE_EPOCH (seconds since 1970), nil when unset.
func sourceDateEpoch() (*time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return nil, usageErrorf("SOURCE_DATE_EPOCH=%q: not a number of seconds", s)
	}
	t := time.Unix(n, 0).UTC()
	return &t, nil
}

type repackResult struct {
	Manifest string `json:"manifest"`
	Config   string `json:"config"`
	Layer    string `json:"layer"`
	DiffID   string `json:"diffID"`
	Changes  int    `json:"changes"`
}

func newRepackCmd(opts *globalOptions) *cobra.Command {
	var compress, createdBy string
	cmd := &cobra.Command{
		Use:   "repack BUNDLE oci:DIR:TAG",
		Short: "Commit the changes made in a bundle's rootfs as a new layer",
		Long: `Write what changed in BUNDLE/rootfs since "wharf unpack" (or the last repack) as one new
layer on top of the bundle's image: additions and modifications in full, deletions as
whiteouts, replaced directories with an opaque whiteout. Changes are found from what unpack
recorded (size, mtime, ctime, inode, mode, owner), without reading unchanged files. The tar is
sorted and carries no names or access times; SOURCE_DATE_EPOCH clamps mtimes and sets the
created time. A new config (diff_ids and history extended) and manifest are stored in the
layout DIR, which must hold the bundle's image, and tagged TAG.`,
		Example: `  wharf unpack oci:./img:v1 b && echo hi > b/rootfs/hello && wharf repack b oci:./img:v2
  SOURCE_DATE_EPOCH=0 wharf repack --compress zstd b oci:./img:v2`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var comp image.Compression
			switch compress {
			case "gzip":
				comp = image.Gzip
			case "zstd":
				comp = image.Zstd
			case "none":
				comp = image.Uncompressed
			default:
				return usageErrorf("--compress %q: want gzip, zstd or none", compress)
			}
			sde, err := sourceDateEpoch()
			if err != nil {
				return err
			}
			r, err := parseImage(args[1])
			if err != nil {
				return err
			}
			tag := r.Ref()
			if tag == "" {
				tag = "latest"
			}
			h, err := openRef(cmd.Context(), r, false)
			if err != nil {
				return err
			}
			defer h.Close()
			res, err := bundle.Repack(cmd.Context(), h.Layout, args[0], tag, bundle.RepackOptions{Compression: comp, SourceDateEpoch: sde, CreatedBy: createdBy})
			if err != nil {
				return err
			}
			if err := h.Save(cmd.Context()); err != nil {
				return err
			}
			if opts.JSON {
				return writeJSON(cmd.OutOrStdout(), repackResult{Manifest: res.Manifest.Digest.String(), Config: res.Config.Digest.String(),
					Layer: res.Layer.Digest.String(), DiffID: res.DiffID.String(), Changes: res.Changes})
			}
			opts.infof(cmd, "repacked %d changes as layer %s; %s:%s → %s", res.Changes, res.Layer.Digest, r.Path, tag, res.Manifest.Digest)
			return nil
		},
	}
	cmd.Flags().StringVar(&compress, "compress", "gzip", "layer compression: gzip, zstd or none")
	cmd.Flags().StringVar(&createdBy, "history.created_by", "", "created_by of the new history entry (default \"wharf repack\")")
	return cmd
}
