// Package interop holds integration tests (build tag `integration`) that run the built wharf
// binary (WHARF_BIN) side by side with skopeo and umoci: layouts those tools write are read,
// validated and copied by wharf, and what wharf writes is read by them. The test images come
// from hack/images.sh (cached under .cache/images). With WHARF_PEERS=1 a missing peer
// is a failure, not a skip. Run them with `make integration`.
package interop
