package transport

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// ServeHTTP serves the HTTP contract directly (the local server): it builds
// the event API Gateway's HTTP API would send and runs it through the same
// code as the Lambda functions.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.serveRPCHTTP(w, r) {
		return
	}
	ev := HTTPAPIEvent(r)
	var resp events.APIGatewayV2HTTPResponse
	if err := literalScope(r.URL.EscapedPath()); err != nil {
		resp = h.refuseHTTPAPI(r.Context(), ev, err)
	} else {
		resp = h.HandleHTTPAPI(r.Context(), ev)
	}
	for k, v := range resp.Headers {
		w.Header().Set(k, v)
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.WriteString(w, resp.Body)
}

// LocalProtocols are the protocols of the local server: HTTP/1.1 and
// unencrypted HTTP/2 (h2c), which gRPC needs.
func LocalProtocols() *http.Protocols {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return &p
}

// HTTPAPIEvent builds an API Gateway HTTP API (payload 2.0) event from r, as
// API Gateway would: the route key and path parameters of the matching
// contract route (or "$default"), the decoded path, lower-case headers and
// the body, base64-encoded unless it is UTF-8. It reads at most
// MaxBodyBytes+1 bytes of the body, enough for the transport to refuse it.
func HTTPAPIEvent(r *http.Request) events.APIGatewayV2HTTPRequest {
	body, _ := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	ev := events.APIGatewayV2HTTPRequest{
		Version:        "2.0",
		RouteKey:       "$default",
		RawPath:        r.URL.Path,
		RawQueryString: r.URL.RawQuery,
		Headers:        make(map[string]string, len(r.Header)),
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:  "$default",
			Stage:     "$default",
			RequestID: newRequestID(),
			TimeEpoch: time.Now().UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:    r.Method,
				Path:      r.URL.Path,
				Protocol:  r.Proto,
				SourceIP:  sourceIP(r.RemoteAddr),
				UserAgent: r.UserAgent(),
			},
		},
	}
	for k, v := range r.Header {
		ev.Headers[strings.ToLower(k)] = strings.Join(v, ",")
	}
	if q := r.URL.Query(); len(q) > 0 {
		ev.QueryStringParameters = make(map[string]string, len(q))
		for k, v := range q {
			ev.QueryStringParameters[k] = strings.Join(v, ",")
		}
	}
	// Match on the escaped path so "%2F" cannot split project or domain.
	if template, id, err := parsePath(r.URL.EscapedPath()); err == nil {
		if route, ok := routeFor(r.Method, template); ok {
			if id, err = unescapeID(id); err == nil {
				ev.RouteKey = route.Key()
				ev.RequestContext.RouteKey = route.Key()
				ev.PathParameters = map[string]string{"project": id.Project, "domain": id.Domain, "key": id.Key}
			}
		}
	}
	if utf8.Valid(body) {
		ev.Body = string(body)
	} else {
		ev.Body = base64.StdEncoding.EncodeToString(body)
		ev.IsBase64Encoded = true
	}
	return ev
}

// newRequestID returns a random request id for the local server (API
// Gateway assigns its own).
func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// literalScope refuses a path whose project or domain is percent-encoded:
// API Gateway's IAM authorization would have matched the encoded form.
func literalScope(escapedPath string) error {
	if _, id, err := parsePath(escapedPath); err == nil {
		_, err = unescapeID(id)
		return err
	}
	return nil
}

// refuseHTTPAPI answers an HTTP API event with err, logged like any request.
func (h *Handler) refuseHTTPAPI(ctx context.Context, ev events.APIGatewayV2HTTPRequest, err error) events.APIGatewayV2HTTPResponse {
	r := h.serve(ctx, h.opOr(""), ev.RequestContext.RequestID, func(context.Context) result { return failure(err) })
	status, body := responseBody(r)
	return events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: responseHeaders(r), Body: string(body)}
}

func sourceIP(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	return host
}
