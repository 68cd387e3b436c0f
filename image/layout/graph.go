package layout

import (
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/image"
)

func isDocument(mt string) bool { return image.IsManifest(mt) || image.IsIndex(mt) }

// parseIndex parses index.json: an OCI image index, validated by package image.
func parseIndex(b []byte) (*ocispec.Index, error) {
	return image.ParseIndex(ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex}, b)
}

// sniffManifest returns the media type of b when it is a valid manifest or index, else "".
func sniffManifest(b []byte) string {
	d, err := image.Parse(ocispec.Descriptor{}, b)
	if err != nil || !isDocument(d.MediaType()) {
		return ""
	}
	return d.MediaType()
}

// children returns what keeps a blob alive in a layout: the children of a manifest or index
// (config, layers, manifests) and its subject.
func children(desc ocispec.Descriptor, b []byte) ([]ocispec.Descriptor, error) {
	if !isDocument(desc.MediaType) {
		if _, err := image.Children(desc, b); err != nil { // docker schema 1
			return nil, err
		}
		return nil, nil
	}
	d, err := image.Parse(desc, b)
	if err != nil {
		return nil, err
	}
	out := d.Children()
	if s := d.Subject(); s != nil {
		out = append(out, *s)
	}
	return out, nil
}

// subjectOf returns the subject digest of a manifest or index document, or "".
func subjectOf(desc ocispec.Descriptor, b []byte) digest.Digest {
	s, err := image.Subject(desc, b)
	if err != nil || s == nil {
		return ""
	}
	return s.Digest
}

// referrerOf returns the referrers-API descriptor of manifest desc (body b) when its subject
// is subject: artifactType is the manifest's, or its config's media type.
func referrerOf(desc ocispec.Descriptor, b []byte, subject digest.Digest) (ocispec.Descriptor, bool) {
	d, err := image.Parse(desc, b)
	if err != nil || d.Subject() == nil || d.Subject().Digest != subject {
		return ocispec.Descriptor{}, false
	}
	r := ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size}
	switch {
	case d.Manifest != nil:
		r.ArtifactType, r.Annotations = d.Manifest.ArtifactType, d.Manifest.Annotations
		if r.ArtifactType == "" {
			r.ArtifactType = d.Manifest.Config.MediaType
		}
	case d.Index != nil:
		r.ArtifactType, r.Annotations = d.Index.ArtifactType, d.Index.Annotations
	}
	return r, true
}
