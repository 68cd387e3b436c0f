package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	imagecopy "github.com/wharfoci/wharf/image/copy"
	"github.com/wharfoci/wharf/imageref"
)

// syncResult is one tag `wharf sync --json` reports.
type syncResult struct {
	Tag    string `json:"tag"`
	Digest string `json:"digest"`
	Copied int    `json:"copied"`
	Bytes  int64  `json:"bytes"`
}

const syncLong = `Copy every tag of SRC — a registry repository (docker://HOST/REPO), a layout or an archive —
to DST, a repository, layout or archive, under the same tags, as skopeo sync does: each tag is a
"wharf copy" (verified, blobs DST holds skipped, the tag written last), in tag order, stopping
at the first failure. SRC with a tag syncs that tag only. --dry-run lists what would be copied.`

func newSyncCmd(opts *globalOptions) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "sync SRC DST",
		Short: "Copy every tag of a repository or layout to another (a mirror)",
		Long:  syncLong,
		Example: `  wharf sync docker://registry.example/app docker://localhost:5000/mirror/app
  wharf sync --all docker://localhost:5000/app oci:./backup
  wharf sync oci:./images docker://localhost:5000/images`,
		Args: exactArgs(2),
	}
	cf := addCopyFlags(cmd, "each index")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "list the tags that would be copied, copy nothing")
	rf := addRegistryFlags(cmd, true)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		base, err := cf.options()
		if err != nil {
			return err
		}
		srcRef, dstRef, err := parseSyncNames(args[0], args[1])
		if err != nil {
			return err
		}
		src, err := openAny(ctx, srcRef, false, rf)
		if err != nil {
			return err
		}
		defer src.Close()
		tags, err := syncTags(ctx, src)
		if err != nil {
			return err
		}
		if dryRun {
			for _, t := range tags {
				fmt.Fprintf(cmd.OutOrStdout(), "would copy %s to %s\n", withTag(srcRef, t), withTag(dstRef, t))
			}
			return nil
		}
		dst, err := openAny(ctx, dstRef, true, rf)
		if err != nil {
			return err
		}
		defer dst.Close()
		results, err := syncAll(ctx, opts, cmd, src, dst, tags, base)
		if err != nil {
			return err
		}
		if err := dst.Save(ctx); err != nil {
			return err
		}
		if opts.JSON {
			return writeJSON(cmd.OutOrStdout(), results)
		}
		opts.infof(cmd, "synced %d tag%s from %s to %s", len(tags), plural(len(tags)), srcRef, dstRef)
		return nil
	}
	return cmd
}

// syncAll copies each tag of src to dst, in order, stopping at the first failure.
func syncAll(ctx context.Context, opts *globalOptions, cmd *cobra.Command, src, dst *imageref.Handle, tags []string, o imagecopy.Options) ([]syncResult, error) {
	var results []syncResult
	for _, tag := range tags {
		from, to := withTag(src.Ref, tag), withTag(dst.Ref, tag)
		root, err := src.Target().Resolve(ctx, tag)
		if err != nil {
			return nil, fmt.Errorf("sync %s: %w", from, err)
		}
		pr := newCopyProgress(pickProgressMode(opts, cmd.ErrOrStderr()), cmd.ErrOrStderr())
		d, err := copyImage(ctx, src.Target(), root, src, dst, tag, o, pr)
		if err != nil {
			return nil, fmt.Errorf("sync %s to %s: %w", from, to, err)
		}
		results = append(results, syncResult{Tag: tag, Digest: d.Digest.String(), Copied: pr.copied, Bytes: pr.bytes})
		opts.infof(cmd, "synced %s to %s: %s (%d blobs copied, %s)", from, to, d.Digest, pr.copied, humanBytes(pr.bytes))
	}
	return results, nil
}

// parseSyncNames parses sync's SRC (a repository or layout, perhaps with a tag) and DST (a
// repository or layout).
func parseSyncNames(src, dst string) (srcRef, dstRef imageref.Reference, err error) {
	if srcRef, err = imageref.ParseRepository(src); err != nil {
		return srcRef, dstRef, asUsage(err)
	}
	if dstRef, err = imageref.ParseRepository(dst); err != nil {
		return srcRef, dstRef, asUsage(err)
	}
	if srcRef.Digest != "" || dstRef.Ref() != "" {
		err = usageErrorf("sync names a repository or a layout: SRC may have a tag, DST neither tag nor digest")
	}
	return srcRef, dstRef, err
}

// syncTags lists the tags to sync: the one SRC names, or all of its repository or layout; at
// least one.
func syncTags(ctx context.Context, h *imageref.Handle) ([]string, error) {
	if h.Ref.Tag != "" {
		return []string{h.Ref.Tag}, nil
	}
	tags, err := h.Tags(ctx)
	if err != nil {
		return nil, err
	}
	if len(tags) == 0 {
		return nil, fmt.Errorf("sync %s: no tags to copy", h.Ref)
	}
	return tags, nil
}

// withTag is r named with tag.
func withTag(r imageref.Reference, tag string) imageref.Reference {
	r.Tag, r.Digest = tag, ""
	return r
}
