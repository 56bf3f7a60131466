package pglease

import (
	"errors"
	"fmt"
	"time"
)

// The server's error codes (proto/openapi.yaml, ErrorCode), as APIError.Code carries them.
const (
	CodeBadRequest       = "bad_request"
	CodeInvalidJSON      = "invalid_json"
	CodeInvalidArgument  = "invalid_argument"
	CodeUnauthorized     = "unauthorized"
	CodeNotFound         = "not_found"
	CodeUnknownTemplate  = "unknown_template"
	CodeUnknownLease     = "unknown_lease"
	CodeUnknownBuild     = "unknown_build"
	CodeUnknownVersion   = "unknown_version"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeConflict         = "conflict"
	CodeSessionsBusy     = "sessions_busy"
	CodeBodyTooLarge     = "body_too_large"
	CodeInternalError    = "internal_error"
	CodeNotReady         = "not_ready"
	CodePoolExhausted    = "pool_exhausted"
	CodeTemplateFailed   = "template_failed"
	CodeTemplateBuilding = "template_building"
	CodeBackendDown      = "backend_down"
)

// APIError is an error pgleased answered with: its HTTP status, code and message.
type APIError struct {
	Status  int
	Code    string
	Message string
	// RetryAfter is the Retry-After header (409 sessions_busy, 503), zero when absent.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	return fmt.Sprintf("pgleased: %s (%d %s)", e.Message, e.Status, e.Code)
}

// UnreachableError says that no pgleased answered at URL.
type UnreachableError struct {
	URL string
	Err error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach pgleased at %s: %v", e.URL, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// MigrationError says that the migrations of a build failed; the build was aborted.
type MigrationError struct {
	Template string
	Err      error
}

func (e *MigrationError) Error() string {
	return fmt.Sprintf("pglease: the migrations of template %s failed: %v", e.Template, e.Err)
}

func (e *MigrationError) Unwrap() error { return e.Err }

// ErrResetUnsupported is returned by Reset from a pgleased that cannot reset a lease in place
// (no POST /v1/leases/{id}/reset).
var ErrResetUnsupported = errors.New("this pgleased cannot reset a lease in place (no POST /v1/leases/{id}/reset)")

// HasCode reports whether err is, or wraps, an APIError with this code.
func HasCode(err error, code string) bool {
	var api *APIError
	return errors.As(err, &api) && api.Code == code
}
