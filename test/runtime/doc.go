// Package runtime holds the integration tests (build tag `integration`, root) of wharf-runtime:
// the built binary ($WHARF_BIN/wharf-runtime) is driven as containerd and podman drive runc —
// each lifecycle transition, the order and namespaces of the six hooks, joining a network
// namespace by path, a bind mount through a hostile symlink, the console socket, state that
// outlives the runtime process, bad input — and the peer drop-in scripts of ../shared/peers are
// run against it. Bundles come from ../shared/peers/images/make-bundle.sh.
package runtime
