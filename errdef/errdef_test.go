package errdef

import (
	"errors"
	"fmt"
	"testing"
)

// TestSentinelsDistinct guards against two classes collapsing into one (the CLI maps each class
// to an exit code and the registry to a distribution-spec code by errors.Is).
func TestSentinelsDistinct(t *testing.T) {
	all := []error{ErrNotFound, ErrAlreadyExists, ErrInvalidArgument, ErrInvalidDigest, ErrDigestMismatch,
		ErrSizeMismatch, ErrInvalidSize, ErrTooLarge, ErrUnsupported, ErrInvalidState, ErrUnsafePath,
		ErrUnauthorized, ErrDenied, ErrUnavailable}
	for i, a := range all {
		w := fmt.Errorf("sha256:abc: %w", a)
		for j, b := range all {
			if errors.Is(w, b) != (i == j) {
				t.Errorf("errors.Is(wrapped %v, %v) = %v", a, b, i != j)
			}
		}
	}
}
