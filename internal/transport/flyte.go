package transport

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"strings"

	"connectrpc.com/connect"
	"github.com/aws/aws-lambda-go/events"

	"github.com/stampede-cache/stampede/internal/flyte"
	"github.com/stampede-cache/stampede/internal/manager"
)

// Flyte's cache service, flyteidl2.cacheservice.v2.CacheService, is served
// beside the HTTP API: in the local server over Connect, gRPC and
// gRPC-Web (HTTP/1.1 and h2c), and in the Lambda functions over Connect
// unary and gRPC-Web through API Gateway events. Every call runs through
// serve like any other request: the same budget, panic recovery, log line
// and metrics, under the operation of its method.

// FlyteRoutes lists the routes of Flyte's cache service and the operation
// (the Lambda function) of each; the stack declares the same.
func FlyteRoutes() []Route {
	return []Route{
		{http.MethodPost, flyte.GetProcedure, OpGet},
		{http.MethodPost, flyte.PutProcedure, OpPut},
		{http.MethodPost, flyte.DeleteProcedure, OpDelete},
		{http.MethodPost, flyte.GetOrExtendReservationProcedure, OpReserve},
		{http.MethodPost, flyte.ReleaseReservationProcedure, OpRelease},
	}
}

// newFlyteHandler returns the Connect handler of Flyte's cache service.
func newFlyteHandler(mgr *manager.Manager) http.Handler {
	_, h := flyte.NewHandler(mgr,
		connect.WithReadMaxBytes(MaxBodyBytes),
		// Answers are a few hundred bytes: not worth compressing.
		connect.WithCompressMinBytes(4<<10),
	)
	return h
}

// LocalProtocols are the protocols of the local server: HTTP/1.1 and
// unencrypted HTTP/2 (h2c), which gRPC needs.
func LocalProtocols() *http.Protocols {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return &p
}

// flytePath returns the procedure path of an API Gateway request for
// Flyte's cache service: the matched route's template, or the path when a
// $default or {proxy+} route matched.
func flytePath(template, path string) (string, bool) {
	for _, p := range []string{template, path} {
		if strings.HasPrefix(p, flyte.PathPrefix) {
			return p, true
		}
	}
	return "", false
}

// flyteOp returns the operation of a procedure path.
func flyteOp(path string) (Op, bool) {
	for _, r := range FlyteRoutes() {
		if r.Template == path {
			return r.Op, true
		}
	}
	return "", false
}

// serveFlyteHTTP serves r when it is a call of Flyte's cache service (the
// local server) and reports whether it was.
func (h *Handler) serveFlyteHTTP(w http.ResponseWriter, r *http.Request) bool {
	if !strings.HasPrefix(r.URL.Path, flyte.PathPrefix) {
		return false
	}
	h.serveFlyte(w, r, newRequestID())
	return true
}

// serveFlyte serves one call of Flyte's cache service through serve.
func (h *Handler) serveFlyte(w http.ResponseWriter, r *http.Request, requestID string) {
	op, _ := flyteOp(r.URL.Path)
	w.Header().Set(RequestIDHeader, requestID)
	rec := &statusRecorder{ResponseWriter: w}
	answered := false
	res := h.serve(r.Context(), h.opOr(op), requestID, func(ctx context.Context) result {
		call := &flyte.Call{}
		h.flyte.ServeHTTP(rec, r.WithContext(flyte.WithCall(ctx, call)))
		answered = true
		return flyteResult(call, rec.status)
	})
	if !answered && rec.status == 0 {
		// serve refused the call (a method routed to the wrong function) or
		// the handler panicked before writing anything.
		_ = connect.NewErrorWriter().Write(w, r, flyte.ConnectError(res.err))
	}
}

// flyteResult is the log line's view of a call.
func flyteResult(call *flyte.Call, status int) result {
	if !call.Served {
		// Connect answered by itself: an unknown procedure, or a request it
		// could not decode.
		code := manager.CodeInvalidArgument
		switch status {
		case http.StatusNotFound:
			code = manager.CodeNotFound
		case http.StatusTooManyRequests:
			code = manager.CodePayloadTooLarge
		}
		return failure(manager.Errorf(code, "body: not a valid call of %s (HTTP %d)", flyte.ServiceName, max(status, http.StatusOK)))
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

// flyteRequest builds the HTTP request an API Gateway event carries for
// Flyte's cache service. Response compression is not offered: API Gateway
// would have to pass a compressed JSON answer as binary.
func flyteRequest(ctx context.Context, method, path string, header http.Header, body string, isBase64 bool) (*http.Request, error) {
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

// serveFlyteEvent runs one API Gateway event for Flyte's cache service.
func (h *Handler) serveFlyteEvent(ctx context.Context, method, path string, header http.Header, body string, isBase64 bool, requestID string) *bufferedResponse {
	resp := newBufferedResponse()
	r, err := flyteRequest(ctx, method, path, header, body, isBase64)
	if err != nil {
		op, _ := flyteOp(path)
		res := h.serve(ctx, h.opOr(op), requestID, func(context.Context) result { return failure(err) })
		resp.header.Set(RequestIDHeader, requestID)
		// The request could not be rebuilt: answer in the Connect protocol.
		errorRequest, _ := http.NewRequestWithContext(ctx, method, "/", nil)
		errorRequest.Header = header
		_ = connect.NewErrorWriter().Write(resp, errorRequest, flyte.ConnectError(res.err))
		return resp
	}
	h.serveFlyte(resp, r, requestID)
	return resp
}

// flyteHTTPAPI answers an HTTP API (payload 2.0) event for Flyte's cache
// service.
func (h *Handler) flyteHTTPAPI(ctx context.Context, ev events.APIGatewayV2HTTPRequest, path string) events.APIGatewayV2HTTPResponse {
	header := make(http.Header, len(ev.Headers))
	for k, v := range ev.Headers {
		header.Set(k, v)
	}
	resp := h.serveFlyteEvent(ctx, ev.RequestContext.HTTP.Method, path, header, ev.Body, ev.IsBase64Encoded, ev.RequestContext.RequestID)
	body, isBase64 := resp.eventBody()
	headers := make(map[string]string, len(resp.header))
	for k, vs := range resp.header {
		headers[k] = strings.Join(vs, ",")
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: resp.statusCode(), Headers: headers, Body: body, IsBase64Encoded: isBase64}
}

// flyteV1 answers a payload 1.0 (REST API) event for Flyte's cache service.
func (h *Handler) flyteV1(ctx context.Context, ev events.APIGatewayProxyRequest, path string) events.APIGatewayProxyResponse {
	header := make(http.Header, len(ev.Headers))
	for k, v := range ev.Headers {
		header.Set(k, v)
	}
	for k, vs := range ev.MultiValueHeaders {
		header[http.CanonicalHeaderKey(k)] = vs
	}
	resp := h.serveFlyteEvent(ctx, ev.HTTPMethod, path, header, ev.Body, ev.IsBase64Encoded, ev.RequestContext.RequestID)
	body, isBase64 := resp.eventBody()
	return events.APIGatewayProxyResponse{StatusCode: resp.statusCode(), MultiValueHeaders: resp.header, Body: body, IsBase64Encoded: isBase64}
}
