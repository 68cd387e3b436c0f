// Package run holds the end-to-end integration tests of `wharf run` (tagged integration): an
// image from a layout or from wharf's own registry, unpacked and run by wharf-runtime or runc.
package run
