package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
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
		img, err := loadImage(ctx, h.Target(), root, p)
		if err != nil {
			return fmt.Errorf("inspect %s: %w", h.Ref, err)
		}
		if config {
			if img.config == nil {
				return fmt.Errorf("inspect %s: manifest %s: config %s is not an image config", h.Ref, img.manifestDesc.Digest, img.manifest.Config.MediaType)
			}
			if raw {
				_, err = w.Write(img.configBytes)
				return err
			}
			var buf bytes.Buffer
			if err := json.Indent(&buf, img.configBytes, "", "    "); err != nil {
				return err
			}
			buf.WriteByte('\n')
			_, err = w.Write(buf.Bytes())
			return err
		}
		tags, err := tagsOf(ctx, h, root.Digest)
		if err != nil {
			return err
		}
		return writeJSON(w, summarize(root, tags, img))
	}
	return cmd
}

// loadedImage is one manifest, chosen for a platform, with its config.
type loadedImage struct {
	manifestDesc ocispec.Descriptor
	manifest     *ocispec.Manifest
	configBytes  []byte
	config       *ocispec.Image // nil for an artifact
}

// loadImage reads (verified and validated) the manifest root names for platform p (default:
// this machine's) and its config.
func loadImage(ctx context.Context, f content.Fetcher, root ocispec.Descriptor, p *ocispec.Platform) (*loadedImage, error) {
	want := image.DefaultPlatform()
	if p != nil {
		want = *p
	}
	md, err := image.SelectManifest(ctx, f, root, want)
	if err != nil {
		return nil, err
	}
	mb, err := content.ReadAll(ctx, f, md, 0)
	if err != nil {
		return nil, err
	}
	m, err := image.ParseManifest(md, mb)
	if err != nil {
		return nil, err
	}
	img := &loadedImage{manifestDesc: md, manifest: m}
	if !image.IsConfig(m.Config.MediaType) {
		return img, nil
	}
	if img.configBytes, err = content.ReadAll(ctx, f, m.Config, 0); err != nil {
		return nil, err
	}
	if img.config, err = image.ParseConfig(m.Config, img.configBytes); err != nil {
		return nil, err
	}
	return img, nil
}

// tagsOf lists the tags of the layout that name dg.
func tagsOf(ctx context.Context, h *imageref.Handle, dg digest.Digest) ([]string, error) {
	if h.Repo != nil { // a registry: every tag of the repository, as skopeo inspect
		tags, err := h.Repo.Tags(ctx, 0)
		if tags == nil {
			tags = []string{}
		}
		return tags, err
	}
	entries, err := h.Layout.List(ctx)
	if err != nil {
		return nil, err
	}
	tags := []string{}
	for _, e := range entries {
		if e.Descriptor.Digest == dg && e.Name != "" && !slices.Contains(tags, e.Name) {
			tags = append(tags, e.Name)
		}
	}
	return tags, nil
}

func summarize(root ocispec.Descriptor, tags []string, img *loadedImage) inspectOutput {
	out := inspectOutput{
		Digest:     root.Digest,
		RepoTags:   tags,
		Labels:     map[string]string{},
		Layers:     []digest.Digest{},
		LayersData: []layerData{},
		Env:        []string{},
	}
	for _, l := range img.manifest.Layers {
		out.Layers = append(out.Layers, l.Digest)
		ann := l.Annotations
		if ann == nil {
			ann = map[string]string{}
		}
		out.LayersData = append(out.LayersData, layerData{MIMEType: l.MediaType, Digest: l.Digest, Size: l.Size, Annotations: ann})
	}
	if c := img.config; c != nil {
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
