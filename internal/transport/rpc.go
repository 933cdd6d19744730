package transport

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/stampede-cache/stampede/internal/manager"
)

// An RPCService is a protocol served beside the HTTP API under a path
// prefix of its own: Flyte's cache service (internal/flyte). The local
// server and a function built by NewRPCFunction hand it the requests under
// its prefix, each through serve like any other request: the same budget,
// panic recovery, log line and metrics, under the operation of its
// procedure. It is an interface so that the five functions of the HTTP API
// do not link the service's protobuf and Connect code.
type RPCService interface {
	// Prefix is the path prefix of the service's procedures,
	// "/package.Service/".
	Prefix() string
	// Op returns the operation a procedure path runs; false for a path
	// that names no procedure.
	Op(path string) (Op, bool)
	// Serve answers r, whose context carries the request's budget, and
	// gives its account of the call.
	Serve(w http.ResponseWriter, r *http.Request) RPCCall
	// WriteError answers r with err in the service's own protocol, for a
	// request refused before Serve saw it.
	WriteError(w http.ResponseWriter, r *http.Request, err error)
}

// RPCCall is a service's account of one call, for the request's log line
// and metrics.
type RPCCall struct {
	// Served is false when the service's protocol layer answered by itself
	// (an unknown procedure, a request it could not decode).
	Served bool
	// ID and OwnerID name the key and owner, once known.
	ID      *manager.ID
	OwnerID string
	// Outcome names what happened (hit, miss, created, acquired, ...).
	Outcome string
	// Err is the failure, with its cause (for the log only); Warning a
	// failure after the call succeeded.
	Err, Warning error
}

// rpcPath returns the procedure path of an API Gateway request for the
// handler's RPC service: the matched route's template, or the path when a
// $default or {proxy+} route matched.
func (h *Handler) rpcPath(template, path string) (string, bool) {
	if h.rpc == nil {
		return "", false
	}
	for _, p := range []string{template, path} {
		if strings.HasPrefix(p, h.rpc.Prefix()) {
			return p, true
		}
	}
	return "", false
}

// serveRPCHTTP serves r when it is a call of the RPC service (the local
// server) and reports whether it was.
func (h *Handler) serveRPCHTTP(w http.ResponseWriter, r *http.Request) bool {
	if _, ok := h.rpcPath("", r.URL.Path); !ok {
		return false
	}
	h.serveRPC(w, r, newRequestID())
	return true
}

// serveRPC serves one call of the RPC service through serve.
func (h *Handler) serveRPC(w http.ResponseWriter, r *http.Request, requestID string) {
	op, _ := h.rpc.Op(r.URL.Path)
	w.Header().Set(RequestIDHeader, requestID)
	rec := &statusRecorder{ResponseWriter: w}
	answered := false
	res := h.serve(r.Context(), h.opOr(op), requestID, func(ctx context.Context) result {
		call := h.rpc.Serve(rec, r.WithContext(ctx))
		answered = true
		return rpcResult(call, rec.status)
	})
	if !answered && rec.status == 0 {
		// serve refused the call (a procedure routed to the wrong
		// function) or the service panicked before writing anything.
		h.rpc.WriteError(w, r, res.err)
	}
}

// rpcResult is the log line's view of a call.
func rpcResult(call RPCCall, status int) result {
	if !call.Served {
		code := manager.CodeInvalidArgument
		switch status {
		case http.StatusNotFound:
			code = manager.CodeNotFound
		case http.StatusTooManyRequests:
			code = manager.CodePayloadTooLarge
		}
		return failure(manager.Errorf(code, "body: not a valid call of the service (HTTP %d)", max(status, http.StatusOK)))
	}
	r := result{status: http.StatusOK, outcome: call.Outcome, err: call.Err, warning: call.Warning}
	if call.ID != nil {
		r = r.about(*call.ID, call.OwnerID)
	}
	return r
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusRecorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Flush sends buffered data (gRPC flushes its headers and trailers).
func (w *statusRecorder) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// rpcRequest builds the HTTP request an API Gateway event carries for
// the RPC service. Response compression is not offered: API Gateway
// would have to pass a compressed JSON answer as binary.
func rpcRequest(ctx context.Context, method, path string, header http.Header, body string, isBase64 bool) (*http.Request, error) {
	data := []byte(body)
	if isBase64 {
		var err error
		if data, err = base64.StdEncoding.DecodeString(body); err != nil {
			return nil, manager.Errorf(manager.CodeInvalidArgument, "body: invalid base64")
		}
	}
	r, err := http.NewRequestWithContext(ctx, method, path, bytes.NewReader(data))
	if err != nil {
		return nil, manager.Errorf(manager.CodeInvalidArgument, "path: %s is not a valid path", path)
	}
	r.Header = header
	for _, h := range []string{"Accept-Encoding", "Connect-Accept-Encoding", "Grpc-Accept-Encoding"} {
		r.Header.Del(h)
	}
	r.Host = header.Get("Host")
	return r, nil
}

// bufferedResponse collects a handler's answer for an API Gateway event.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newBufferedResponse() *bufferedResponse {
	return &bufferedResponse{header: http.Header{}}
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	return b.body.Write(p)
}

// statusCode is the answer's status: 200 when the handler wrote no header
// and no body (an empty message, or gRPC-Web's trailers-only error).
func (b *bufferedResponse) statusCode() int {
	if b.status == 0 {
		return http.StatusOK
	}
	return b.status
}

// Flush does nothing: API Gateway gets the whole answer at once.
func (b *bufferedResponse) Flush() {}

// eventBody returns the body for an API Gateway response: JSON as text,
// anything else (binary protobuf, gRPC-Web frames) base64-encoded.
func (b *bufferedResponse) eventBody() (string, bool) {
	ct := b.header.Get("Content-Type")
	if strings.HasPrefix(ct, "application/json") && b.header.Get("Content-Encoding") == "" {
		return b.body.String(), false
	}
	return base64.StdEncoding.EncodeToString(b.body.Bytes()), true
}

// serveRPCEvent runs one API Gateway event for the RPC service.
func (h *Handler) serveRPCEvent(ctx context.Context, method, path string, header http.Header, body string, isBase64 bool, requestID string) *bufferedResponse {
	resp := newBufferedResponse()
	r, err := rpcRequest(ctx, method, path, header, body, isBase64)
	if err != nil {
		op, _ := h.rpc.Op(path)
		res := h.serve(ctx, h.opOr(op), requestID, func(context.Context) result { return failure(err) })
		resp.header.Set(RequestIDHeader, requestID)
		// The request could not be rebuilt: answer in the service's protocol.
		errorRequest, _ := http.NewRequestWithContext(ctx, method, "/", nil)
		errorRequest.Header = header
		h.rpc.WriteError(resp, errorRequest, res.err)
		return resp
	}
	h.serveRPC(resp, r, requestID)
	return resp
}

// rpcHTTPAPI answers an HTTP API (payload 2.0) event for the RPC service.
func (h *Handler) rpcHTTPAPI(ctx context.Context, ev events.APIGatewayV2HTTPRequest, path string) events.APIGatewayV2HTTPResponse {
	header := make(http.Header, len(ev.Headers))
	for k, v := range ev.Headers {
		header.Set(k, v)
	}
	resp := h.serveRPCEvent(ctx, ev.RequestContext.HTTP.Method, path, header, ev.Body, ev.IsBase64Encoded, ev.RequestContext.RequestID)
	body, isBase64 := resp.eventBody()
	headers := make(map[string]string, len(resp.header))
	for k, vs := range resp.header {
		headers[k] = strings.Join(vs, ",")
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: resp.statusCode(), Headers: headers, Body: body, IsBase64Encoded: isBase64}
}

// rpcV1 answers a payload 1.0 (REST API) event for the RPC service.
func (h *Handler) rpcV1(ctx context.Context, ev events.APIGatewayProxyRequest, path string) events.APIGatewayProxyResponse {
	header := make(http.Header, len(ev.Headers))
	for k, v := range ev.Headers {
		header.Set(k, v)
	}
	for k, vs := range ev.MultiValueHeaders {
		header[http.CanonicalHeaderKey(k)] = vs
	}
	resp := h.serveRPCEvent(ctx, ev.HTTPMethod, path, header, ev.Body, ev.IsBase64Encoded, ev.RequestContext.RequestID)
	body, isBase64 := resp.eventBody()
	return events.APIGatewayProxyResponse{StatusCode: resp.statusCode(), MultiValueHeaders: resp.header, Body: body, IsBase64Encoded: isBase64}
}
