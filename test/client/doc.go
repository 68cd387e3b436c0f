// Package client tests the registry client (distribution/client) and the commands built on it.
// conformance_test.go runs in `make test` with wharf's registry in process: the content
// conformance suite (monolithic and chunked uploads), copy round trips with platforms and
// referrers, mount. integration_test.go (tag integration) drives ./bin/wharf against `wharf
// serve` and docker-registry: busybox, bookworm and multi-arch images layout → registry →
// layout with identical digests, skopeo pulling what wharf pushed and the reverse, a
// Bearer-token-protected registry (token realm and checking proxy in the test) with a docker
// config.json and without, login/logout, and a 256 MiB download cut in the middle that
// resumes with Range.
package client
