package layout

// Temporary minimal graph helpers, to be replaced by package image (ParseIndex, Children)
// once it lands.

import (
	"encoding/json"
	"fmt"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/errdef"
)

const (
	dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	dockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
)

func isManifestType(mt string) bool {
	return mt == ocispec.MediaTypeImageManifest || mt == dockerManifest
}
func isIndexType(mt string) bool { return mt == ocispec.MediaTypeImageIndex || mt == dockerList }
func isDocument(mt string) bool  { return isManifestType(mt) || isIndexType(mt) }

type doc struct {
	SchemaVersion int                  `json:"schemaVersion"`
	MediaType     string               `json:"mediaType"`
	ArtifactType  string               `json:"artifactType"`
	Config        *ocispec.Descriptor  `json:"config"`
	Layers        []ocispec.Descriptor `json:"layers"`
	Manifests     []ocispec.Descriptor `json:"manifests"`
	Blobs         json.RawMessage      `json:"blobs"`
	Subject       *ocispec.Descriptor  `json:"subject"`
	Annotations   map[string]string    `json:"annotations"`
}

func parseIndex(b []byte) (*ocispec.Index, error) {
	var d doc
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%w: not an image index: %v", errdef.ErrInvalidArgument, err)
	}
	if d.SchemaVersion != 2 {
		return nil, fmt.Errorf("%w: schemaVersion %d (want 2)", errdef.ErrInvalidArgument, d.SchemaVersion)
	}
	if d.MediaType != "" && !isIndexType(d.MediaType) {
		return nil, fmt.Errorf("%w: mediaType %q is not an image index", errdef.ErrInvalidArgument, d.MediaType)
	}
	if d.Config != nil || d.Layers != nil {
		return nil, fmt.Errorf("%w: ambiguous document: an index with config or layers", errdef.ErrInvalidArgument)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("%w: %v", errdef.ErrInvalidArgument, err)
	}
	return &idx, nil
}

func sniffManifest(b []byte) string {
	var d doc
	if json.Unmarshal(b, &d) != nil || d.SchemaVersion != 2 {
		return ""
	}
	switch {
	case isDocument(d.MediaType):
		return d.MediaType
	case d.Config != nil && d.Manifests == nil:
		return ocispec.MediaTypeImageManifest
	case d.Manifests != nil && d.Config == nil && d.Layers == nil:
		return ocispec.MediaTypeImageIndex
	}
	return ""
}

// children returns the descriptors a manifest or index refers to (config, layers, manifests,
// subject). Anything else has none.
func children(desc ocispec.Descriptor, b []byte) ([]ocispec.Descriptor, error) {
	if !isDocument(desc.MediaType) {
		return nil, nil
	}
	var d doc
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", desc.Digest, errdef.ErrInvalidArgument, err)
	}
	if d.MediaType != "" && d.MediaType != desc.MediaType {
		return nil, fmt.Errorf("%s: %w: document mediaType %q disagrees with descriptor %q", desc.Digest, errdef.ErrInvalidArgument, d.MediaType, desc.MediaType)
	}
	var out []ocispec.Descriptor
	if isManifestType(desc.MediaType) {
		if d.Manifests != nil || d.Config == nil {
			return nil, fmt.Errorf("%s: %w: ambiguous manifest (manifests field, or no config)", desc.Digest, errdef.ErrInvalidArgument)
		}
		out = append(out, *d.Config)
		out = append(out, d.Layers...)
	} else {
		if d.Config != nil || d.Layers != nil {
			return nil, fmt.Errorf("%s: %w: ambiguous index (config or layers field)", desc.Digest, errdef.ErrInvalidArgument)
		}
		out = append(out, d.Manifests...)
	}
	if d.Subject != nil {
		out = append(out, *d.Subject)
	}
	for _, c := range out {
		if err := content.ValidateDescriptor(c); err != nil {
			return nil, fmt.Errorf("%s: child: %w", desc.Digest, err)
		}
	}
	return out, nil
}

// referrerOf returns the referrers-API descriptor of manifest desc (body b) when its subject
// is subject.
func referrerOf(desc ocispec.Descriptor, b []byte, subject digest.Digest) (ocispec.Descriptor, bool) {
	var d doc
	if json.Unmarshal(b, &d) != nil || d.Subject == nil || d.Subject.Digest != subject {
		return ocispec.Descriptor{}, false
	}
	r := ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size, ArtifactType: d.ArtifactType, Annotations: d.Annotations}
	if r.ArtifactType == "" && d.Config != nil {
		r.ArtifactType = d.Config.MediaType
	}
	return r, true
}
