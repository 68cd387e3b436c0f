// Package copy copies an image graph from one content store to another: one algorithm for
// every pair of ends (layout ↔ layout, oci-archive, registry ↔ layout, registry ↔ registry),
// since both ends are only content interfaces.
//
// Copy resolves a reference at the source (CopyRoot starts from a root already resolved),
// optionally picks one platform's manifest out of an
// (possibly nested) index, copies the graph depth-first — children before the manifest or
// index that names them, so the destination never holds a document whose children are
// missing —, skips what the destination already has, verifies every byte against its
// descriptor's digest and size before the destination commits it, and finally names the root
// at the destination. Blobs are copied in parallel up to Options.Concurrency. Hooks
// (PreCopy, PostCopy, OnCopySkipped, MountFrom, OnMounted) and a progress callback let callers
// observe and steer the copy; Options.Referrers also copies the manifests whose subject is a
// copied manifest when the source can list them (content.ReferrerLister). The progress
// callback hears of each descriptor as soon as the copy learns of it (Expected), so that a
// caller knows what remains without walking the graph itself.
//
// Convert is a Source that shows an image's manifests and indexes converted to another format
// (Docker schema 2 or OCI), what `wharf copy --format` copies from.
//
// The graph is image-spec's: a manifest's config and layers, an index's manifests
// (image-spec manifest.md, image-index.md), read with package image.
package copy
