// Package layout reads and writes OCI image layouts (image-spec image-layout.md): a directory
// holding an `oci-layout` file ({"imageLayoutVersion":"1.0.0"}), an `index.json` image index
// whose entries are named by the `org.opencontainers.image.ref.name` annotation, and blobs at
// `blobs/<alg>/<encoded>` (stored by content/local). It also reads and writes oci-archive files,
// a tar of such a directory.
//
// A *Layout is a content.Target (Fetch, Push, Exists, Resolve, Tag) and also lists, untags,
// deletes, lists referrers and collects garbage. index.json is read with the 4 MiB document cap
// and validated; every change to it happens under an exclusive flock on `.wharf-lock` in the
// layout and replaces the file atomically (temporary file, fsync, rename, directory fsync), so
// goroutines and processes writing one layout never corrupt it or lose a tag.
//
// Nothing outside the layout is ever read or written: every file inside it is opened with
// openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS), digests are validated before they become paths,
// and a symlinked index.json, blobs directory or blob is refused.
package layout
