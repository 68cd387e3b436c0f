package image

import (
	"errors"
	"strings"

	digest "github.com/opencontainers/go-digest"

	"github.com/wharfoci/wharf/errdef"
)

// Error is a document that failed parsing or validation. It names the document (its kind and,
// when known, its digest) and the JSON field at fault. It wraps errdef.ErrInvalidArgument and
// its cause, so that errors.Is finds both the class and the precise sentinel (ErrInvalidDigest,
// ErrSizeMismatch, ErrTooLarge…). A cause wrapping errdef.ErrUnsupported is not also invalid.
type Error struct {
	Kind   string        // "manifest", "index", "config" or "document" when not yet known
	Digest digest.Digest // the document's digest; empty when parsed without one
	Field  string        // JSON path of the offending field, e.g. "layers[2].digest"; empty for the whole document
	Err    error         // the cause
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("validate ")
	b.WriteString(e.Kind)
	if e.Digest != "" {
		b.WriteByte(' ')
		b.WriteString(string(e.Digest))
	}
	if e.Field != "" {
		b.WriteString(": ")
		b.WriteString(e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the cause and, unless the cause already is one or is errdef.ErrUnsupported,
// errdef.ErrInvalidArgument.
func (e *Error) Unwrap() []error {
	if errors.Is(e.Err, errdef.ErrInvalidArgument) || errors.Is(e.Err, errdef.ErrUnsupported) {
		return []error{e.Err}
	}
	return []error{errdef.ErrInvalidArgument, e.Err}
}
