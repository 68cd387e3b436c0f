// Package layer applies and creates image layer changesets (image-spec layer.md).
//
// Apply reads one layer blob (tar, tar+gzip or tar+zstd, chosen by media type and checked by
// the stream's magic bytes) and applies it to a root filesystem: whiteouts (.wh.NAME) hide what
// lower layers put there, an opaque whiteout (.wh..wh..opq) hides a directory's lower content
// wherever it sits in the archive, AUFS metadata (.wh..wh.*) is skipped, a later duplicate entry
// wins, an entry over an existing path replaces it (a directory over a directory keeps the
// directory and takes the entry's attributes), and directory attributes are applied after the
// directory's children. Every filesystem operation is resolved inside the root through
// internal/rootfs (openat2 RESOLVE_IN_ROOT) and *at system calls on directory descriptors, so a
// hostile layer can neither write nor probe outside the root. Limits bound the uncompressed
// size, the compression ratio, the entry count and the name length; the uncompressed stream is
// hashed while it is applied and checked against the expected diffID. A sparse file (GNU
// tar's old GNU, PAX 0.0, 0.1 and 1.0 formats) is applied with its holes as holes: its
// apparent size is kept, only its data is written and counted against the limits, and a map
// that does not hold (overlapping, out of order, beyond the size, over or under the data the
// entry stores) is refused.
//
// Changes and WriteChanges (repack) produce a changeset from a directory and the metadata
// recorded when it was unpacked (WriteSnapshot: one length-prefixed binary record per path, so
// any name but one holding NUL reads back exactly), without re-reading unchanged files. A file
// with holes is written as a PAX 1.0 sparse entry, which GNU tar, archive/tar (containerd,
// podman), umoci and Apply read back to the same file.
package layer
