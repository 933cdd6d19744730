package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/stampede-cache/stampede/client"
)

func TestClassify(t *testing.T) {
	const ep = "http://127.0.0.1:8080"
	dial := &url.Error{Op: "Get", URL: ep, Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}}
	for _, tc := range []struct {
		name string
		err  error
		code int
		msg  string // a part of the message
	}{
		{"miss", &client.APIError{Status: 404, Code: client.CodeNotFound, Message: "key: no cached entry"}, exitMiss, "key: no cached entry"},
		{"no such route", &client.APIError{Status: 404, Code: client.CodeNotFound, Message: "path: no such route; see docs/api.md"}, exitWrongEndpoint, ep + " has no such route"},
		{"API Gateway's 404", &client.APIError{Status: 404, Message: "Not Found"}, exitWrongEndpoint, "check --endpoint"},
		{"redirect", &client.APIError{Status: 301, Message: "redirected to https://x"}, exitWrongEndpoint, "not a Stampede API"},
		{"unavailable", &client.APIError{Status: 503, Code: client.CodeUnavailable, Message: "dynamodb: no answer"}, exitUnavailable, "from " + ep},
		{"throttled", &client.APIError{Status: 429, Code: client.CodeThrottled, Message: "slow down"}, exitUnavailable, "throttled (HTTP 429)"},
		{"a gateway's 502", &client.APIError{Status: 502, Code: client.CodeUnavailable, Message: "Bad Gateway"}, exitUnavailable, ep},
		{"internal", &client.APIError{Status: 500, Code: client.CodeInternal, Message: "internal error"}, exitFailure, "from " + ep},
		{"forbidden", &client.APIError{Status: 403, Message: "Missing Authentication Token"}, exitFailure, "see --sigv4 and --endpoint"},
		{"conflict", &client.APIError{Status: 409, Code: client.CodeAlreadyExists, Message: "key: an entry exists",
			Existing: &client.Entry{Version: 7, OutputURI: "s3://stampede-outputs/a"}}, exitFailure, "existing entry: version 7, s3://stampede-outputs/a"},
		{"refused before sending", &client.APIError{Code: client.CodeInvalidArgument, Message: "owner_id: required"}, exitUsage, "owner_id: required"},
		{"connection refused", fmt.Errorf("stampede: %w", dial), exitUnavailable, "cannot reach " + ep + ": connect: connection refused"},
		{"no answer in time", fmt.Errorf("stampede: %w", &url.Error{Op: "Get", URL: ep, Err: context.DeadlineExceeded}), exitUnavailable, "no answer in time"},
		{"cut answer", fmt.Errorf("read the response: %w", io.ErrUnexpectedEOF), exitUnavailable, "closed before the answer"},
		{"anything else", errors.New("stampede: decode the response: bad"), exitFailure, "decode the response: bad"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ce := classify(tc.err, ep)
			if ce.code != tc.code || !strings.Contains(ce.msg, tc.msg) || strings.Contains(ce.msg, "\n") {
				t.Fatalf("classify: code %d %q, want %d and %q", ce.code, ce.msg, tc.code, tc.msg)
			}
		})
	}
}
