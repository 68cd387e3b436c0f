package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/wharfoci/wharf/image/artifact"
	"github.com/wharfoci/wharf/imageref"
)

// wharf artifact push|pull|attach|discover: what oras push, pull, attach and discover do, on
// registries, layouts and archives alike.
func newArtifactCmd(opts *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "artifact",
		Short: "Store files as OCI artifacts, attach them to images and list them (as oras)",
		Long: `Store files as OCI artifacts (image-spec 1.1: an image manifest with an artifactType, the
empty config, one layer per file titled with its name) in a registry, a layout or an archive;
get them back; attach artifacts to an image (its subject) and list what refers to an image
through the referrers API — what oras push, pull, attach and discover do.`,
		Args: noArgs,
	}
	cmd.AddCommand(newArtifactPushCmd(opts), newArtifactPullCmd(opts), newArtifactAttachCmd(opts), newArtifactDiscoverCmd(opts))
	return cmd
}

// artifactFlags are push's and attach's.
type artifactFlags struct {
	artifactType string
	annotations  []string
}

func addArtifactFlags(cmd *cobra.Command) *artifactFlags {
	af := &artifactFlags{}
	cmd.Flags().StringVar(&af.artifactType, "artifact-type", "", "the artifact's media type (push default: "+artifact.DefaultArtifactType+")")
	cmd.Flags().StringArrayVarP(&af.annotations, "annotation", "a", nil, "KEY=VALUE manifest annotation (repeatable)")
	return af
}

func (af *artifactFlags) options() (artifact.Options, error) {
	o := artifact.Options{ArtifactType: af.artifactType, Annotations: map[string]string{}}
	ann, err := parseKeyValues("--annotation", af.annotations)
	if err != nil {
		return o, err
	}
	for k, v := range ann {
		o.Annotations[k] = v
	}
	t, err := sourceDateEpoch()
	if err != nil {
		return o, err
	}
	if t != nil {
		o.Created = *t
	}
	return o, nil
}

func parseFiles(args []string) []artifact.File {
	var files []artifact.File
	for _, a := range args {
		files = append(files, artifact.ParseFile(a))
	}
	return files
}

type artifactResult struct {
	Digest       string `json:"digest"`
	MediaType    string `json:"mediaType"`
	ArtifactType string `json:"artifactType"`
	Size         int64  `json:"size"`
	Reference    string `json:"reference"`
}

// pushArtifact stores the files as an artifact in h (tagged tag, unless ""), writes an archive
// back, and prints the manifest digest (or the JSON result).
func pushArtifact(cmd *cobra.Command, opts *globalOptions, h *imageref.Handle, files []string, o artifact.Options, tag, verb string, ref imageref.Reference) error {
	d, err := artifact.Push(cmd.Context(), h.Target(), parseFiles(files), o, tag)
	if err != nil {
		return err
	}
	if err := h.Save(cmd.Context()); err != nil {
		return err
	}
	if opts.JSON {
		return writeJSON(cmd.OutOrStdout(), artifactResult{d.Digest.String(), d.MediaType, d.ArtifactType, d.Size, ref.String()})
	}
	opts.infof(cmd, "%s %s (%s, %d bytes) to %s", verb, d.ArtifactType, d.Digest, d.Size, ref)
	fmt.Fprintln(cmd.OutOrStdout(), d.Digest)
	return nil
}

func newArtifactPushCmd(opts *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "push DEST FILE[:MEDIATYPE]...",
		Short: "Store files as an artifact, tagged",
		Long: `Store the files as one artifact and tag it: DEST is docker://HOST/REPO:TAG, oci:DIR:TAG or
oci-archive:FILE:TAG (without a tag: latest). Each file becomes a layer of its media type
(default ` + artifact.DefaultFileMediaType + `) titled with its base name; with no file the
artifact has only annotations. Prints the manifest digest.`,
		Example: `  wharf artifact push --artifact-type application/vnd.example.sbom docker://localhost:5000/app:sbom sbom.json:application/spdx+json
  wharf artifact push oci:./artifacts:notes README.md CHANGES.md`,
		Args: minArgs(1),
	}
	af := addArtifactFlags(cmd)
	rf := addRegistryFlags(cmd, true)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ref, err := parseImage(args[0])
		if err != nil {
			return err
		}
		if ref.Digest != "" {
			return usageErrorf("%s: push to a tag, not a digest", args[0])
		}
		if ref.Tag == "" {
			ref.Tag = "latest"
		}
		o, err := af.options()
		if err != nil {
			return err
		}
		h, err := openAny(cmd.Context(), ref, true, rf)
		if err != nil {
			return err
		}
		defer h.Close()
		return pushArtifact(cmd, opts, h, args[1:], o, ref.Tag, "pushed", ref)
	}
	return cmd
}

func newArtifactAttachCmd(opts *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "attach IMAGE FILE[:MEDIATYPE]...",
		Short: "Store files as an artifact that refers to IMAGE (its subject)",
		Long: `Store the files as one artifact whose subject is IMAGE's manifest or index, next to it (same
repository, layout or archive; untagged: the referrers API finds it). --artifact-type is
required, as oras requires it. Prints the manifest digest.`,
		Example: `  wharf artifact attach --artifact-type application/vnd.example.signature docker://localhost:5000/app:v1 app.sig
  wharf artifact attach --artifact-type application/vnd.example.review -a reviewed-by=ops oci:./img:v1`,
		Args: minArgs(1),
	}
	af := addArtifactFlags(cmd)
	rf := addRegistryFlags(cmd, true)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if af.artifactType == "" {
			return usageErrorf("attach needs --artifact-type")
		}
		o, err := af.options()
		if err != nil {
			return err
		}
		h, subject, err := openAnyImage(cmd.Context(), args[0], rf)
		if err != nil {
			return err
		}
		defer h.Close()
		o.Subject = &ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
		o.ListUntagged = h.Layout != nil
		return pushArtifact(cmd, opts, h, args[1:], o, "", "attached", h.Ref)
	}
	return cmd
}

func newArtifactPullCmd(opts *globalOptions) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "pull [-o DIR] SOURCE",
		Short: "Write an artifact's files into a directory",
		Long: `Write each titled layer of the artifact (or image) SOURCE into DIR (default .) under its
title, verified against its digest. Titles are confined to DIR: an absolute title or one with
".." is refused, and nothing is written through a symlink out of DIR.`,
		Example: `  wharf artifact pull -o ./sbom docker://localhost:5000/app:sbom`,
		Args:    exactArgs(1),
	}
	cmd.Flags().StringVarP(&out, "output", "o", ".", "directory to write the files into")
	rf := addRegistryFlags(cmd, false)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return withImage(cmd.Context(), args[0], rf, func(ctx context.Context, h *imageref.Handle, d ocispec.Descriptor) error {
			files, err := artifact.Pull(ctx, h.Target(), d, out)
			if err != nil {
				return err
			}
			if opts.JSON {
				return writeJSON(cmd.OutOrStdout(), files)
			}
			for _, f := range files {
				opts.infof(cmd, "pulled %s (%s, %d bytes)", f.Path, f.Digest, f.Size)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "pulled %s: %d file%s into %s\n", h.Ref, len(files), plural(len(files)), out)
			return nil
		})
	}
	return cmd
}

func newArtifactDiscoverCmd(opts *globalOptions) *cobra.Command {
	var artifactType string
	cmd := &cobra.Command{
		Use:   "discover [--artifact-type TYPE] IMAGE",
		Short: "List the artifacts that refer to an image",
		Long: `List the manifests whose subject is IMAGE (the referrers API of a registry, or the layout's
manifests): digest, artifact type, size and creation time; --json prints the descriptors.`,
		Example: `  wharf artifact discover docker://localhost:5000/app:v1
  wharf artifact discover --artifact-type application/vnd.example.signature oci:./img:v1`,
		Args: exactArgs(1),
	}
	cmd.Flags().StringVar(&artifactType, "artifact-type", "", "only the artifacts of this type")
	rf := addRegistryFlags(cmd, false)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return withImage(cmd.Context(), args[0], rf, func(ctx context.Context, h *imageref.Handle, d ocispec.Descriptor) error {
			refs, err := artifact.Referrers(ctx, h.Target(), d, artifactType)
			if err != nil {
				return err
			}
			if opts.JSON {
				if refs == nil {
					refs = []ocispec.Descriptor{}
				}
				return writeJSON(cmd.OutOrStdout(), refs)
			}
			opts.infof(cmd, "%s (%s): %d referrer%s", h.Ref, d.Digest, len(refs), plural(len(refs)))
			return printReferrers(cmd.OutOrStdout(), refs)
		})
	}
	return cmd
}

// printReferrers prints a table of referrers: digest, artifact type, size, creation time.
func printReferrers(w io.Writer, refs []ocispec.Descriptor) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DIGEST\tARTIFACT TYPE\tSIZE\tCREATED")
	for _, r := range refs {
		created := r.Annotations[ocispec.AnnotationCreated]
		if created == "" {
			created = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", r.Digest, r.ArtifactType, r.Size, created)
	}
	return tw.Flush()
}
