// Package directserver serves the direct invocations of Stampede's Lambda
// functions over loopback HTTP, on a clock its caller moves. It lets a local
// Step Functions interpreter (infra/cachedtask's scenario tests) drive the
// real handlers, transport.Handler.Invoke for each function, in virtual time:
// a five-minute task takes no five minutes.
//
// Routes:
//
//	POST /invoke/{function}  the body is the invocation payload; the answer,
//	                         always 200, is {"result": …} or
//	                         {"error": {"errorType": …, "errorMessage": …}},
//	                         as Lambda reports a function error
//	PUT  /clock              {"offset_ms": N}: the service's clock reads the
//	                         start instant plus N ms; it never goes back
//	GET  /clock              {"offset_ms": N, "now": "<RFC 3339>"}
package directserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/stampede-cache/stampede/internal/manager"
	"github.com/stampede-cache/stampede/internal/transport"
)

// maxPayloadBytes bounds a request body: Lambda's synchronous payload limit.
const maxPayloadBytes = 6 << 20

// Clock is a clock that reads a fixed start instant plus an offset that
// only grows.
type Clock struct {
	start time.Time

	mu     sync.Mutex
	offset time.Duration
}

// NewClock returns a clock reading start.
func NewClock(start time.Time) *Clock { return &Clock{start: start} }

// Now returns the clock's instant; pass it as manager.Config.Clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.start.Add(c.offset)
}

// Offset returns how far the clock has moved from its start.
func (c *Clock) Offset() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset
}

// Set moves the clock to start plus offset; it refuses to move it back.
func (c *Clock) Set(offset time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if offset < c.offset {
		return fmt.Errorf("offset %v is before the current %v: the clock never goes back", offset, c.offset)
	}
	c.offset = offset
	return nil
}

// Server serves each function's direct invocations.
type Server struct {
	functions map[string]*transport.Handler
	clock     *Clock
}

// New returns a server for mgr's operations, one handler per function as
// in Lambda. mgr must read clock (manager.Config.Clock = clock.Now).
func New(mgr *manager.Manager, clock *Clock, opts transport.Options) *Server {
	s := &Server{functions: map[string]*transport.Handler{}, clock: clock}
	for _, op := range transport.Ops() {
		s.functions[string(op)] = transport.NewFunction(mgr, op, opts)
	}
	return s
}

// InvokeResult is the body of every POST /invoke/{function} answer.
type InvokeResult struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  *FunctionError  `json:"error,omitempty"`
}

// FunctionError is a function's error as Lambda reports it.
type FunctionError struct {
	Type    string `json:"errorType"`
	Message string `json:"errorMessage"`
}

// clockBody is the body of PUT and GET /clock.
type clockBody struct {
	OffsetMS *int64 `json:"offset_ms"`
	Now      string `json:"now,omitempty"`
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/invoke/") && r.Method == http.MethodPost:
		s.invoke(w, r, strings.TrimPrefix(r.URL.Path, "/invoke/"))
	case r.URL.Path == "/clock" && r.Method == http.MethodPut:
		s.setClock(w, r)
	case r.URL.Path == "/clock" && r.Method == http.MethodGet:
		offset := s.clock.Offset().Milliseconds()
		writeJSON(w, http.StatusOK, clockBody{OffsetMS: &offset, Now: s.clock.Now().Format(time.RFC3339Nano)})
	default:
		http.Error(w, "no such route: "+r.Method+" "+r.URL.Path, http.StatusNotFound)
	}
}

func (s *Server) invoke(w http.ResponseWriter, r *http.Request, function string) {
	h, ok := s.functions[function]
	if !ok {
		http.Error(w, fmt.Sprintf("no function %q", function), http.StatusNotFound)
		return
	}
	payload, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPayloadBytes))
	if err != nil {
		http.Error(w, "payload: "+err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	writeJSON(w, http.StatusOK, Invoke(r.Context(), h, payload))
}

// Invoke runs one direct invocation of h and reports it as Lambda would.
func Invoke(ctx context.Context, h *transport.Handler, payload []byte) InvokeResult {
	out, err := h.Invoke(ctx, payload)
	if err != nil {
		var fe messages.InvokeResponse_Error
		if errors.As(err, &fe) {
			return InvokeResult{Error: &FunctionError{Type: fe.Type, Message: fe.Message}}
		}
		// What aws-lambda-go reports for a plain Go error.
		return InvokeResult{Error: &FunctionError{Type: fmt.Sprintf("%T", err), Message: err.Error()}}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return InvokeResult{Error: &FunctionError{Type: "Runtime.MarshalError", Message: err.Error()}}
	}
	return InvokeResult{Result: b}
}

func (s *Server) setClock(w http.ResponseWriter, r *http.Request) {
	var body clockBody
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || body.OffsetMS == nil {
		http.Error(w, `want {"offset_ms": N}`, http.StatusBadRequest)
		return
	}
	if err := s.clock.Set(time.Duration(*body.OffsetMS) * time.Millisecond); err != nil {
		http.Error(w, err.Error(), http.StatusConflict)
		return
	}
	offset := s.clock.Offset().Milliseconds()
	writeJSON(w, http.StatusOK, clockBody{OffsetMS: &offset, Now: s.clock.Now().Format(time.RFC3339Nano)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
