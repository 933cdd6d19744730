package dynamostore

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/stampede-cache/stampede/internal/manager"
)

// classify turns an SDK error (after the SDK's own retries) into an
// application error where the caller can act on it, keeping the cause for
// the log. Anything unrecognised stays a plain error: "internal" to clients.
func classify(op string, err error) error {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch {
		case isThrottle(err):
			return &manager.Error{Code: manager.CodeThrottled, Message: "the table is throttling requests; retry with backoff", Err: err}
		case apiErr.ErrorCode() == "ValidationException":
			if strings.Contains(apiErr.ErrorMessage(), "size has exceeded") {
				return &manager.Error{Code: manager.CodePayloadTooLarge, Message: "body: the entry exceeds DynamoDB's 400 KB item size limit", Err: err}
			}
		}
	}
	if Unreachable(err) {
		return unavailable(err)
	}
	return &opError{op: op, err: err}
}

// isThrottle reports whether DynamoDB refused the request for its rate:
// nothing happened.
func isThrottle(err error) bool {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode() {
	case "ProvisionedThroughputExceededException", "RequestLimitExceeded", "ThrottlingException":
		return true
	}
	return false
}

// isNotSent reports whether the request never reached the service (the
// connection could not be made): nothing happened.
func isNotSent(err error) bool {
	var opErr *net.OpError
	return errors.As(err, &opErr) && opErr.Op == "dial"
}

// Unreachable reports whether err means the service could not be reached
// or did not answer in time: a 5xx, the retry budget spent, a failed or
// reset connection, a missing response, the request's deadline passed or
// its caller gone. The request may or may not have taken effect.
func Unreachable(err error) bool {
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) && respErr.HTTPStatusCode() >= http.StatusInternalServerError {
		return true
	}
	var quota ratelimit.QuotaExceededError
	var netErr net.Error
	var maxAttempts *retry.MaxAttemptsError
	return errors.As(err, &quota) || errors.As(err, &netErr) || errors.As(err, &maxAttempts) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}

func unavailable(err error) error {
	return &manager.Error{Code: manager.CodeUnavailable, Message: "the table is unavailable; retry with backoff", Err: err}
}

// opError names the DynamoDB operation that failed, for the log.
type opError struct {
	op  string
	err error
}

func (e *opError) Error() string { return "dynamodb " + e.op + ": " + e.err.Error() }
func (e *opError) Unwrap() error { return e.err }

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
