package transport

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/stampede-cache/stampede/internal/manager"
)

// HandleHTTPAPI serves an API Gateway HTTP API (payload format 2.0) event.
func (h *Handler) HandleHTTPAPI(ctx context.Context, ev events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	method := ev.RequestContext.HTTP.Method
	template := ""
	if m, t, ok := strings.Cut(ev.RouteKey, " "); ok {
		method, template = m, t
	}
	if path, ok := h.rpcPath(template, ev.RawPath); ok {
		return h.rpcHTTPAPI(ctx, ev, path)
	}
	query, qerr := url.ParseQuery(ev.RawQueryString)
	header := make(http.Header, len(ev.Headers))
	for k, v := range ev.Headers {
		header.Set(k, v)
	}
	r := h.route(ctx, routeInput{
		header:    header,
		method:    method,
		template:  template,
		params:    ev.PathParameters,
		requestID: ev.RequestContext.RequestID,
		// HTTP APIs hand over the path and its parameters decoded.
		path:    ev.RawPath,
		escaped: false,
		query:   query,
		qerr:    qerr,
		body:    ev.Body,
		base64:  ev.IsBase64Encoded,
	})
	status, body := responseBody(r)
	headers := responseHeaders(r)
	if h.sharedWaits {
		headers[WaitsHeader] = WaitsShared
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: headers, Body: string(body)}
}

// WaitsHeader tells a client how the host serves a get that waits
// (wait_ms): WaitsShared from a process that serves many requests at once
// and shares one read per tick among all the waiters of a key (the local
// server), so that waiting there costs no more than one poller. A Lambda
// function serves one request per execution environment and does not send
// it: there each waiting request holds an environment and reads on its
// own, and clients poll instead.
const (
	WaitsHeader = "Stampede-Waits"
	WaitsShared = "shared"
)

// HandleREST serves an API Gateway REST API (payload format 1.0) proxy event.
func (h *Handler) HandleREST(ctx context.Context, ev events.APIGatewayProxyRequest) events.APIGatewayProxyResponse {
	return h.handleV1(ctx, ev, true)
}

// handleV1 serves a payload format 1.0 event. REST APIs keep the path's
// percent-encoding (escaped); HTTP APIs sending format 1.0 decode it.
func (h *Handler) handleV1(ctx context.Context, ev events.APIGatewayProxyRequest, escaped bool) events.APIGatewayProxyResponse {
	if path, ok := h.rpcPath(ev.Resource, ev.Path); ok {
		return h.rpcV1(ctx, ev, path)
	}
	query := url.Values(ev.MultiValueQueryStringParameters)
	if query == nil {
		query = url.Values{}
		for k, v := range ev.QueryStringParameters {
			query.Set(k, v)
		}
	}

	header := make(http.Header, len(ev.Headers))
	for k, v := range ev.Headers {
		header.Set(k, v)
	}
	for k, vs := range ev.MultiValueHeaders {
		header[http.CanonicalHeaderKey(k)] = vs
	}
	r := h.route(ctx, routeInput{
		header:    header,
		requestID: ev.RequestContext.RequestID,
		method:    ev.HTTPMethod,
		template:  ev.Resource,
		params:    ev.PathParameters,
		path:      ev.Path,
		escaped:   escaped,
		query:     query,
		body:      ev.Body,
		base64:    ev.IsBase64Encoded,
	})
	status, body := responseBody(r)
	return events.APIGatewayProxyResponse{StatusCode: status, Headers: responseHeaders(r), Body: string(body)}
}

// retryAfterSeconds is the Retry-After of a throttled or unavailable
// answer: long enough for a throttle or a blip to pass, short enough for a
// waiting worker.
const retryAfterSeconds = "1"

// responseHeaders are Content-Type, the request id, Retry-After on 429 and
// 503, plus the operation's own headers.
func responseHeaders(r result) map[string]string {
	h := map[string]string{"Content-Type": "application/json"}
	if r.requestID != "" {
		h[RequestIDHeader] = r.requestID
	}
	if r.err == nil {
		for k, v := range r.header {
			h[k] = v
		}
	}
	if s := statusOf(r); s == http.StatusTooManyRequests || s == http.StatusServiceUnavailable {
		h["Retry-After"] = retryAfterSeconds
	}
	return h
}

func (h *Handler) invokeHTTPAPI(ctx context.Context, payload json.RawMessage) any {
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(payload, &ev); err != nil {
		return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusBadRequest, Headers: responseHeaders(result{}),
			Body: errorBody(manager.Errorf(manager.CodeInvalidArgument, "body: malformed API Gateway event"))}
	}
	return h.HandleHTTPAPI(ctx, ev)
}

func (h *Handler) invokeV1(ctx context.Context, payload json.RawMessage, escaped bool) any {
	var ev events.APIGatewayProxyRequest
	if err := json.Unmarshal(payload, &ev); err != nil {
		return events.APIGatewayProxyResponse{StatusCode: http.StatusBadRequest, Headers: responseHeaders(result{}),
			Body: errorBody(manager.Errorf(manager.CodeInvalidArgument, "body: malformed API Gateway event"))}
	}
	return h.handleV1(ctx, ev, escaped)
}

// errorBody is the JSON body of an error response.
func errorBody(err error) string {
	_, body := responseBody(failure(err))
	return string(body)
}

// routeInput is an API Gateway request, either payload version.
type routeInput struct {
	requestID string
	header    http.Header
	method    string
	template  string
	params    map[string]string
	path      string
	escaped   bool
	query     url.Values
	qerr      error
	body      string
	base64    bool
}

// route finds the operation and its target, then runs it.
func (h *Handler) route(ctx context.Context, in routeInput) result {
	if h.rpcOnly {
		return h.serve(ctx, h.opOr(""), in.requestID, func(context.Context) result {
			return failure(manager.Errorf(manager.CodeNotFound, "path: this function serves %s only; see docs/api.md", strings.Trim(h.rpc.Prefix(), "/")))
		})
	}
	op, id, err := resolve(in)
	if err != nil {
		// Log under the function's own operation when the route is unknown.
		return h.serve(ctx, h.opOr(op), in.requestID, func(context.Context) result { return failure(err) })
	}
	var extra time.Duration
	if op == OpGet {
		extra = waitOf(in.query.Get("wait_ms"))
	}
	return h.serveWithin(ctx, op, in.requestID, extra, func(ctx context.Context) result {
		if in.qerr != nil {
			return failure(manager.Errorf(manager.CodeInvalidArgument, "query: malformed query string"))
		}
		body := []byte(in.body)
		if in.base64 {
			var derr error
			if body, derr = base64.StdEncoding.DecodeString(in.body); derr != nil {
				return failure(manager.Errorf(manager.CodeInvalidArgument, "body: invalid base64"))
			}
		}
		if len(body) > MaxBodyBytes {
			return failure(manager.Errorf(manager.CodePayloadTooLarge, "body: larger than %d bytes", MaxBodyBytes))
		}
		return h.httpCall(ctx, op, id, in.query, in.header, body)
	})
}

func (h *Handler) opOr(op Op) Op {
	if op != "" {
		return op
	}
	if h.only != "" {
		return h.only
	}
	return "unknown"
}

// resolve maps a request to its operation and ID, from the route template
// and path parameters when API Gateway matched a contract route, or from
// the path when it did not (a $default or {proxy+} route).
func resolve(in routeInput) (Op, manager.ID, error) {
	route, matched := routeFor(in.method, in.template)
	id := manager.ID{Project: in.params["project"], Domain: in.params["domain"], Key: in.params["key"]}
	if !matched || id.Project == "" {
		template, pathID, err := parsePath(in.path)
		if err != nil {
			return "", manager.ID{}, err
		}
		if route, matched = routeFor(in.method, template); !matched {
			return "", manager.ID{}, manager.Errorf(manager.CodeNotFound, "path: %s is not an operation on %s", in.method, template)
		}
		id = pathID
	}
	if in.escaped {
		var err error
		if id, err = unescapeID(id); err != nil {
			return route.Op, manager.ID{}, err
		}
	}
	return route.Op, id, nil
}
