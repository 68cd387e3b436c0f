package image

import (
	"fmt"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/errdef"
)

// OCI media types (image-spec media-types.md). They repeat the constants of specs-go/v1 so that
// callers need one import for every media type wharf knows.
const (
	MediaTypeDescriptor   = ocispec.MediaTypeDescriptor
	MediaTypeLayoutHeader = ocispec.MediaTypeLayoutHeader
	MediaTypeManifest     = ocispec.MediaTypeImageManifest
	MediaTypeIndex        = ocispec.MediaTypeImageIndex
	MediaTypeConfig       = ocispec.MediaTypeImageConfig
	// MediaTypeEmptyJSON is the empty descriptor's media type: the blob `{}`, used as the
	// config (and sole layer) of artifacts that have none.
	MediaTypeEmptyJSON = ocispec.MediaTypeEmptyJSON

	MediaTypeLayer     = ocispec.MediaTypeImageLayer
	MediaTypeLayerGzip = ocispec.MediaTypeImageLayerGzip
	MediaTypeLayerZstd = ocispec.MediaTypeImageLayerZstd
	// Non-distributable layers are deprecated by image-spec 1.1 but must still be read.
	MediaTypeLayerNonDistributable     = "application/vnd.oci.image.layer.nondistributable.v1.tar"
	MediaTypeLayerNonDistributableGzip = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
	MediaTypeLayerNonDistributableZstd = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
)

// Docker image manifest v2, schema 2 media types. Schema 1 is recognised only to be refused
// (errdef.ErrUnsupported).
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayer        = "application/vnd.docker.image.rootfs.diff.tar"
	MediaTypeDockerLayerGzip    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	// MediaTypeDockerLayerZstd is not part of Docker's specification but is written by
	// BuildKit and containerd; it is read, never produced by conversion.
	MediaTypeDockerLayerZstd        = "application/vnd.docker.image.rootfs.diff.tar.zstd"
	MediaTypeDockerForeignLayer     = "application/vnd.docker.image.rootfs.foreign.diff.tar"
	MediaTypeDockerForeignLayerGzip = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

	MediaTypeDockerSchema1Manifest       = "application/vnd.docker.distribution.manifest.v1+json"
	MediaTypeDockerSchema1SignedManifest = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

// Compression is the compression of a layer blob.
type Compression int

const (
	// Uncompressed: a plain tar stream.
	Uncompressed Compression = iota
	// Gzip: RFC 1952.
	Gzip
	// Zstd: RFC 8878.
	Zstd
)

// String returns "none", "gzip" or "zstd".
func (c Compression) String() string {
	switch c {
	case Uncompressed:
		return "none"
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("compression(%d)", int(c))
}

type layerInfo struct {
	compression      Compression
	nonDistributable bool
	docker           bool
}

var layers = map[string]layerInfo{
	MediaTypeLayer:                     {Uncompressed, false, false},
	MediaTypeLayerGzip:                 {Gzip, false, false},
	MediaTypeLayerZstd:                 {Zstd, false, false},
	MediaTypeLayerNonDistributable:     {Uncompressed, true, false},
	MediaTypeLayerNonDistributableGzip: {Gzip, true, false},
	MediaTypeLayerNonDistributableZstd: {Zstd, true, false},
	MediaTypeDockerLayer:               {Uncompressed, false, true},
	MediaTypeDockerLayerGzip:           {Gzip, false, true},
	MediaTypeDockerLayerZstd:           {Zstd, false, true},
	MediaTypeDockerForeignLayer:        {Uncompressed, true, true},
	MediaTypeDockerForeignLayerGzip:    {Gzip, true, true},
}

// IsManifest reports whether mt is an image manifest media type (OCI or Docker schema 2).
func IsManifest(mt string) bool {
	return mt == MediaTypeManifest || mt == MediaTypeDockerManifest
}

// IsIndex reports whether mt is an image index media type (OCI index or Docker manifest list).
func IsIndex(mt string) bool {
	return mt == MediaTypeIndex || mt == MediaTypeDockerManifestList
}

// IsConfig reports whether mt is an image configuration media type (OCI or Docker). The empty
// descriptor's media type is not an image config.
func IsConfig(mt string) bool {
	return mt == MediaTypeConfig || mt == MediaTypeDockerConfig
}

// IsDocument reports whether mt names a JSON document this package parses: a manifest, an
// index or an image config.
func IsDocument(mt string) bool { return IsManifest(mt) || IsIndex(mt) || IsConfig(mt) }

// IsLayer reports whether mt is a layer changeset media type wharf can apply: OCI tar,
// tar+gzip, tar+zstd and their non-distributable variants, and the Docker rootfs diff types.
// Artifact "layers" of other media types are blobs, not changesets: IsLayer is false for them.
func IsLayer(mt string) bool {
	_, ok := layers[mt]
	return ok
}

// KindName is a short word for what a media type describes — "index", "manifest", "config",
// "layer", or "blob" for anything else — for messages and progress lines.
func KindName(mt string) string {
	switch {
	case IsIndex(mt):
		return "index"
	case IsManifest(mt):
		return "manifest"
	case IsConfig(mt):
		return "config"
	case IsLayer(mt):
		return "layer"
	}
	return "blob"
}

// LayerCompression returns the compression of the layer media type mt, and false when mt is
// not a layer media type (see IsLayer).
func LayerCompression(mt string) (Compression, bool) {
	l, ok := layers[mt]
	return l.compression, ok
}

// IsNonDistributable reports whether mt is a layer that may be subject to distribution
// restrictions: the OCI non-distributable types and Docker foreign layers. Such layers often
// carry urls and may be absent from a registry; copying them is a policy decision of the caller.
func IsNonDistributable(mt string) bool { return layers[mt].nonDistributable }

// IsDocker reports whether mt is one of the Docker media types above (schema 1 included).
func IsDocker(mt string) bool {
	return strings.HasPrefix(mt, "application/vnd.docker.")
}

// IsEmptyDescriptor reports whether d describes the empty JSON blob `{}` of image-spec 1.1
// (media type, digest and size of ocispec.DescriptorEmptyJSON).
func IsEmptyDescriptor(d ocispec.Descriptor) bool {
	e := ocispec.DescriptorEmptyJSON
	return d.MediaType == e.MediaType && d.Digest == e.Digest && d.Size == e.Size
}

// Format is a family of media types.
type Format int

const (
	// FormatOCI: the media types of the OCI image specification.
	FormatOCI Format = iota
	// FormatDocker: Docker image manifest v2, schema 2.
	FormatDocker
)

// String returns "oci" or "docker".
func (f Format) String() string {
	switch f {
	case FormatOCI:
		return "oci"
	case FormatDocker:
		return "docker"
	}
	return fmt.Sprintf("format(%d)", int(f))
}

// ParseFormat parses "oci" or "docker" (also "v2s2"), as given to a --format flag.
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(s) {
	case "oci":
		return FormatOCI, nil
	case "docker", "v2s2":
		return FormatDocker, nil
	}
	return 0, fmt.Errorf("parse format %q: %w: want oci or docker", s, errdef.ErrInvalidArgument)
}

var ociToDocker = map[string]string{
	MediaTypeManifest:                  MediaTypeDockerManifest,
	MediaTypeIndex:                     MediaTypeDockerManifestList,
	MediaTypeConfig:                    MediaTypeDockerConfig,
	MediaTypeLayer:                     MediaTypeDockerLayer,
	MediaTypeLayerGzip:                 MediaTypeDockerLayerGzip,
	MediaTypeLayerNonDistributable:     MediaTypeDockerForeignLayer,
	MediaTypeLayerNonDistributableGzip: MediaTypeDockerForeignLayerGzip,
}

var dockerToOCI = map[string]string{
	MediaTypeDockerManifest:         MediaTypeManifest,
	MediaTypeDockerManifestList:     MediaTypeIndex,
	MediaTypeDockerConfig:           MediaTypeConfig,
	MediaTypeDockerLayer:            MediaTypeLayer,
	MediaTypeDockerLayerGzip:        MediaTypeLayerGzip,
	MediaTypeDockerLayerZstd:        MediaTypeLayerZstd,
	MediaTypeDockerForeignLayer:     MediaTypeLayerNonDistributable,
	MediaTypeDockerForeignLayerGzip: MediaTypeLayerNonDistributableGzip,
}

// ConvertMediaType returns the media type of format f that corresponds to mt. A media type that
// already belongs to f, or that neither family defines (artifact types, custom configs), is
// returned unchanged. A type with no counterpart in f — zstd layers, the empty descriptor and
// the non-distributable zstd layer for Docker, schema 1 for OCI — gives errdef.ErrUnsupported.
func ConvertMediaType(mt string, f Format) (string, error) {
	switch f {
	case FormatDocker:
		if d, ok := ociToDocker[mt]; ok {
			return d, nil
		}
		switch mt {
		case MediaTypeLayerZstd, MediaTypeLayerNonDistributableZstd, MediaTypeEmptyJSON:
			return "", fmt.Errorf("convert media type %s to docker: %w: docker schema 2 has no equivalent", mt, errdef.ErrUnsupported)
		}
		return mt, nil
	case FormatOCI:
		if o, ok := dockerToOCI[mt]; ok {
			return o, nil
		}
		switch mt {
		case MediaTypeDockerSchema1Manifest, MediaTypeDockerSchema1SignedManifest:
			return "", fmt.Errorf("convert media type %s to oci: %w: docker schema 1", mt, errdef.ErrUnsupported)
		}
		return mt, nil
	}
	return "", fmt.Errorf("convert media type %s: %w: format %v", mt, errdef.ErrInvalidArgument, f)
}
