// Package transport is the one way into Stampede: it decodes API Gateway
// HTTP API (payload 2.0) and REST API (payload 1.0) events and direct Lambda
// invocations (Step Functions), validates their shape, calls the manager and
// maps results and errors to responses. The Lambda functions and the local
// server run this same code.
package transport

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/stampede-cache/stampede/internal/manager"
)

// DefaultBudget bounds a request when Options.Budget is zero.
const DefaultBudget = 5 * time.Second

// Options configure a Handler.
type Options struct {
	// Log receives one line per request; nil discards them.
	Log *slog.Logger
	// Budget bounds each request, every DynamoDB and S3 call included; zero
	// means DefaultBudget. In Lambda the invocation's own deadline, less a
	// margin for answering, bounds it further.
	Budget time.Duration
}

// Handler serves Stampede's operations.
type Handler struct {
	mgr    *manager.Manager
	log    *slog.Logger
	budget time.Duration
	// only, when set, is the one operation this handler serves (a Lambda
	// function); the local server serves them all.
	only Op
}

func newHandler(mgr *manager.Manager, opts Options) *Handler {
	h := &Handler{mgr: mgr, log: opts.Log, budget: opts.Budget}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.budget <= 0 {
		h.budget = DefaultBudget
	}
	return h
}

// NewFunction returns the handler of the Lambda function for op.
func NewFunction(mgr *manager.Manager, op Op, opts Options) *Handler {
	h := newHandler(mgr, opts)
	h.only = op
	return h
}

// NewRouter returns a handler serving every operation, for the local server.
func NewRouter(mgr *manager.Manager, opts Options) *Handler {
	return newHandler(mgr, opts)
}

// eventProbe holds the fields that tell event shapes apart.
type eventProbe struct {
	Version    string `json:"version"`
	RouteKey   string `json:"routeKey"`
	RawPath    string `json:"rawPath"`
	HTTPMethod string `json:"httpMethod"`
	Resource   string `json:"resource"`
}

// Invoke is the Lambda entry point: lambda.Start(h.Invoke). It accepts an
// HTTP API event, a REST API event or a direct invocation payload.
func (h *Handler) Invoke(ctx context.Context, payload json.RawMessage) (any, error) {
	var probe eventProbe
	// A payload that is not even an object is a direct invocation gone wrong;
	// the direct decoder reports it.
	_ = json.Unmarshal(payload, &probe)
	switch {
	case probe.Version == "2.0" && probe.RouteKey != "":
		return h.invokeHTTPAPI(ctx, payload), nil
	case probe.HTTPMethod != "" && probe.Resource != "":
		// REST APIs send no version; HTTP APIs' format 1.0 says "1.0".
		return h.invokeV1(ctx, payload, probe.Version != "1.0"), nil
	default:
		return h.Direct(ctx, payload)
	}
}

// serve runs one operation with panic recovery and the request log line.
func (h *Handler) serve(ctx context.Context, op Op, run func() result) (res result) {
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			res = failure(fmt.Errorf("panic: %v\n%s", p, debug.Stack()))
		}
		h.logRequest(ctx, op, res, time.Since(start))
	}()
	if h.only != "" && op != h.only {
		// A route wired to the wrong function: a deployment error.
		return failure(manager.Errorf(manager.CodeNotFound, "path: this function serves %s, not %s", h.only, op))
	}
	return run()
}

// statusOf returns the HTTP status of a result.
func statusOf(r result) int {
	if r.err != nil {
		return httpStatus(manager.ErrorCode(r.err))
	}
	return r.status
}

func (h *Handler) logRequest(ctx context.Context, op Op, r result, elapsed time.Duration) {
	status := statusOf(r)
	outcome := r.outcome
	level := slog.LevelInfo
	attrs := []slog.Attr{
		slog.String("op", string(op)),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
	}
	if r.warning != nil {
		level = slog.LevelWarn
		attrs = append(attrs, slog.String("warning", r.warning.Error()))
	}
	if r.err != nil {
		attrs = append(attrs, slog.String("code", manager.ErrorCode(r.err)))
		if status >= 500 {
			level = slog.LevelError
			// The full cause goes to the log, never to the client.
			attrs = append(attrs, slog.String("error", r.err.Error()))
		}
		if outcome == "" {
			outcome = "error"
			if status < 500 {
				outcome = "invalid"
			}
		}
	}
	attrs = append(attrs, slog.String("outcome", outcome))
	h.log.LogAttrs(ctx, level, "request", attrs...)
}

// httpStatus maps application error codes to HTTP statuses, in one place.
func httpStatus(code string) int {
	switch code {
	case manager.CodeInvalidArgument:
		return http.StatusBadRequest
	case manager.CodeNotFound:
		return http.StatusNotFound
	case manager.CodeAlreadyExists:
		return http.StatusConflict
	case manager.CodeFailedPrecondition:
		return http.StatusPreconditionFailed
	case manager.CodePayloadTooLarge:
		return http.StatusRequestEntityTooLarge
	case manager.CodeThrottled:
		return http.StatusTooManyRequests
	case manager.CodeUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// responseBody returns the JSON body and status of an HTTP response.
func responseBody(r result) (int, []byte) {
	status, body := r.status, r.body
	if r.noBody && r.err == nil {
		return status, nil
	}
	if r.err != nil {
		status, body = statusOf(r), toErrorJSON(r.err)
	}
	data, err := json.Marshal(body)
	if err != nil {
		// Every body is a plain struct of strings and numbers.
		return http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	return status, data
}
