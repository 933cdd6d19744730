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
	// Metrics adds CloudWatch Embedded Metric Format fields to each log
	// line (the Lambda functions turn it on).
	Metrics bool
	// RPC, when set, is served beside the HTTP API under its own path
	// prefix (Flyte's cache service: flyte.Mount).
	RPC RPCService
}

// Handler serves Stampede's operations.
type Handler struct {
	mgr     *manager.Manager
	log     *slog.Logger
	budget  time.Duration
	metrics bool
	// only, when set, is the one operation this handler serves (a Lambda
	// function); the local server serves them all.
	only Op
	// rpc serves the calls under its prefix (rpc.go); rpcOnly refuses the
	// HTTP API's routes (the function of the RPC service).
	rpc     RPCService
	rpcOnly bool
	// sharedWaits: this handler serves many requests at once in one
	// process, whose waiters of a key share their reads (WaitsHeader).
	sharedWaits bool
}

func newHandler(mgr *manager.Manager, opts Options) *Handler {
	h := &Handler{mgr: mgr, log: opts.Log, budget: opts.Budget, metrics: opts.Metrics, rpc: opts.RPC}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.budget <= 0 {
		h.budget = DefaultBudget
	}
	return h
}

// NewFunction returns the handler of the Lambda function for op over the
// HTTP API and direct invocations. opts.RPC is ignored: the RPC service has
// a function of its own (NewRPCFunction).
func NewFunction(mgr *manager.Manager, op Op, opts Options) *Handler {
	opts.RPC = nil
	h := newHandler(mgr, opts)
	h.only = op
	return h
}

// NewRPCFunction returns the handler of the Lambda function serving svc,
// every operation of it, and nothing else.
func NewRPCFunction(svc RPCService, opts Options) *Handler {
	opts.RPC = svc
	h := newHandler(nil, opts)
	h.rpcOnly = true
	return h
}

// NewRouter returns a handler serving every operation, for the local
// server, and opts.RPC beside them.
func NewRouter(mgr *manager.Manager, opts Options) *Handler {
	h := newHandler(mgr, opts)
	h.sharedWaits = true
	return h
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

// RequestIDHeader carries the request id on every response; the request's
// log line carries the same id.
const RequestIDHeader = "Stampede-Request-Id"

// serve runs one operation within the request's budget, with panic
// recovery and the request log line.
func (h *Handler) serve(ctx context.Context, op Op, requestID string, run func(context.Context) result) (res result) {
	return h.serveWithin(ctx, op, requestID, 0, run)
}

// serveWithin is serve with extra time on top of the budget: a get that
// waits for its entry (wait_ms) gets its wait.
func (h *Handler) serveWithin(ctx context.Context, op Op, requestID string, extra time.Duration, run func(context.Context) result) (res result) {
	start := time.Now()
	ctx, cancel := h.withBudget(ctx, start, extra)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			res = failure(fmt.Errorf("panic: %v\n%s", p, debug.Stack()))
		}
		res.requestID = requestID
		h.logRequest(ctx, op, res, time.Since(start))
	}()
	if h.only != "" && op != h.only && !(h.only == OpGet && op == OpInspect) {
		// A route wired to the wrong function: a deployment error.
		return failure(manager.Errorf(manager.CodeNotFound, "path: this function serves %s, not %s", h.only, op))
	}
	return run(ctx)
}

// answerMargin is kept back from a Lambda invocation's deadline to answer
// (and log) after the last DynamoDB or S3 call gave up.
func answerMargin(remaining time.Duration) time.Duration {
	return min(time.Second, max(100*time.Millisecond, remaining/10))
}

// withBudget bounds ctx by the handler's budget and, when ctx already has a
// deadline (a Lambda invocation), by that deadline less answerMargin.
func (h *Handler) withBudget(ctx context.Context, start time.Time, extra time.Duration) (context.Context, context.CancelFunc) {
	end := start.Add(h.budget + extra)
	if d, ok := ctx.Deadline(); ok {
		if lambdaEnd := d.Add(-answerMargin(d.Sub(start))); lambdaEnd.Before(end) {
			end = lambdaEnd
		}
	}
	return context.WithDeadline(ctx, end)
}

// statusOf returns the HTTP status of a result.
func statusOf(r result) int {
	if r.err != nil {
		return httpStatus(manager.ErrorCode(r.err))
	}
	return r.status
}

// outcomeOf names what happened for logs and metrics.
func outcomeOf(r result, status int) string {
	if r.err == nil || r.outcome != "" {
		return r.outcome
	}
	switch manager.ErrorCode(r.err) {
	case manager.CodeThrottled:
		return "throttled"
	case manager.CodeUnavailable:
		return "unavailable"
	}
	if status >= 500 {
		return "error"
	}
	return "invalid"
}

func (h *Handler) logRequest(ctx context.Context, op Op, r result, elapsed time.Duration) {
	status := statusOf(r)
	outcome := outcomeOf(r, status)
	level := slog.LevelInfo
	attrs := make([]slog.Attr, 0, 16)
	attrs = append(attrs,
		slog.String("op", string(op)),
		slog.String("request_id", r.requestID),
	)
	if r.id != nil {
		// Names were validated or are about to be refused: cap what a
		// caller can write into the log.
		if r.id.Org != "" {
			attrs = append(attrs, slog.String("org", truncate(r.id.Org, 64)))
		}
		attrs = append(attrs, slog.String("project", truncate(r.id.Project, 64)), slog.String("domain", truncate(r.id.Domain, 64)),
			slog.String("key", truncate(r.id.Key, 256)))
	}
	if r.owner != "" {
		attrs = append(attrs, slog.String("owner_id", truncate(r.owner, 256)))
	}
	attrs = append(attrs,
		slog.Int("status", status),
		slog.String("outcome", outcome),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
	)
	if r.warning != nil {
		level = slog.LevelWarn
		attrs = append(attrs, slog.String("warning", r.warning.Error()))
	}
	if r.err != nil {
		attrs = append(attrs, slog.String("code", manager.ErrorCode(r.err)))
		if status >= 500 {
			level = slog.LevelWarn
			if status == http.StatusInternalServerError {
				level = slog.LevelError
			}
			// The full cause goes to the log, never to the client.
			attrs = append(attrs, slog.String("error", r.err.Error()))
		}
	}
	if h.metrics {
		attrs = append(attrs, metricAttrs(op, outcome, status, elapsed)...)
	}
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
