// Package runtime holds the integration tests (build tag `integration`, root) of wharf-runtime:
// the built binary ($WHARF_BIN/wharf-runtime) is driven as containerd and podman drive runc —
// each lifecycle transition, the order and namespaces of the six hooks, joining a network
// namespace by path, a bind mount through a hostile symlink, the console socket, state that
// outlives the runtime process, bad input, the descriptors a container gets and a cwd reached
// through a leaked one (fds_test.go) —, run under containerd 1.6 (its runc v2 shim) and
// podman 4.3 (conmon) as their runc (TestPeerDropins), and checked by the OCI runtime-tools
// validation suite (TestRuntimeTools, with the expected failures of this host in
// testdata/runtime-tools-expected.txt). Bundles are the busybox test image's root file system
// with a config.json written here (bundle).
package runtime
