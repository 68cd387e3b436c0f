// Package layer holds the integration tests of image layers against umoci and runc: the tree
// `wharf unpack` writes must equal umoci's for the busybox, Debian bookworm and 50,000-file
// images of hack/images.sh, --platform must pick from a nested index, runc must run a
// wharf-unpacked bundle, and umoci must unpack wharf-repacked images to the tree wharf gives.
// Build tag: integration.
package layer
