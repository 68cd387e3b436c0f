// Package layer holds the integration tests of image layers against umoci and runc: the tree
// `wharf unpack` writes must equal umoci's for the busybox, Debian bookworm and 50,000-file
// images of hack/images.sh, --platform must pick from a nested index, runc must run a
// wharf-unpacked bundle, and umoci must unpack wharf-repacked images to the tree wharf gives.
// Names holding control bytes survive unpack and repack (an unchanged bundle repacks to an
// empty layer, one change to exactly that change); files with holes repack as PAX 1.0 sparse
// entries that wharf, umoci, GNU tar, archive/tar and podman read back to the same files, and
// GNU tar's sparse layers (every format) unpack with their holes.
// Build tag: integration.
package layer
