// Package layout holds the interoperability tests of image/layout and image/copy against the
// peers (build tag integration): layouts written by umoci and skopeo (testutil.UmociImage, and
// the multi-platform index of hack/images.sh) are opened, walked with verification, garbage-collected and copied by
// wharf; what wharf writes (layouts and oci-archive files) is unpacked by `umoci unpack` and
// copied by `skopeo copy`.
package layout
