// Package imageref parses the image names the wharf CLI accepts, "transport:details" in the
// style of containers-transports(5) (skopeo, podman, buildah):
//
//	oci:DIR[:TAG|@DIGEST]          an OCI image layout directory (image-spec image-layout.md)
//	oci-archive:FILE[:TAG|@DIGEST] a tar archive of such a directory
//
// As in skopeo, DIR (or FILE) ends at the first ':'; everything after it is the tag, which may
// itself contain ':' (a tag is an org.opencontainers.image.ref.name, whose grammar allows ':',
// '@' and '/'). A directory whose name contains ':' cannot be named this way: pass a path
// through a symlink-free alias or rename it. "DIR@ALG:HEX" names a manifest by digest; it is
// recognised when what follows the last '@' before the first ':' is a registered digest
// algorithm (sha256, sha512).
//
// New transports (docker:// for a registry) are added to the transports table in imageref.go:
// one parse function per transport prefix.
package imageref
