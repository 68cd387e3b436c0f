package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/image"
	"github.com/wharfoci/wharf/imageref"
)

// inspectOutput has the fields and names of `skopeo inspect` so that scripts written for one
// read the other.
type inspectOutput struct {
	Name          string            `json:",omitempty"`
	Digest        digest.Digest     `json:"Digest"`
	RepoTags      []string          `json:"RepoTags"`
	Created       *time.Time        `json:"Created,omitempty"`
	DockerVersion string            `json:"DockerVersion"`
	Labels        map[string]string `json:"Labels"`
	Architecture  string            `json:"Architecture"`
	Variant       string            `json:"Variant,omitempty"`
	Os            string            `json:"Os"`
	Layers        []digest.Digest   `json:"Layers"`
	LayersData    []layerData       `json:"LayersData"`
	Env           []string          `json:"Env"`
}

type layerData struct {
	MIMEType    string            `json:"MIMEType"`
	Digest      digest.Digest     `json:"Digest"`
	Size        int64             `json:"Size"`
	Annotations map[string]string `json:"Annotations"`
}

func newInspectCmd(opts *globalOptions) *cobra.Command {
	var raw, config bool
	cmd := &cobra.Command{
		Use:   "inspect IMAGE",
		Short: "Print an image's manifest and config, summarised like skopeo inspect",
		Long: `Print what IMAGE is, as JSON with the fields of "skopeo inspect": Digest (of the manifest
or index IMAGE names), RepoTags (the layout's tags for that digest), Created, Labels,
Architecture, Os, Layers, LayersData and Env. When IMAGE is an index, the manifest for this
machine's platform (or --platform) is described.

--raw prints the manifest or index IMAGE names exactly as stored; --config prints the image
config (with --raw, exactly as stored). Every document is verified against its digest and
validated before it is printed.`,
		Example: `  wharf inspect oci:./busybox:latest
  wharf inspect --platform linux/arm64 oci:./multi:latest | jq .Layers
  wharf inspect --raw oci:./busybox:latest | jq .mediaType
  wharf inspect --config oci-archive:./busybox.tar | jq .config.Env`,
		Args: exactArgs(1),
	}
	platform := platformFlag(cmd, "describe this platform's manifest of an index (os/arch[/variant]; default: this machine's)")
	cmd.Flags().BoolVar(&raw, "raw", false, "print the manifest or index as stored (with --config: the config as stored)")
	cmd.Flags().BoolVar(&config, "config", false, "print the image config instead of the summary")
	rf := addRegistryFlags(cmd, false)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		p, err := platform()
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		h, root, err := openAnyImage(ctx, args[0], rf)
		if err != nil {
			return err
		}
		defer h.Close()
		w := cmd.OutOrStdout()
		if raw && !config {
			return printDocument(ctx, w, h, root)
		}
		img, err := loadImage(ctx, h.Target(), root, p)
		if err != nil {
			return fmt.Errorf("inspect %s: %w", h.Ref, err)
		}
		if config {
			return printConfig(w, h, img, raw)
		}
		tags, err := h.RepoTags(ctx, root.Digest)
		if err != nil {
			return err
		}
		return writeJSON(w, summarize(root, tags, img))
	}
	return cmd
}

// printDocument prints the manifest or index root as stored, once verified and validated.
func printDocument(ctx context.Context, w io.Writer, h *imageref.Handle, root ocispec.Descriptor) error {
	b, err := content.ReadAll(ctx, h.Target(), root, 0)
	if err != nil {
		return fmt.Errorf("inspect %s: %w", h.Ref, err)
	}
	if _, err := image.Parse(root, b); err != nil {
		return fmt.Errorf("inspect %s: %w", h.Ref, err)
	}
	_, err = w.Write(b)
	return err
}

// printConfig prints the image's config, as stored (raw) or indented.
func printConfig(w io.Writer, h *imageref.Handle, img *image.Loaded, raw bool) error {
	if img.Config == nil {
		return fmt.Errorf("inspect %s: manifest %s: config %s is not an image config", h.Ref, img.Descriptor.Digest, img.Manifest.Config.MediaType)
	}
	if raw {
		_, err := w.Write(img.ConfigBytes)
		return err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, img.ConfigBytes, "", "    "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// loadImage reads the manifest root names for platform p (nil: this machine's) and its config.
func loadImage(ctx context.Context, f content.Fetcher, root ocispec.Descriptor, p *ocispec.Platform) (*image.Loaded, error) {
	md, err := image.SelectManifest(ctx, f, root, p)
	if err != nil {
		return nil, err
	}
	return image.Load(ctx, f, md)
}

func summarize(root ocispec.Descriptor, tags []string, img *image.Loaded) inspectOutput {
	out := inspectOutput{
		Digest:     root.Digest,
		RepoTags:   tags,
		Labels:     map[string]string{},
		Layers:     []digest.Digest{},
		LayersData: []layerData{},
		Env:        []string{},
	}
	for _, l := range img.Manifest.Layers {
		out.Layers = append(out.Layers, l.Digest)
		ann := l.Annotations
		if ann == nil {
			ann = map[string]string{}
		}
		out.LayersData = append(out.LayersData, layerData{MIMEType: l.MediaType, Digest: l.Digest, Size: l.Size, Annotations: ann})
	}
	if c := img.Config; c != nil {
		out.Created = c.Created
		out.Architecture, out.Variant, out.Os = c.Architecture, c.Variant, c.OS
		if c.Config.Labels != nil {
			out.Labels = c.Config.Labels
		}
		if c.Config.Env != nil {
			out.Env = c.Config.Env
		}
	}
	return out
}
