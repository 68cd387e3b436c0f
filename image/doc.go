// Package image holds the OCI image model shared by every other part of wharf: media types
// (image-spec media-types.md, and Docker image manifest v2 schema 2 for compatibility),
// parsing and validation of manifests (manifest.md), indexes (image-index.md) and image
// configs (config.md), the descriptor rules of descriptor.md (digest grammar, size, embedded
// data, artifactType, subject, annotations), the reference graph between documents, and
// platform matching and selection in (nested) indexes.
//
// Documents are validated in three steps, each before the next: size (at most
// content.MaxDocumentSize) and, when the descriptor names a digest, the bytes against it; the
// image-spec JSON schemas (Docker schema 2 has none, so structural checks stand in); then the
// semantic rules the schemas cannot express. Every error returned by a Parse function wraps
// errdef.ErrInvalidArgument (and, where one fits, a more precise sentinel such as
// errdef.ErrInvalidDigest or errdef.ErrTooLarge), except for a media type that is not a
// document wharf parses, which wraps errdef.ErrUnsupported.
//
// The package knows documents, not storage: it reads blobs only through content.Fetcher.
// Layouts, copying, layers and runtime bundles live in the sub-packages layout, copy, layer
// and bundle.
package image
