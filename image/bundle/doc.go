// Package bundle turns an image into an OCI runtime bundle (image-spec conversion.md,
// runtime-spec bundle.md): BUNDLE/rootfs holds the image's layers applied in order
// (image/layer), BUNDLE/config.json the runtime configuration converted from the image config
// on top of runc-spec-like defaults, and BUNDLE/wharf.json plus BUNDLE/wharf.snapshot record
// the source image and the state of every path at unpack time, so that a later repack finds
// what changed without hashing unchanged files.
//
// Unpack builds the bundle in a temporary sibling directory (mode 0700) and renames it into
// place only when it is complete: a failed unpack leaves nothing that looks like a bundle.
//
// Repack commits what changed in BUNDLE/rootfs as one new layer (image/layer Changes and
// WriteChanges) with a new config and manifest; NewImage stores an empty image and Mutate a
// changed config (`wharf new`, `wharf config`).
package bundle
