package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/stampede-cache/stampede/client"
)

// classify turns the error of a call to the service at endpoint into a
// *cliError: its exit code and a one-line message that names the endpoint
// whenever the service's answer (or its absence) is the problem.
func classify(err error, endpoint string) *cliError {
	var apiErr *client.APIError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &apiErr):
		return classifyAPI(apiErr, endpoint)
	case isTransportError(err):
		return &cliError{code: exitUnavailable, msg: fmt.Sprintf("cannot reach %s: %s", endpoint, transportReason(err)), err: err}
	}
	return &cliError{code: exitFailure, msg: oneLine(strings.TrimPrefix(err.Error(), "stampede: ")), err: err}
}

// classifyAPI classifies an answer: from Stampede (it carries an error
// code), or from something else at the endpoint.
func classifyAPI(e *client.APIError, endpoint string) *cliError {
	desc := describeAPIError(e)
	switch {
	case e.Status == 0:
		// Refused by the client before sending: a bad argument.
		return &cliError{code: exitUsage, msg: desc, usage: true, err: e}
	case e.Status/100 == 3:
		return &cliError{code: exitWrongEndpoint, msg: fmt.Sprintf("%s answered %s: not a Stampede API; check --endpoint", endpoint, desc), err: e}
	case e.Status == http.StatusNotFound && (e.Code != client.CodeNotFound || errorField(e) == "path"):
		return &cliError{code: exitWrongEndpoint, msg: fmt.Sprintf("%s has no such route (%s): not a Stampede API, or a wrong base path or stage; check --endpoint", endpoint, desc), err: e}
	case e.Code == client.CodeNotFound:
		return &cliError{code: exitMiss, msg: desc, err: e}
	case e.Code == client.CodeUnavailable || e.Code == client.CodeThrottled:
		return &cliError{code: exitUnavailable, msg: fmt.Sprintf("%s from %s", desc, endpoint), err: e}
	case e.Code == "" && (e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden):
		return &cliError{code: exitFailure, msg: fmt.Sprintf("%s from %s (not signed, no permission, or no such route; see --sigv4 and --endpoint)", desc, endpoint), err: e}
	case e.Code == "" || e.Code == client.CodeInternal:
		return &cliError{code: exitFailure, msg: fmt.Sprintf("%s from %s", desc, endpoint), err: e}
	}
	return &cliError{code: exitFailure, msg: desc, err: e}
}

// errorField is the field an error message names first: the service's
// messages start with it ("key: no cached entry", "path: no such route").
func errorField(e *client.APIError) string {
	field, _, ok := strings.Cut(e.Message, ": ")
	if !ok || strings.ContainsAny(field, " \t") {
		return ""
	}
	return field
}

// describeAPIError renders an answer on one line, with the entry or the
// reservation that made a conditional request fail.
func describeAPIError(e *client.APIError) string {
	s := e.Code
	switch {
	case s == "":
		s = fmt.Sprintf("HTTP %d", e.Status)
	case e.Status != 0:
		s += fmt.Sprintf(" (HTTP %d)", e.Status)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if x := e.Existing; x != nil {
		s += fmt.Sprintf(" (existing entry: version %d, %s, last updated %s)", x.Version, x.OutputURI, formatTime(x.LastUpdatedAt))
	}
	if h := e.Holder; h != nil {
		s += fmt.Sprintf(" (held by %s, fence %d, until %s)", h.OwnerID, h.Fence, formatTime(h.ExpiresAt))
	}
	return oneLine(s)
}

// isTransportError reports whether err is a failure to exchange a request
// and its answer: connection refused or reset, DNS, timeouts, a cut body.
func isTransportError(err error) bool {
	var urlErr *url.Error
	var netErr net.Error
	return errors.As(err, &urlErr) || errors.As(err, &netErr) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// transportReason says briefly why an exchange failed.
func transportReason(err error) string {
	var opErr *net.OpError
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.As(err, &dnsErr):
		return oneLine(dnsErr.Error())
	case errors.As(err, &opErr):
		return oneLine(opErr.Err.Error())
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "no answer in time"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "the connection was closed before the answer"
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		return oneLine(urlErr.Err.Error())
	}
	return oneLine(err.Error())
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// formatTime renders an instant as the service does.
func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }
