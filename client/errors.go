package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Error codes the service returns in {"error":{"code":...}}.
const (
	CodeInvalidArgument    = "invalid_argument"
	CodeNotFound           = "not_found"
	CodeAlreadyExists      = "already_exists"
	CodeFailedPrecondition = "failed_precondition"
	CodePayloadTooLarge    = "payload_too_large"
	CodeThrottled          = "throttled"
	CodeUnavailable        = "unavailable"
	CodeInternal           = "internal"
	// CodeNotModified is the client's code for a 304 answer to a get with
	// GetOptions.IfNoneMatch.
	CodeNotModified = "not_modified"
)

// Sentinel errors: errors.Is(err, ErrNotFound) is true when err (or an
// error it wraps) is an *APIError with that code.
var (
	ErrInvalidArgument    = errors.New("stampede: invalid argument")
	ErrNotFound           = errors.New("stampede: not found")
	ErrAlreadyExists      = errors.New("stampede: already exists")
	ErrFailedPrecondition = errors.New("stampede: failed precondition")
	ErrPayloadTooLarge    = errors.New("stampede: payload too large")
	ErrThrottled          = errors.New("stampede: throttled")
	ErrUnavailable        = errors.New("stampede: unavailable")
	ErrInternal           = errors.New("stampede: internal error")
	// ErrNotModified: the entry still has the version named by
	// GetOptions.IfNoneMatch.
	ErrNotModified = errors.New("stampede: not modified")
)

// ErrReservationLost is returned by GetOrCompute when another owner took
// the reservation over while compute ran (this caller's heartbeats did not
// reach the service in time). compute's context is cancelled with it as the
// cause, and the output is not stored.
var ErrReservationLost = errors.New("stampede: reservation lost")

// sentinel returns the sentinel error of a code, or nil.
func sentinel(code string) error {
	switch code {
	case CodeInvalidArgument:
		return ErrInvalidArgument
	case CodeNotFound:
		return ErrNotFound
	case CodeAlreadyExists:
		return ErrAlreadyExists
	case CodeFailedPrecondition:
		return ErrFailedPrecondition
	case CodePayloadTooLarge:
		return ErrPayloadTooLarge
	case CodeThrottled:
		return ErrThrottled
	case CodeUnavailable:
		return ErrUnavailable
	case CodeInternal:
		return ErrInternal
	case CodeNotModified:
		return ErrNotModified
	}
	return nil
}

// APIError is a request the service (or the gateway in front of it)
// refused.
type APIError struct {
	// Status is the HTTP status; 0 when the client refused the request
	// before sending it.
	Status int
	// Code is the service's error code (CodeNotFound, ...). For a response
	// that does not come from Stampede (an API Gateway authorization error,
	// a proxy) it is derived from the status for 413, 429 and 5xx and empty
	// otherwise.
	Code    string
	Message string
	// Existing is the live entry that made a put fail (CodeAlreadyExists,
	// or CodeFailedPrecondition for If-Match and fenced puts).
	Existing *Entry
	// Holder is the reservation that made a fenced put fail
	// (CodeFailedPrecondition); nil when nobody holds the key.
	Holder *Reservation
}

// Error implements the error interface.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("stampede: ")
	switch {
	case e.Code != "" && e.Status != 0:
		fmt.Fprintf(&b, "%s (HTTP %d)", e.Code, e.Status)
	case e.Code != "":
		b.WriteString(e.Code)
	default:
		fmt.Fprintf(&b, "HTTP %d", e.Status)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// Is reports whether target is the sentinel of e's code.
func (e *APIError) Is(target error) bool {
	s := sentinel(e.Code)
	return s != nil && s == target
}

// retryable reports whether a request that got this error may be retried.
func (e *APIError) retryable() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// invalidArgument is an error the client raises before sending anything.
func invalidArgument(format string, args ...any) error {
	return &APIError{Code: CodeInvalidArgument, Message: fmt.Sprintf(format, args...)}
}

// parseError turns an error response into an *APIError.
func parseError(status int, body []byte) *APIError {
	var w struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
		Existing *Entry       `json:"existing"`
		Holder   *Reservation `json:"holder"`
		// API Gateway's own errors: {"message":"Forbidden"}.
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &w) == nil && w.Error != nil && w.Error.Code != "" {
		return &APIError{Status: status, Code: w.Error.Code, Message: w.Error.Message, Existing: w.Existing, Holder: w.Holder}
	}
	e := &APIError{Status: status, Message: w.Message}
	switch {
	case status == http.StatusNotModified:
		e.Code = CodeNotModified
	case status == http.StatusTooManyRequests:
		e.Code = CodeThrottled
	case status == http.StatusRequestEntityTooLarge:
		e.Code = CodePayloadTooLarge
	case status == http.StatusBadGateway, status == http.StatusServiceUnavailable, status == http.StatusGatewayTimeout:
		e.Code = CodeUnavailable
	case status >= 500:
		e.Code = CodeInternal
	}
	if e.Message == "" {
		e.Message = snippet(body)
	}
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	return e
}

// snippet returns the start of a non-JSON body, on one line.
func snippet(body []byte) string {
	const max = 200
	s := strings.Join(strings.Fields(string(body)), " ")
	if len(s) > max {
		s = s[:max]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "…"
	}
	return s
}
