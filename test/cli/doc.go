// Package cli holds integration tests (build tag `integration`) that drive the built wharf
// binary (WHARF_BIN) as a user would: exit codes, one-line errors, and hostile image layouts
// that must be refused without touching anything outside the layout. The layouts are written
// by hand in the tests, so no peer is needed. Run them with `make integration`.
package cli
