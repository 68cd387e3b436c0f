// Package depcheck holds no code: its test enforces the dependency arrows described in
// docs/ARCHITECTURE.md by listing every package's imports with `go list`.
package depcheck
