// Package content holds wharf's content-addressed storage contracts and the helpers every
// implementation shares: digest and descriptor validation (image-spec descriptor.md), verified
// readers and capped JSON reads.
//
// The interfaces are small and composed (Fetcher, Pusher, Storage, Ingester…); optional abilities
// are extension interfaces found by a type assertion. Implementations live in sub-packages
// (content/local is the on-disk store shared by image layouts and the registry) and all of them
// pass the conformance suite in content/contenttest.
package content
