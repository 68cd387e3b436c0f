package main

import (
	"fmt"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"
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
	var all, referrers bool
	var concurrency int
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

A line is printed on stderr for each blob copied or skipped (none with --quiet or --json).`,
		Example: `  wharf copy oci:./busybox:latest oci:./mirror:v1
  wharf copy --all oci:./multi:latest oci-archive:./multi.tar:latest
  wharf copy --platform linux/arm64 oci:./multi:latest oci:./arm64
  wharf copy oci-archive:./busybox.tar oci:./unpacked:latest
  wharf copy oci:./busybox:latest docker://localhost:5000/busybox:v1
  wharf copy --all docker://registry.example/app:v2 docker://localhost:5000/app:v2
  wharf copy --format v2s2 oci:./busybox:latest docker://localhost:5000/busybox:docker`,
		Args: exactArgs(2),
	}
	platform := platformFlag(cmd, "copy this platform's manifest of an index (os/arch[/variant]; default: this machine's)")
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "copy every platform of an index (the whole graph)")
	f.BoolVar(&referrers, "referrers", false, "also copy the manifests whose subject is a copied manifest (signatures, SBOMs…)")
	f.IntVar(&concurrency, "jobs", imagecopy.DefaultConcurrency, "blobs copied at once")
	rf := addRegistryFlags(cmd, true)
	var format string
	f.StringVar(&format, "format", "", "convert manifests to this format: oci or v2s2 (docker); digests of converted documents change")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		p, err := platform()
		if err != nil {
			return err
		}
		if all && p != nil {
			return usageErrorf("--all and --platform exclude each other: copy every platform, or one")
		}
		if concurrency < 1 {
			return usageErrorf("--jobs %d: must be at least 1", concurrency)
		}
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

		pr := &copyProgress{opts: opts, cmd: cmd, tty: isTerminal(cmd.ErrOrStderr())}
		copyOpts := imagecopy.Options{
			Concurrency:  concurrency,
			Platform:     p,
			AllPlatforms: all,
			Referrers:    referrers,
			Progress:     pr.report,
		}
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
		d, err := imagecopy.Copy(ctx, source, root.Digest.String(), dst.Target(), tag, copyOpts)
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
			src.Ref, dstRef, kindName(d.MediaType), d.Digest, pr.copied, humanBytes(pr.bytes), pr.skipped)
		return nil
	}
	return cmd
}

// copyProgress prints one line per finished blob and counts them; on a terminal it also keeps a
// status line of the transfers in flight, redrawn at most every 100 ms. Copy calls it from
// several goroutines.
type copyProgress struct {
	opts *globalOptions
	cmd  *cobra.Command
	tty  bool // stderr is a terminal: draw the status line

	mu              sync.Mutex
	copied, skipped int
	bytes           int64
	inflight        map[digest.Digest]imagecopy.Progress
	drawn           time.Time
	status          bool // a status line is on screen
}

func (p *copyProgress) report(ev imagecopy.Progress) {
	if p.opts.JSON || p.opts.Quiet {
		p.count(ev)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if ev.State == imagecopy.Transferring {
		if !p.tty {
			return
		}
		if p.inflight == nil {
			p.inflight = map[digest.Digest]imagecopy.Progress{}
		}
		p.inflight[ev.Descriptor.Digest] = ev
		if time.Since(p.drawn) >= 100*time.Millisecond {
			p.draw()
		}
		return
	}
	delete(p.inflight, ev.Descriptor.Digest)
	p.countLocked(ev)
	p.clear()
	verb := map[imagecopy.State]string{imagecopy.Skipped: "skipped", imagecopy.Mounted: "mounted"}[ev.State]
	if verb == "" {
		verb = "copied"
	}
	d := ev.Descriptor
	fmt.Fprintf(p.cmd.ErrOrStderr(), "%-7s %-8s %s  %s\n", verb, kindName(d.MediaType), shortDigest(d.Digest), humanBytes(d.Size))
	if len(p.inflight) > 0 {
		p.draw()
	}
}

func (p *copyProgress) count(ev imagecopy.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.countLocked(ev)
}

func (p *copyProgress) countLocked(ev imagecopy.Progress) {
	switch ev.State {
	case imagecopy.Transferring:
	case imagecopy.Skipped:
		p.skipped++
	case imagecopy.Mounted:
		p.copied++
	default:
		p.copied++
		p.bytes += ev.Descriptor.Size
	}
}

// draw writes the status line: the transfers in flight and their bytes so far.
func (p *copyProgress) draw() {
	var done, total int64
	for _, ev := range p.inflight {
		done += ev.Done
		total += ev.Descriptor.Size
	}
	fmt.Fprintf(p.cmd.ErrOrStderr(), "\r\x1b[Kcopying %d %s: %s of %s", len(p.inflight), plural2(len(p.inflight), "blob", "blobs"), humanBytes(done), humanBytes(total))
	p.status, p.drawn = true, time.Now()
}

// clear erases the status line before a line is printed.
func (p *copyProgress) clear() {
	if p.status {
		fmt.Fprint(p.cmd.ErrOrStderr(), "\r\x1b[K")
		p.status = false
	}
}

// done erases the status line at the end of the copy.
func (p *copyProgress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
}

// kindName is a short word for a descriptor's media type.
func kindName(mt string) string {
	switch {
	case image.IsIndex(mt):
		return "index"
	case image.IsManifest(mt):
		return "manifest"
	case image.IsConfig(mt):
		return "config"
	case image.IsLayer(mt):
		return "layer"
	}
	return "blob"
}
