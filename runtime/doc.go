// Package runtime is wharf's OCI runtime (runtime-spec v1.3.0): it creates containers from a
// bundle (config.json + rootfs), drives the lifecycle of runtime.md (creating → created →
// running → stopped, with the six hooks), and keeps each container's state on disk under a root
// directory so that every operation can be a separate process, as with runc.
//
// It implements config.md and config-linux.md for Linux: namespaces (new or joined by path),
// mounts resolved inside the rootfs (internal/rootfs), pivot_root, /dev, masked and read-only
// paths, process attributes (user, capabilities, rlimits, no_new_privileges, terminal), cgroups
// on v1, v2 and hybrid hosts (internal/cgroups) and seccomp (internal/seccomp).
//
// The container's init is this same binary re-executed (see Init and docs/ARCHITECTURE.md): the
// package imports nothing of wharf's image, content or distribution code. Create (create.go)
// and the init (initContainer) are written as the steps of runtime.md's create and start.
package runtime
