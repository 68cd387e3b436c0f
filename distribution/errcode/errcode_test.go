package errcode

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/wharfoci/wharf/errdef"
)

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    *Error
		status int
		is     error
	}{
		{"blob-unknown", BlobUnknown.New(""), 404, errdef.ErrNotFound},
		{"digest-invalid", DigestInvalid.Errorf("digest %q", "x"), 400, errdef.ErrInvalidDigest},
		{"range", RangeInvalid.New("out of order"), 416, errdef.ErrInvalidArgument},
		{"denied", Denied.New(""), 403, errdef.ErrDenied},
		{"too-large", ManifestTooLarge.New(""), 413, errdef.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			Write(rec, tc.err.WithDetail(map[string]string{"k": "v"}))
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d", rec.Code, tc.status)
			}
			resp := rec.Result()
			err := FromResponse(resp)
			if !errors.Is(err, tc.is) {
				t.Fatalf("read back %v: not %v", err, tc.is)
			}
			var e *Error
			if !errors.As(err, &e) || e.Code.Value != tc.err.Code.Value || e.HTTPStatus() != tc.status {
				t.Fatalf("read back %#v", err)
			}
		})
	}
}

func TestStatusOnly(t *testing.T) {
	for status, want := range map[int]error{404: errdef.ErrNotFound, 401: errdef.ErrUnauthorized, 503: errdef.ErrUnavailable, 400: errdef.ErrInvalidArgument} {
		rec := httptest.NewRecorder()
		rec.WriteHeader(status)
		resp := rec.Result()
		resp.Request, _ = http.NewRequest("GET", "http://x/v2/", nil)
		if err := FromResponse(resp); !errors.Is(err, want) {
			t.Errorf("status %d: %v, want %v", status, err, want)
		}
	}
}
