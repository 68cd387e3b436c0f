// Package local is wharf's on-disk content store: blobs at root/blobs/<alg>/<hex>, exactly the
// blob layout of an OCI image layout (image-spec image-layout.md), so a layout's root is a store
// root. The registry server keeps its global blob store here too.
//
// Every write hashes while streaming, is fsynced, verified against the expected digest and size,
// made read-only (0444) and renamed into place without replacing; digests are validated before
// they become paths, and no symlink inside the store is ever followed (openat2 with
// RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS from the root descriptor). Resumable writes (the
// content.Ingester contract) keep their data and digest state in an ingest directory and survive
// the process being killed.
package local
