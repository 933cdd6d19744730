package manager

import (
	"errors"
	"fmt"
)

// Application error codes. The transport maps each to one HTTP status and one
// Lambda errorType; anything that is not an *Error is reported as CodeInternal.
const (
	CodeInvalidArgument    = "invalid_argument"
	CodeNotFound           = "not_found"
	CodeAlreadyExists      = "already_exists"
	CodeFailedPrecondition = "failed_precondition"
	CodePayloadTooLarge    = "payload_too_large"
	CodeThrottled          = "throttled"
	CodeUnavailable        = "unavailable"
	CodeInternal           = "internal"
)

// Error is Stampede's one application error: a machine-readable code and a
// message safe to show the caller. Existing and Holder carry the state that
// made a conditional request fail, so the caller needs no second read.
type Error struct {
	Code    string
	Message string

	// Existing is the entry that blocked a put (CodeAlreadyExists).
	Existing *Entry
	// Holder is the reservation that blocked a request (CodeFailedPrecondition).
	Holder *Reservation

	// Err is the underlying cause, for logs only; it never reaches a client.
	Err error
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an application error with the given code and message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the application error in err's chain, or
// CodeInternal for any other non-nil error, or "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the message of the application error in err's chain,
// or a generic message for any other error: internal details stay in logs.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
