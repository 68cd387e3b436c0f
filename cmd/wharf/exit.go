package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/image/layout"
)

// Exit codes, documented in `wharf --help` and README.md.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitNotFound    = 3
	exitInterrupted = 130
)

// usageError marks an error in how wharf was called (flags, arguments, image names): exit 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErrorf(format string, a ...any) error {
	return &usageError{fmt.Errorf(format, a...)}
}

// exitStatus makes wharf exit with code and print nothing: `wharf run` passes the container's
// status on this way (the container has already said what it had to say).
type exitStatus struct{ code int }

func (e *exitStatus) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// asUsage marks err (for instance an image-name parse error) as a usage error; nil stays nil.
func asUsage(err error) error {
	if err == nil {
		return nil
	}
	return &usageError{err}
}

// exitCode maps an error to the process exit code: usage errors 2, errdef.ErrNotFound 3
// (except inside a failed validation, which is 1), cancellation by a signal 130, anything
// else 1.
func exitCode(ctx context.Context, err error) int {
	var ue *usageError
	var ve *layout.ValidationError
	var es *exitStatus
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &es):
		return es.code
	case errors.As(err, &ue):
		return exitUsage
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.As(err, &ve):
		// A blob missing from an image being validated is a failed validation, not a bad name.
		return exitFailure
	case errors.Is(err, errdef.ErrNotFound):
		return exitNotFound
	default:
		return exitFailure
	}
}

// oneLine keeps an error message on one line so that `wharf: <error>` is exactly one line.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

// printChain writes every wrapped error of err, outermost first (--debug).
func printChain(w io.Writer, err error) {
	depth := 0
	var walk func(error)
	walk = func(e error) {
		if e == nil || depth > 32 {
			return
		}
		fmt.Fprintf(w, "wharf: debug: %s%T: %s\n", strings.Repeat("  ", depth), e, oneLine(e.Error()))
		depth++
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, c := range u.Unwrap() {
				walk(c)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
		depth--
	}
	walk(err)
}
