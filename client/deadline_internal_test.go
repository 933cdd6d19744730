package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"
)

// TestTransportTimeouts: the client's own transport bounds connecting, the
// TLS handshake and the wait for response headers.
func TestTransportTimeouts(t *testing.T) {
	c, err := New(DefaultEndpoint, WithAttemptTimeout(7*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	tr, ok := c.hc.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("transport is %T", c.hc.Transport)
	}
	if tr.DialContext == nil || tr.TLSHandshakeTimeout != DefaultTLSHandshakeTimeout || tr.ResponseHeaderTimeout != 7*time.Second+MaxGetWait || tr.MaxIdleConnsPerHost < 200 {
		t.Fatalf("transport: dial set %v, TLS %s, response headers %s, idle per host %d",
			tr.DialContext != nil, tr.TLSHandshakeTimeout, tr.ResponseHeaderTimeout, tr.MaxIdleConnsPerHost)
	}
	if c.callTimeout != DefaultCallTimeout {
		t.Fatalf("call timeout = %s", c.callTimeout)
	}
	for _, opt := range []Option{WithCallTimeout(0), WithCallTimeout(-time.Second), WithSessionKeys(-1)} {
		if _, err := New(DefaultEndpoint, opt); err == nil {
			t.Error("a bad option was accepted")
		}
	}
}

// TestCallWithoutDeadlineGetsOne: a call whose context has no deadline
// still ends, after the client's call timeout, against a server that never
// answers.
func TestCallWithoutDeadlineGetsOne(t *testing.T) {
	f := &fakeAPI{responses: []func(http.ResponseWriter, *http.Request){
		func(_ http.ResponseWriter, r *http.Request) {
			// The server notices a client going away only once it has read
			// the body.
			_, _ = io.Copy(io.Discard, r.Body)
			<-r.Context().Done()
		},
	}}
	c := fakeClient(t, f, WithCallTimeout(100*time.Millisecond), WithAttemptTimeout(time.Hour))
	for name, call := range map[string]func(context.Context) error{
		"get": func(ctx context.Context) error { _, err := c.Get(ctx, scope, "k", nil); return err },
		"eventual get": func(ctx context.Context) error {
			_, err := c.Get(ctx, scope, "k", &GetOptions{Consistency: ConsistencyEventual})
			return err
		},
		"put": func(ctx context.Context) error {
			_, err := c.Put(ctx, scope, "k", PutRequest{OutputURI: "s3://bucket/k"})
			return err
		},
		"reserve": func(ctx context.Context) error {
			_, err := c.Reserve(ctx, scope, "k", ReserveRequest{OwnerID: "o"})
			return err
		},
	} {
		if err := call(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: err = %v, want the default deadline exceeded", name, err)
		}
	}
	// The caller's own deadline wins over the default.
	c = fakeClient(t, f, WithCallTimeout(time.Hour), WithAttemptTimeout(time.Hour))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.Get(ctx, scope, "k", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

// TestRetryAfterBeyondDeadline: when the service asks for a wait that
// ends after the call's deadline, the call answers at once with the
// service's error rather than sleeping into the deadline.
func TestRetryAfterBeyondDeadline(t *testing.T) {
	f := &fakeAPI{responses: []func(http.ResponseWriter, *http.Request){func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":{"code":"unavailable","message":"dynamodb is slow"}}`))
	}}}
	c := fakeClient(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.Put(ctx, scope, "k", PutRequest{OutputURI: "s3://bucket/k"})
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want unavailable and deadline exceeded", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the call slept into the deadline")
	}
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("%d attempts, want 1", n)
	}
}

// TestRetryAfterIsHonoured: a short Retry-After is waited for, then the
// call is retried and succeeds.
func TestRetryAfterIsHonoured(t *testing.T) {
	f := &fakeAPI{responses: []func(http.ResponseWriter, *http.Request){
		func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"error":{"code":"throttled","message":"slow down"}}`))
		},
		status(200, okEntry),
	}}
	c := fakeClient(t, f)
	start := time.Now()
	if _, err := c.Get(context.Background(), scope, "k", nil); err != nil {
		t.Fatal(err)
	}
	// A lower bound only: the retry cannot have come before the service
	// allowed it.
	if took := time.Since(start); took < time.Second {
		t.Fatalf("retried after %s, before Retry-After's 1s", took)
	}
}

// TestGetWait: a get that waits sends wait_ms and gives the service the
// wait on top of the attempt timeout; a service that refuses wait_ms is
// remembered, and GetOrCompute's waiters poll instead.
func TestGetWait(t *testing.T) {
	f := &fakeAPI{responses: []func(http.ResponseWriter, *http.Request){func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("wait_ms") != "1500" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":{"code":"invalid_argument","message":"wait_ms: missing"}}`))
			return
		}
		time.Sleep(time.Second) // longer than an attempt may take without the wait
		_, _ = w.Write([]byte(okEntry))
	}}}
	c := fakeClient(t, f, WithAttemptTimeout(500*time.Millisecond))
	if _, err := c.Get(context.Background(), scope, "k", &GetOptions{Wait: 1500 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []time.Duration{-time.Second, MaxGetWait + time.Millisecond} {
		if _, err := c.Get(context.Background(), scope, "k", &GetOptions{Wait: d}); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("wait %s: %v", d, err)
		}
	}

	refusing := &fakeAPI{responses: []func(http.ResponseWriter, *http.Request){status(http.StatusBadRequest,
		`{"error":{"code":"invalid_argument","message":"wait_ms: unknown query parameter"}}`)}}
	c = fakeClient(t, refusing, WithLongPolling())
	g := &getOrCompute{c: c, scope: scope, key: "k"}
	if !g.longPoll() {
		t.Fatal("long polling is off")
	}
	if _, err := g.getWaiting(context.Background(), time.Second); !errors.Is(err, errCannotWait) {
		t.Fatalf("err = %v", err)
	}
	if g.longPoll() {
		t.Fatal("still long polling a service that refused wait_ms")
	}
}
