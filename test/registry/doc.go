// Package registry holds the integration tests of `wharf serve` (build tag integration): the
// OCI distribution-spec conformance suite (the pinned Go module, built once into
// .cache/suites/conformance), the real clients (crane, skopeo, podman, oras) driven step by
// step, and fault tests against the real binary — kill -9 during a big
// push then resume of the same upload after a restart, kill -9 during manifest pushes, 16
// concurrent pushes of one blob, and malformed requests that must get 4xx while the server
// keeps serving.
package registry
