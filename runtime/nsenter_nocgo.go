//go:build !cgo

package runtime

// haveNsenter is false without cgo: joining an existing user or time namespace is refused.
const haveNsenter = false
