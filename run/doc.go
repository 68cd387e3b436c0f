// Package run is wharf's end-to-end path: an image (from a layout, an archive or a registry:
// any content.Fetcher and a manifest descriptor) is unpacked into a runtime bundle
// (image/bundle, image-spec conversion.md) and run by an OCI runtime binary — wharf-runtime by
// default, or any runc-compatible one — with the caller's stdio, its exit status passed back.
//
// The runtime is driven through its command line, as containerd and podman drive runc, never
// linked: the runtime package re-executes its own binary as the container's init.
package run
