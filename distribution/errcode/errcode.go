// Package errcode defines, once, the error codes of distribution-spec ("Error Codes") with the
// HTTP status each one is sent with, the JSON error body both sides exchange, and the mapping
// between codes and errdef sentinels. The registry server writes these errors; the registry
// client reads them back (FromResponse) and finds the wharf error class with errors.Is.
package errcode

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/wharfoci/wharf/errdef"
)

// Code is one error code: its value on the wire, its default message, the HTTP status it is
// sent with, and the errdef sentinel it corresponds to.
type Code struct {
	Value      string
	Message    string
	HTTPStatus int
	Sentinel   error
}

var registry = map[string]Code{}

func register(value, message string, status int, sentinel error) Code {
	c := Code{Value: value, Message: message, HTTPStatus: status, Sentinel: sentinel}
	registry[value] = c
	return c
}

// The codes of distribution-spec 1.1 ("code-1" to "code-14"), then the few more that
// distribution and wharf use.
var (
	BlobUnknown         = register("BLOB_UNKNOWN", "blob unknown to registry", http.StatusNotFound, errdef.ErrNotFound)
	BlobUploadInvalid   = register("BLOB_UPLOAD_INVALID", "blob upload invalid", http.StatusBadRequest, errdef.ErrInvalidArgument)
	BlobUploadUnknown   = register("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", http.StatusNotFound, errdef.ErrNotFound)
	DigestInvalid       = register("DIGEST_INVALID", "provided digest did not match uploaded content", http.StatusBadRequest, errdef.ErrInvalidDigest)
	ManifestBlobUnknown = register("MANIFEST_BLOB_UNKNOWN", "manifest references a manifest or blob unknown to registry", http.StatusBadRequest, errdef.ErrNotFound)
	ManifestInvalid     = register("MANIFEST_INVALID", "manifest invalid", http.StatusBadRequest, errdef.ErrInvalidArgument)
	ManifestUnknown     = register("MANIFEST_UNKNOWN", "manifest unknown to registry", http.StatusNotFound, errdef.ErrNotFound)
	NameInvalid         = register("NAME_INVALID", "invalid repository name", http.StatusBadRequest, errdef.ErrInvalidArgument)
	NameUnknown         = register("NAME_UNKNOWN", "repository name not known to registry", http.StatusNotFound, errdef.ErrNotFound)
	SizeInvalid         = register("SIZE_INVALID", "provided length did not match content length", http.StatusBadRequest, errdef.ErrSizeMismatch)
	Unauthorized        = register("UNAUTHORIZED", "authentication required", http.StatusUnauthorized, errdef.ErrUnauthorized)
	Denied              = register("DENIED", "requested access to the resource is denied", http.StatusForbidden, errdef.ErrDenied)
	Unsupported         = register("UNSUPPORTED", "the operation is unsupported", http.StatusMethodNotAllowed, errdef.ErrUnsupported)
	TooManyRequests     = register("TOOMANYREQUESTS", "too many requests", http.StatusTooManyRequests, errdef.ErrUnavailable)

	RangeInvalid            = register("RANGE_INVALID", "invalid content range", http.StatusRequestedRangeNotSatisfiable, errdef.ErrInvalidArgument)
	TagInvalid              = register("TAG_INVALID", "manifest tag did not match URI", http.StatusBadRequest, errdef.ErrInvalidArgument)
	PaginationNumberInvalid = register("PAGINATION_NUMBER_INVALID", "invalid number of results requested", http.StatusBadRequest, errdef.ErrInvalidArgument)
	ManifestTooLarge        = register("MANIFEST_INVALID", "manifest too large", http.StatusRequestEntityTooLarge, errdef.ErrTooLarge)
	Unavailable             = register("UNAVAILABLE", "service unavailable", http.StatusServiceUnavailable, errdef.ErrUnavailable)
	Unknown                 = register("UNKNOWN", "unknown error", http.StatusInternalServerError, nil)
)

func init() {
	// ManifestTooLarge shares its value with ManifestInvalid; a client reading it back gets
	// ManifestInvalid, the spec's code.
	registry[ManifestInvalid.Value] = ManifestInvalid
}

// Lookup returns the code with value v.
func Lookup(v string) (Code, bool) {
	c, ok := registry[v]
	return c, ok
}

// Error is one error of an error body.
type Error struct {
	Code    Code
	Message string
	Detail  any
	Status  int // the HTTP status the error came with (client side), or 0 for Code.HTTPStatus
}

// New returns an error of code c with message (the code's message when empty).
func (c Code) New(message string) *Error { return &Error{Code: c, Message: message} }

// Errorf returns an error of code c with a formatted message.
func (c Code) Errorf(format string, args ...any) *Error {
	return &Error{Code: c, Message: fmt.Sprintf(format, args...)}
}

// WithDetail returns a copy of e carrying detail.
func (e *Error) WithDetail(detail any) *Error {
	c := *e
	c.Detail = detail
	return &c
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = e.Code.Message
	}
	return strings.ToLower(e.Code.Value) + ": " + msg
}

// Unwrap lets errors.Is find the errdef sentinel of the code.
func (e *Error) Unwrap() error { return e.Code.Sentinel }

// HTTPStatus is the status this error is (or was) sent with.
func (e *Error) HTTPStatus() int {
	if e.Status != 0 {
		return e.Status
	}
	return e.Code.HTTPStatus
}

type wireError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

type wireBody struct {
	Errors []wireError `json:"errors"`
}

// Write sends errs as a distribution-spec error body with the status of the first one.
func Write(w http.ResponseWriter, errs ...*Error) {
	body := wireBody{Errors: make([]wireError, 0, len(errs))}
	status := http.StatusInternalServerError
	for i, e := range errs {
		if i == 0 {
			status = e.HTTPStatus()
		}
		msg := e.Message
		if msg == "" {
			msg = e.Code.Message
		}
		body.Errors = append(body.Errors, wireError{Code: e.Code.Value, Message: msg, Detail: e.Detail})
	}
	b, _ := json.Marshal(body)
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// Errors is every error of one response body. It unwraps to each of them.
type Errors []*Error

func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// Unwrap returns the errors, for errors.Is and errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// FromResponse reads the error body of a failed response (at most 64 KiB) and returns it as
// Errors, or, when the body holds no spec error, an error built from the status alone
// (404 → errdef.ErrNotFound, 401, 403, 429 and 5xx likewise).
func FromResponse(resp *http.Response) error {
	var body wireBody
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, &body) == nil && len(body.Errors) > 0 {
		es := make(Errors, 0, len(body.Errors))
		for _, we := range body.Errors {
			c, ok := Lookup(we.Code)
			if !ok {
				c = Code{Value: we.Code, HTTPStatus: resp.StatusCode, Sentinel: statusSentinel(resp.StatusCode)}
			}
			es = append(es, &Error{Code: c, Message: we.Message, Detail: we.Detail, Status: resp.StatusCode})
		}
		return es
	}
	return &StatusError{Status: resp.StatusCode, Method: methodOf(resp), URL: urlOf(resp)}
}

func methodOf(resp *http.Response) string {
	if resp.Request != nil {
		return resp.Request.Method
	}
	return ""
}

func urlOf(resp *http.Response) string {
	if resp.Request != nil && resp.Request.URL != nil {
		return resp.Request.URL.Redacted()
	}
	return ""
}

// StatusError is a failed response without a spec error body.
type StatusError struct {
	Status int
	Method string
	URL    string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: unexpected status %d %s", e.Method, e.URL, e.Status, http.StatusText(e.Status))
}

// Unwrap maps the status to an errdef sentinel (nil when none fits).
func (e *StatusError) Unwrap() error { return statusSentinel(e.Status) }

func statusSentinel(status int) error {
	switch {
	case status == http.StatusNotFound:
		return errdef.ErrNotFound
	case status == http.StatusUnauthorized:
		return errdef.ErrUnauthorized
	case status == http.StatusForbidden:
		return errdef.ErrDenied
	case status == http.StatusTooManyRequests, status >= 500:
		return errdef.ErrUnavailable
	case status == http.StatusRequestEntityTooLarge:
		return errdef.ErrTooLarge
	case status == http.StatusMethodNotAllowed:
		return errdef.ErrUnsupported
	case status >= 400:
		return errdef.ErrInvalidArgument
	}
	return nil
}

// FromError maps a wharf error to the code a server should answer with: an *Error found in
// the chain is kept; errdef sentinels map to fallback-specific codes by the caller, so this
// returns Unknown for anything else.
func FromError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Unknown.New(err.Error())
}
