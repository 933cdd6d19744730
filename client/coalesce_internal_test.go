package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// gateAPI holds every get until the test answers it, so the test decides
// when each shared request ends: the ordering a real server cannot be
// made to produce on demand.
type gateAPI struct {
	arrived chan *heldRead
}

// heldRead is a get waiting for its answer: a version, or 0 for a miss.
type heldRead struct {
	answer    chan int64
	cancelled chan struct{}
}

func (g *gateAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := &heldRead{answer: make(chan int64), cancelled: make(chan struct{})}
	g.arrived <- h
	select {
	case v := <-h.answer:
		if v == 0 {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":{"code":"not_found","message":"key: no cached entry"}}`))
			return
		}
		_, _ = w.Write([]byte(`{"project":"p","domain":"d","key":"k","output_uri":"s3://bucket/k","metadata":{"labels":{"a":"b"}},"created_at":"2026-01-02T03:04:05.000Z","last_updated_at":"2026-01-02T03:04:05.000Z","version":` + strconv.FormatInt(v, 10) + `}`))
	case <-r.Context().Done():
		close(h.cancelled)
	}
}

type readResult struct {
	entry *Entry
	err   error
}

// coalesceRig is a client over a gateAPI.
type coalesceRig struct {
	t    *testing.T
	c    *Client
	gate *gateAPI
}

func newCoalesceRig(t *testing.T) *coalesceRig {
	gate := &gateAPI{arrived: make(chan *heldRead, 16)}
	srv := httptest.NewServer(gate)
	t.Cleanup(srv.Close)
	c, err := New(srv.URL, WithRetry(1, time.Millisecond, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return &coalesceRig{t: t, c: c, gate: gate}
}

// read starts a strong get of "k" and returns where its result will be.
func (r *coalesceRig) read(ctx context.Context) <-chan readResult {
	out := make(chan readResult, 1)
	go func() {
		e, err := r.c.Get(ctx, scope, "k", nil)
		out <- readResult{e, err}
	}()
	return out
}

// request waits for the next get to reach the server.
func (r *coalesceRig) request() *heldRead {
	r.t.Helper()
	select {
	case h := <-r.gate.arrived:
		return h
	case <-time.After(time.Minute):
		r.t.Fatal("no request reached the server")
		return nil
	}
}

// noRequest checks that no get is waiting at the server.
func (r *coalesceRig) noRequest() {
	r.t.Helper()
	select {
	case <-r.gate.arrived:
		r.t.Fatal("an unexpected request reached the server")
	default:
	}
}

// waitQueued waits until n reads wait for the queued request.
func (r *coalesceRig) waitQueued(n int) {
	r.t.Helper()
	path, _ := resourcePath(scope, "k", "cache")
	for range 6000 {
		r.c.reads.mu.Lock()
		k := r.c.reads.keys[path]
		got := 0
		if k != nil && k.queued != nil {
			got = k.queued.waiters
		}
		r.c.reads.mu.Unlock()
		if got == n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.t.Fatalf("never saw %d queued reads", n)
}

// idle checks that the client keeps no state for the key.
func (r *coalesceRig) idle() {
	r.t.Helper()
	for range 6000 {
		r.c.reads.mu.Lock()
		n := len(r.c.reads.keys)
		r.c.reads.mu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.t.Fatal("the coalescer kept state for a key nobody reads")
}

func result(t *testing.T, ch <-chan readResult) readResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(time.Minute):
		t.Fatal("a read never returned")
		return readResult{}
	}
}

func wantVersion(t *testing.T, r readResult, v int64) {
	t.Helper()
	if r.err != nil || r.entry == nil || r.entry.Version != v {
		t.Fatalf("read = %+v, %v; want version %d", r.entry, r.err, v)
	}
}

// TestCoalescedReadsWaitForTheNextRequest is the barrier: reads arriving
// while a request is in flight do not take its answer; they share the next
// request, which starts after they all arrived.
func TestCoalescedReadsWaitForTheNextRequest(t *testing.T) {
	r := newCoalesceRig(t)
	ctx := context.Background()
	a := r.read(ctx)
	first := r.request()
	b, c := r.read(ctx), r.read(ctx)
	r.waitQueued(2)
	r.noRequest() // at most one request in flight
	// The first request read version 1 before a write made version 2,
	// which may have been acknowledged before b and c began: they must
	// not get version 1.
	first.answer <- 1
	wantVersion(t, result(t, a), 1)
	second := r.request()
	d := r.read(ctx) // arrives while the second is in flight: a third
	r.waitQueued(1)
	second.answer <- 2
	rb, rc := result(t, b), result(t, c)
	wantVersion(t, rb, 2)
	wantVersion(t, rc, 2)
	// Each waiter has its own copy.
	rb.entry.Metadata.Labels["a"] = "changed"
	if rc.entry.Metadata.Labels["a"] != "b" {
		t.Fatal("waiters share one entry")
	}
	r.request().answer <- 3
	wantVersion(t, result(t, d), 3)
	r.idle()
	r.noRequest()
}

// TestCoalescedReadsShareErrors: a miss answers every read waiting for it.
func TestCoalescedReadsShareErrors(t *testing.T) {
	r := newCoalesceRig(t)
	ctx := context.Background()
	a := r.read(ctx)
	first := r.request()
	b, c := r.read(ctx), r.read(ctx)
	r.waitQueued(2)
	first.answer <- 1
	wantVersion(t, result(t, a), 1)
	r.request().answer <- 0
	for _, ch := range []<-chan readResult{b, c} {
		if res := result(t, ch); !errors.Is(res.err, ErrNotFound) {
			t.Fatalf("err = %v, want not found", res.err)
		}
	}
	r.idle()
}

// TestCoalescedReadCancellation: a waiter that gives up returns at once
// without cancelling the request the others wait for; the request is
// cancelled, or never sent, when all of its waiters gave up.
func TestCoalescedReadCancellation(t *testing.T) {
	r := newCoalesceRig(t)
	bg := context.Background()

	// b gives up while queued; c still gets the next request's answer.
	a := r.read(bg)
	first := r.request()
	bctx, bcancel := context.WithCancel(bg)
	b := r.read(bctx)
	c := r.read(bg)
	r.waitQueued(2)
	bcancel()
	if res := result(t, b); !errors.Is(res.err, context.Canceled) {
		t.Fatalf("b: %v", res.err)
	}
	r.waitQueued(1)
	first.answer <- 1
	wantVersion(t, result(t, a), 1)
	r.request().answer <- 2
	wantVersion(t, result(t, c), 2)

	// Sharing a started request: one waiter gives up, the other gets the
	// answer.
	a = r.read(bg)
	first = r.request()
	dctx, dcancel := context.WithCancel(bg)
	d, e := r.read(dctx), r.read(bg)
	r.waitQueued(2)
	first.answer <- 3
	wantVersion(t, result(t, a), 3)
	second := r.request()
	dcancel()
	if res := result(t, d); !errors.Is(res.err, context.Canceled) {
		t.Fatalf("d: %v", res.err)
	}
	second.answer <- 4
	wantVersion(t, result(t, e), 4)

	// The only waiter gives up: the request is cancelled.
	fctx, fcancel := context.WithCancel(bg)
	f := r.read(fctx)
	held := r.request()
	fcancel()
	if res := result(t, f); !errors.Is(res.err, context.Canceled) {
		t.Fatalf("f: %v", res.err)
	}
	select {
	case <-held.cancelled:
	case <-time.After(time.Minute):
		t.Fatal("the request of a read everyone gave up on was not cancelled")
	}
	r.idle()

	// Everyone queued gives up: the queued request is never sent.
	g := r.read(bg)
	first = r.request()
	hctx, hcancel := context.WithCancel(bg)
	h := r.read(hctx)
	r.waitQueued(1)
	hcancel()
	if res := result(t, h); !errors.Is(res.err, context.Canceled) {
		t.Fatalf("h: %v", res.err)
	}
	r.waitQueued(0)
	first.answer <- 5
	wantVersion(t, result(t, g), 5)
	r.idle()
	r.noRequest()
}

// TestCoalescedReadDeadlines: a waiter's deadline ends its wait like a
// single read's; the shared request lives as long as its latest waiter's.
func TestCoalescedReadDeadlines(t *testing.T) {
	r := newCoalesceRig(t)
	bg := context.Background()
	a := r.read(bg)
	first := r.request()
	short, cancel := context.WithTimeout(bg, 50*time.Millisecond)
	defer cancel()
	b := r.read(short)
	c := r.read(bg)
	r.waitQueued(2)
	if res := result(t, b); !errors.Is(res.err, context.DeadlineExceeded) {
		t.Fatalf("b: %v", res.err)
	}
	first.answer <- 1
	wantVersion(t, result(t, a), 1)
	r.request().answer <- 2
	wantVersion(t, result(t, c), 2)
	r.idle()
}

// TestOnlyPlainStrongReadsCoalesce: reads with other options are sent as
// they are, each its own request.
func TestOnlyPlainStrongReadsCoalesce(t *testing.T) {
	for _, o := range []GetOptions{
		{Consistency: ConsistencyEventual},
		{MaxStaleness: time.Second},
		{Verify: true},
		{IfNoneMatch: 7},
		{Consistency: ConsistencyStrong, MinVersion: 3},
	} {
		if o.plainStrong() {
			t.Errorf("%+v coalesces", o)
		}
	}
	if !(GetOptions{}).plainStrong() || !(GetOptions{Consistency: ConsistencyStrong}).plainStrong() {
		t.Fatal("plain strong reads do not coalesce")
	}
	r := newCoalesceRig(t)
	ctx := context.Background()
	a := r.read(ctx)
	first := r.request()
	out := make(chan readResult, 1)
	go func() {
		e, err := r.c.Get(ctx, scope, "k", &GetOptions{Verify: true})
		out <- readResult{e, err}
	}()
	second := r.request() // sent while the first is in flight
	second.answer <- 2
	first.answer <- 1
	wantVersion(t, result(t, a), 1)
	wantVersion(t, result(t, out), 2)

	off, err := New(r.c.base, WithoutReadCoalescing())
	if err != nil {
		t.Fatal(err)
	}
	if off.reads != nil {
		t.Fatal("WithoutReadCoalescing left coalescing on")
	}
}
