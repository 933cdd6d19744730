package contract

import (
	"net/http"
	"strings"
)

// Error codes, as they appear in {"error":{"code":…}}.
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

// LambdaErrorTypePrefix starts the errorType of every Lambda error the
// functions return to direct invocations; Step Functions' Catch and Retry
// match on the whole type.
const LambdaErrorTypePrefix = "Stampede."

// ErrorCode is one error code with its HTTP status and Lambda error type.
type ErrorCode struct {
	Code string `json:"code"`
	// Status is the HTTP status of an answer with this code.
	Status int `json:"status"`
	// LambdaErrorType is the errorType of a direct invocation's failure,
	// e.g. Stampede.InvalidArgument.
	LambdaErrorType string `json:"lambda_error_type"`
}

// ErrorCodes lists every error code the service answers with.
func ErrorCodes() []ErrorCode {
	codes := []struct {
		code   string
		status int
	}{
		{CodeInvalidArgument, http.StatusBadRequest},
		{CodeNotFound, http.StatusNotFound},
		{CodeAlreadyExists, http.StatusConflict},
		{CodeFailedPrecondition, http.StatusPreconditionFailed},
		{CodePayloadTooLarge, http.StatusRequestEntityTooLarge},
		{CodeThrottled, http.StatusTooManyRequests},
		{CodeUnavailable, http.StatusServiceUnavailable},
		{CodeInternal, http.StatusInternalServerError},
	}
	out := make([]ErrorCode, len(codes))
	for i, c := range codes {
		out[i] = ErrorCode{Code: c.code, Status: c.status, LambdaErrorType: LambdaErrorType(c.code)}
	}
	return out
}

// LambdaErrorType returns the Lambda errorType of a code: invalid_argument
// becomes Stampede.InvalidArgument.
func LambdaErrorType(code string) string {
	var b strings.Builder
	b.WriteString(LambdaErrorTypePrefix)
	for _, word := range strings.Split(code, "_") {
		if word != "" {
			b.WriteString(strings.ToUpper(word[:1]) + word[1:])
		}
	}
	return b.String()
}
