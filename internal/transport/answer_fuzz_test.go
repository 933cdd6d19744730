package transport_test

// What every fuzz target asserts, whatever the client sent and with a
// healthy DynamoDB behind: no panic, no 5xx, and every 4xx in the JSON
// error shape with the code of its status.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/stampede-cache/stampede/internal/manager"
	"github.com/stampede-cache/stampede/internal/testenv"
	"github.com/stampede-cache/stampede/internal/transport"
)

// fuzzRig is a router and the per-operation functions over one table of
// DynamoDB Local, with the real clock.
type fuzzRig struct {
	router *transport.Handler
	fns    []*transport.Handler
	log    *lastErrors
}

func newFuzzRig(f *testing.F) *fuzzRig {
	f.Helper()
	store, _ := testenv.Store(f)
	mgr, err := manager.New(store, manager.Config{})
	if err != nil {
		f.Fatal(err)
	}
	rig := &fuzzRig{log: &lastErrors{}}
	opts := transport.Options{Log: slog.New(rig.log)}
	rig.router = transport.NewRouter(mgr, opts)
	for _, op := range transport.Ops() {
		rig.fns = append(rig.fns, transport.NewFunction(mgr, op, opts))
	}
	return rig
}

// fn picks one operation's function.
func (r *fuzzRig) fn(i uint8) *transport.Handler { return r.fns[int(i)%len(r.fns)] }

// lastErrors keeps the last error-level log lines, where 5xx causes go.
type lastErrors struct {
	mu    sync.Mutex
	lines []string
}

func (l *lastErrors) Enabled(_ context.Context, level slog.Level) bool {
	return level >= slog.LevelError
}
func (l *lastErrors) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *lastErrors) WithGroup(string) slog.Handler      { return l }

func (l *lastErrors) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%q", a.Key, a.Value.String())
		return true
	})
	l.mu.Lock()
	l.lines = append(l.lines, b.String())
	if len(l.lines) > 5 {
		l.lines = l.lines[1:]
	}
	l.mu.Unlock()
	return nil
}

func (l *lastErrors) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// fuzzCodes maps each status a healthy server may answer with to its code.
var fuzzCodes = map[int]string{
	http.StatusBadRequest:            manager.CodeInvalidArgument,
	http.StatusNotFound:              manager.CodeNotFound,
	http.StatusConflict:              manager.CodeAlreadyExists,
	http.StatusPreconditionFailed:    manager.CodeFailedPrecondition,
	http.StatusRequestEntityTooLarge: manager.CodePayloadTooLarge,
}

// checkHTTPAnswer asserts an HTTP answer is not a 5xx and that a 4xx is the
// JSON error of its status; it returns what is wrong, or "".
func checkHTTPAnswer(status int, contentType, body string) string {
	switch {
	case status >= 500:
		return "a 5xx for a client's request"
	case status == http.StatusNotModified:
		if body != "" {
			return "a 304 with a body"
		}
		return ""
	case status < 200 || status >= 300 && status < 400:
		return "an unexpected status"
	case contentType != "application/json":
		return fmt.Sprintf("Content-Type %q", contentType)
	case status < 300:
		if !json.Valid([]byte(body)) {
			return "a 2xx whose body is not JSON"
		}
		return ""
	}
	return checkErrorBody(fuzzCodes[status], body)
}

// checkErrorBody asserts body is {"error":{"code":code,"message":…}} with a
// non-empty message.
func checkErrorBody(code, body string) string {
	if code == "" {
		return "a 4xx status the API does not use"
	}
	var e struct {
		Error *struct {
			Code    *string `json:"code"`
			Message *string `json:"message"`
		} `json:"error"`
	}
	dec := json.NewDecoder(strings.NewReader(body))
	if err := dec.Decode(&e); err != nil || e.Error == nil || e.Error.Code == nil || e.Error.Message == nil || *e.Error.Message == "" {
		return "not the JSON error shape"
	}
	if *e.Error.Code != code {
		return fmt.Sprintf("code %q, want %q", *e.Error.Code, code)
	}
	return ""
}

// checkInvokeAnswer asserts the same of a Lambda invocation's result:
// API Gateway responses as HTTP answers, direct invocations' errors as
// Stampede.<Code> errors whose message is the JSON error.
func checkInvokeAnswer(out any, err error) string {
	if err != nil {
		var lambdaErr messages.InvokeResponse_Error
		if !errors.As(err, &lambdaErr) {
			return fmt.Sprintf("an error that is not a Lambda error: %v", err)
		}
		for _, code := range fuzzCodes {
			if lambdaErr.Type == errorTypeOf(code) {
				return checkErrorBody(code, lambdaErr.Message)
			}
		}
		return fmt.Sprintf("error type %s for a client's request: %s", lambdaErr.Type, lambdaErr.Message)
	}
	switch resp := out.(type) {
	case events.APIGatewayV2HTTPResponse:
		return checkHTTPAnswer(resp.StatusCode, resp.Headers["Content-Type"], resp.Body)
	case events.APIGatewayProxyResponse:
		return checkHTTPAnswer(resp.StatusCode, resp.Headers["Content-Type"], resp.Body)
	}
	data, merr := json.Marshal(out)
	if merr != nil || !bytes.HasPrefix(data, []byte("{")) {
		return fmt.Sprintf("a direct result that is not a JSON object: %s", data)
	}
	return ""
}

// errorTypeOf is docs/api.md's errorType of a code: Stampede.InvalidArgument.
func errorTypeOf(code string) string {
	var b strings.Builder
	b.WriteString(transport.ErrorTypePrefix)
	for _, w := range strings.Split(code, "_") {
		b.WriteString(strings.ToUpper(w[:1]) + w[1:])
	}
	return b.String()
}
