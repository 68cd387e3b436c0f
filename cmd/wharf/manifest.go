package main

import (
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	imagecopy "github.com/wharfoci/wharf/image/copy"
)

// wharf manifest create: what `buildah manifest create LIST IMAGE...` does, into a layout,
// an archive or a registry.
func newManifestCmd(opts *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "manifest",
		Short: "Make multi-platform images (image indexes) out of images",
		Args:  noArgs,
	}
	cmd.AddCommand(newManifestCreateCmd(opts))
	return cmd
}

func newManifestCreateCmd(opts *globalOptions) *cobra.Command {
	var annotations []string
	cmd := &cobra.Command{
		Use:   "create INDEX IMAGE...",
		Short: "Store an image index listing the given images under a name",
		Long: `Copy each IMAGE (a manifest, or a whole index, which is listed nested) to where INDEX
names, then store an image index listing them in the order given and name it INDEX, as
"buildah manifest create LIST IMAGE..." does. Each manifest is listed with the platform its
config declares; two images of one platform are refused. INDEX is created when missing.`,
		Example: `  wharf manifest create oci:./multi:latest oci:./amd64:latest oci:./arm64:latest
  wharf manifest create docker://localhost:5000/app:v1 oci:./amd64 oci:./arm64`,
		Args: minArgs(2),
	}
	rf := addRegistryFlags(cmd, true)
	cmd.Flags().StringArrayVar(&annotations, "annotation", nil, "KEY=VALUE annotation of the index (repeatable)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		ann, err := parseKeyValues("--annotation", annotations)
		if err != nil {
			return err
		}
		dstRef, err := parseImage(args[0])
		if err != nil {
			return err
		}
		if dstRef.Digest != "" {
			return usageErrorf("%s: an index is named by a tag, not a digest", args[0])
		}
		if dstRef.Tag == "" {
			dstRef.Tag = "latest"
		}
		var members []imagecopy.Member
		for _, a := range args[1:] {
			h, root, err := openAnyImage(ctx, a, rf)
			if err != nil {
				return err
			}
			defer h.Close()
			members = append(members, imagecopy.Member{Src: h.Target(), Ref: root.Digest.String(), Name: a})
		}
		dst, err := openAny(ctx, dstRef, true, rf)
		if err != nil {
			return err
		}
		defer dst.Close()
		d, err := imagecopy.Index(ctx, dst.Target(), dstRef.Tag, members, ann, imagecopy.Options{})
		if err != nil {
			return fmt.Errorf("create %s: %w", dstRef, err)
		}
		if err := dst.Save(ctx); err != nil {
			return fmt.Errorf("create %s: %w", dstRef, err)
		}
		if opts.JSON {
			return writeJSON(cmd.OutOrStdout(), manifestCreateOutput{Index: dstRef.String(), Descriptor: d, Images: len(members)})
		}
		fmt.Fprintln(cmd.OutOrStdout(), d.Digest)
		opts.infof(cmd, "created %s: index of %d image%s", dstRef, len(members), plural(len(members)))
		return nil
	}
	return cmd
}

type manifestCreateOutput struct {
	Index      string             `json:"index"`
	Descriptor ocispec.Descriptor `json:"descriptor"`
	Images     int                `json:"images"`
}
