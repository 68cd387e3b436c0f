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
// hashed while it is applied and checked against the expected diffID.
//
// Diff and Write (repack) produce a changeset from a directory and the metadata recorded when
// it was unpacked (see Snapshot), without re-reading unchanged files.
package layer
