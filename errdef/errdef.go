// Package errdef holds the sentinel errors shared by every wharf package.
//
// Callers wrap them with context ("sha256:ab…: application/vnd.oci.image.manifest.v1+json: not found")
// and compare with errors.Is, never with ==. Packages that need a new class of error add it here so
// that the CLI can map each class to one exit code and the registry to one distribution-spec code.
package errdef

import "errors"

var (
	// ErrNotFound: the named object (blob, manifest, tag, container, bundle) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: the object exists and the operation would replace it.
	ErrAlreadyExists = errors.New("already exists")
	// ErrInvalidArgument: input that is malformed or violates a specification.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrInvalidDigest: a digest that does not match the OCI digest grammar or an unsupported algorithm.
	ErrInvalidDigest = errors.New("invalid digest")
	// ErrDigestMismatch: content whose digest differs from the one it was expected to have.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrSizeMismatch: content whose length differs from the size it was expected to have.
	ErrSizeMismatch = errors.New("size mismatch")
	// ErrInvalidSize: a negative size or one beyond a configured limit.
	ErrInvalidSize = errors.New("invalid size")
	// ErrTooLarge: a document or stream over a configured limit (JSON cap, decompression bomb…).
	ErrTooLarge = errors.New("too large")
	// ErrUnsupported: a media type, algorithm, platform or feature wharf does not handle.
	ErrUnsupported = errors.New("unsupported")
	// ErrInvalidState: an operation that is not allowed in the object's current state.
	ErrInvalidState = errors.New("invalid state")
	// ErrUnsafePath: a path that would resolve outside the directory it is confined to, or a symlink
	// where none may be followed.
	ErrUnsafePath = errors.New("unsafe path")
	// ErrUnauthorized: credentials are missing or were refused.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrDenied: the operation is not permitted for these credentials.
	ErrDenied = errors.New("denied")
	// ErrUnavailable: a transient condition; the operation may succeed if retried.
	ErrUnavailable = errors.New("unavailable")
)
