package main

import (
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/wharfoci/wharf/image"
	imagecopy "github.com/wharfoci/wharf/image/copy"
)

// copyOutput is what `wharf copy --json` prints.
type copyOutput struct {
	Source      string             `json:"source"`
	Destination string             `json:"destination"`
	Descriptor  ocispec.Descriptor `json:"descriptor"`
	Copied      int                `json:"copied"`
	Skipped     int                `json:"skipped"`
	Bytes       int64              `json:"bytes"`
}

func newCopyCmd(opts *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "copy SRC DST",
		Aliases: []string{"cp"},
		Short:   "Copy an image between layouts, archives and registries",
		Long: `Copy the image SRC names, and everything it references, to DST, then name it there. Blobs
DST already holds are skipped; every byte is verified against its digest and size before DST
keeps it, and the tag is written last, so an interrupted or failed copy never leaves a tag
pointing at an incomplete image. DST is created when missing (an oci-archive file is written
once the copy is complete).

When SRC is an index (a multi-platform image), only the manifest for this machine's platform
is copied, as skopeo does; --platform picks another, --all copies the whole index. Without a
tag, DST is named with SRC's tag (or "latest" when SRC has none).

Progress goes to stderr. On a terminal, a bar for each blob in flight and a total bar are
redrawn in place, and each finished blob leaves a line ("copied", "skipped" or "mounted", its
kind, short digest and size); elsewhere only those lines are printed, or with --json one JSON
object per blob ({"event","mediaType","digest","size"}). --quiet prints none.`,
		Example: `  wharf copy oci:./busybox:latest oci:./mirror:v1
  wharf copy --all oci:./multi:latest oci-archive:./multi.tar:latest
  wharf copy --platform linux/arm64 oci:./multi:latest oci:./arm64
  wharf copy oci-archive:./busybox.tar oci:./unpacked:latest
  wharf copy oci:./busybox:latest docker://localhost:5000/busybox:v1
  wharf copy --all docker://registry.example/app:v2 docker://localhost:5000/app:v2
  wharf copy --format v2s2 oci:./busybox:latest docker://localhost:5000/busybox:docker`,
		Args: exactArgs(2),
	}
	cf := addCopyFlags(cmd, "an index")
	rf := addRegistryFlags(cmd, true)
	var format string
	cmd.Flags().StringVar(&format, "format", "", "convert manifests to this format: oci or v2s2 (docker); digests of converted documents change")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		copyOpts, err := cf.options()
		if err != nil {
			return err
		}
		p, all := copyOpts.Platform, copyOpts.AllPlatforms
		dstRef, err := parseImage(args[1])
		if err != nil {
			return err
		}
		if dstRef.Digest != "" {
			return usageErrorf("%s: a destination is named by a tag, not a digest", args[1])
		}
		src, root, err := openAnyImage(ctx, args[0], rf)
		if err != nil {
			return err
		}
		defer src.Close()
		tag := dstRef.Tag
		if tag == "" {
			if tag = src.Ref.Tag; tag == "" {
				tag = root.Annotations[ocispec.AnnotationRefName] // the only image's tag
			}
			if tag == "" {
				tag = "latest"
			}
			dstRef.Tag = tag
		}
		dst, err := openAny(ctx, dstRef, true, rf)
		if err != nil {
			return err
		}
		defer dst.Close()

		pr := newCopyProgress(pickProgressMode(opts, cmd.ErrOrStderr()), cmd.ErrOrStderr())
		defer pr.close()
		copyOpts.Progress = pr.report
		mountFrom(src, dst, &copyOpts)
		var source imagecopy.Source = src.Target()
		if format != "" {
			conv, err := newConverter(ctx, src.Target(), root, format, copyOpts)
			if err != nil {
				return err
			}
			source, root = conv, conv.root
			defer conv.report(opts, cmd)
		}
		pr.expectGraph(ctx, source, root, p, all)
		d, err := imagecopy.Copy(ctx, source, root.Digest.String(), dst.Target(), tag, copyOpts)
		pr.close()
		if err != nil {
			return fmt.Errorf("copy %s to %s: %w", src.Ref, dstRef, err)
		}
		if err := dst.Save(ctx); err != nil {
			return fmt.Errorf("copy %s to %s: %w", src.Ref, dstRef, err)
		}
		if d.Annotations != nil {
			ann := map[string]string{}
			for k, v := range d.Annotations {
				if k != ocispec.AnnotationRefName {
					ann[k] = v
				}
			}
			d.Annotations = ann
			if len(ann) == 0 {
				d.Annotations = nil
			}
		}
		if opts.JSON {
			return writeJSON(cmd.OutOrStdout(), copyOutput{Source: src.Ref.String(), Destination: dstRef.String(), Descriptor: d,
				Copied: pr.copied, Skipped: pr.skipped, Bytes: pr.bytes})
		}
		opts.infof(cmd, "copied %s to %s: %s %s (%d blobs copied, %s; %d already present)",
			src.Ref, dstRef, image.KindName(d.MediaType), d.Digest, pr.copied, humanBytes(pr.bytes), pr.skipped)
		return nil
	}
	return cmd
}

// copyFlags are the flags of the commands that copy images (copy, sync): which platforms,
// referrers, how many blobs at once.
type copyFlags struct {
	platform    func() (*ocispec.Platform, error)
	all         bool
	referrers   bool
	concurrency int
}

// addCopyFlags adds them; what names what a copy starts from ("an index", "each index").
func addCopyFlags(cmd *cobra.Command, what string) *copyFlags {
	cf := &copyFlags{platform: platformFlag(cmd, "copy this platform's manifest of "+what+" (os/arch[/variant]; default: this machine's)")}
	f := cmd.Flags()
	f.BoolVarP(&cf.all, "all", "a", false, "copy every platform of "+what+" (the whole graph)")
	f.BoolVar(&cf.referrers, "referrers", false, "also copy the manifests whose subject is a copied manifest (signatures, SBOMs…)")
	f.IntVar(&cf.concurrency, "jobs", imagecopy.DefaultConcurrency, "blobs copied at once")
	return cf
}

// options checks the flags and returns the copy options they make (no progress yet).
func (cf *copyFlags) options() (imagecopy.Options, error) {
	p, err := cf.platform()
	if err != nil {
		return imagecopy.Options{}, err
	}
	if cf.all && p != nil {
		return imagecopy.Options{}, usageErrorf("--all and --platform exclude each other: copy every platform, or one")
	}
	if cf.concurrency < 1 {
		return imagecopy.Options{}, usageErrorf("--jobs %d: must be at least 1", cf.concurrency)
	}
	return imagecopy.Options{Concurrency: cf.concurrency, Platform: p, AllPlatforms: cf.all, Referrers: cf.referrers}, nil
}
