package main

import (
	"context"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/image"
	imagecopy "github.com/wharfoci/wharf/image/copy"
	"github.com/wharfoci/wharf/imageref"
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

const copyLong = `Copy the image SRC names, and everything it references, to DST, then name it there. Blobs
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
object per blob ({"event","mediaType","digest","size"}). --quiet prints none.`

func newCopyCmd(opts *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "copy SRC DST",
		Aliases: []string{"cp"},
		Short:   "Copy an image between layouts, archives and registries",
		Long:    copyLong,
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
		convert, err := parseFormat(format)
		if err != nil {
			return err
		}
		job, err := openCopy(ctx, args[0], args[1], convert, rf)
		if err != nil {
			return err
		}
		defer job.close(opts, cmd)
		pr := newCopyProgress(pickProgressMode(opts, cmd.ErrOrStderr()), cmd.ErrOrStderr())
		d, err := copyImage(ctx, job.source, job.root, job.src, job.dst, job.dstRef.Tag, copyOpts, pr)
		if err == nil {
			err = job.dst.Save(ctx)
		}
		if err != nil {
			return fmt.Errorf("copy %s to %s: %w", job.src.Ref, job.dstRef, err)
		}
		d.Annotations = withoutRefName(d.Annotations)
		if opts.JSON {
			return writeJSON(cmd.OutOrStdout(), copyOutput{Source: job.src.Ref.String(), Destination: job.dstRef.String(), Descriptor: d,
				Copied: pr.copied, Skipped: pr.skipped, Bytes: pr.bytes})
		}
		opts.infof(cmd, "copied %s to %s: %s %s (%d blobs copied, %s; %d already present)",
			job.src.Ref, job.dstRef, image.KindName(d.MediaType), d.Digest, pr.copied, humanBytes(pr.bytes), pr.skipped)
		return nil
	}
	return cmd
}

// copyJob is the copy a command line names: its source opened and its root resolved (and,
// with --format, the conversion to read from instead), its destination opened and named.
type copyJob struct {
	src, dst *imageref.Handle
	dstRef   imageref.Reference
	source   content.ReadOnlyStorage // src's target, or conv
	root     ocispec.Descriptor      // in source
	conv     *imagecopy.Converted
}

// openCopy opens SRC and DST (created when missing; named by a tag: its own, else SRC's, see
// destinationTag) and, when convert is set, converts SRC's root.
func openCopy(ctx context.Context, srcArg, dstArg string, convert *image.Format, rf *registryFlags) (*copyJob, error) {
	dstRef, err := parseDestination(dstArg)
	if err != nil {
		return nil, err
	}
	src, root, err := openAnyImage(ctx, srcArg, rf)
	if err != nil {
		return nil, err
	}
	dstRef.Tag = destinationTag(dstRef.Tag, src.Ref, root)
	dst, err := openAny(ctx, dstRef, true, rf)
	if err != nil {
		src.Close()
		return nil, err
	}
	j := &copyJob{src: src, dst: dst, dstRef: dstRef, source: src.Target(), root: root}
	if convert != nil {
		if j.conv, err = imagecopy.Convert(ctx, src.Target(), root, *convert); err != nil {
			j.close(nil, nil)
			return nil, err
		}
		j.source, j.root = j.conv, j.conv.Root()
	}
	return j, nil
}

// close closes both ends, after printing each document whose digest a conversion changed
// (when cmd is set).
func (j *copyJob) close(opts *globalOptions, cmd *cobra.Command) {
	if j.conv != nil && cmd != nil {
		for _, ch := range j.conv.Changes() {
			opts.infof(cmd, "converted %-8s %s → %s (%s)", image.KindName(ch.From.MediaType), ch.From.Digest, ch.To.Digest, ch.To.MediaType)
		}
	}
	j.dst.Close()
	j.src.Close()
}

// parseFormat reads --format: nil when not given.
func parseFormat(s string) (*image.Format, error) {
	if s == "" {
		return nil, nil
	}
	f, err := image.ParseFormat(s)
	if err != nil {
		return nil, asUsage(err)
	}
	return &f, nil
}

// parseDestination parses the name of a copy's destination: named by a tag, if by anything.
func parseDestination(arg string) (imageref.Reference, error) {
	r, err := parseImage(arg)
	if err == nil && r.Digest != "" {
		err = usageErrorf("%s: a destination is named by a tag, not a digest", arg)
	}
	return r, err
}

// destinationTag is the tag a copy names its root with: the destination's own, else the
// source's, else the only image's (its ref name), else latest.
func destinationTag(tag string, src imageref.Reference, root ocispec.Descriptor) string {
	for _, t := range []string{tag, src.Tag, root.Annotations[ocispec.AnnotationRefName]} {
		if t != "" {
			return t
		}
	}
	return "latest"
}

// copyImage copies root, read from source (src's target, or a conversion of it), to dst as
// tag with o, showing progress on pr, which it closes.
func copyImage(ctx context.Context, source content.ReadOnlyStorage, root ocispec.Descriptor, src, dst *imageref.Handle, tag string, o imagecopy.Options, pr *copyProgress) (ocispec.Descriptor, error) {
	defer pr.close()
	o.Progress = pr.report
	o.MountFrom = imageref.MountFrom(src, dst)
	return imagecopy.CopyRoot(ctx, source, root, dst.Target(), tag, o)
}

// withoutRefName is a copy of annotations without the layout's ref name (nil when none is
// left): the copied descriptor as the destination names it is not the document's.
func withoutRefName(annotations map[string]string) map[string]string {
	var out map[string]string
	for k, v := range annotations {
		if k != ocispec.AnnotationRefName {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
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
