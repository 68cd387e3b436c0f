package build

import (
	"errors"
	"fmt"

	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"github.com/wharfoci/wharf/errdef"
)

// Error is an error in a Containerfile: it names the file and the line. It wraps
// errdef.ErrInvalidArgument (or errdef.ErrNotFound for a missing stage or file) and the
// reference parser's error, if any.
type Error struct {
	File string
	Line int // 0 when the error is about the whole file
	Err  error
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// errAt builds an *Error at line, wrapping sentinel (errdef.ErrInvalidArgument when nil) and
// the formatted message.
func errAt(file string, line int, sentinel error, format string, args ...any) *Error {
	if sentinel == nil {
		sentinel = errdef.ErrInvalidArgument
	}
	return &Error{File: file, Line: line, Err: fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))}
}

// wrapParse turns an error of the reference parser into an *Error, taking the line from its
// location when it carries one (fallback otherwise).
func wrapParse(file string, fallback int, err error) error {
	var el *parser.LocationError
	line := fallback
	if errors.As(err, &el) && len(el.Locations) > 0 && len(el.Locations[0]) > 0 {
		line = el.Locations[0][0].Start.Line
	}
	msg := err.Error()
	// the parser prefixes "dockerfile parse error on line N: "; the line is ours to print
	var inner interface{ Unwrap() error }
	if errors.As(err, &inner) && inner.Unwrap() != nil && fmt.Sprintf("%T", err) == "*instructions.parseError" {
		msg = inner.Unwrap().Error()
	}
	return &Error{File: file, Line: line, Err: fmt.Errorf("%w: %s", errdef.ErrInvalidArgument, msg)}
}

// Warning is something the build goes on after, reported to the user (FILE:LINE: message).
type Warning struct {
	File    string
	Line    int
	Message string
}

func (w Warning) String() string {
	if w.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", w.File, w.Line, w.Message)
	}
	if w.File != "" {
		return fmt.Sprintf("%s: %s", w.File, w.Message)
	}
	return w.Message
}
