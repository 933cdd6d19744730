package client_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stampede-cache/stampede/client"
	"github.com/stampede-cache/stampede/internal/manager"
	"github.com/stampede-cache/stampede/internal/testenv"
	"github.com/stampede-cache/stampede/internal/transport"
)

// herdRun is one measured herd: N concurrent GetOrCompute callers of one
// key, one computation of the given duration.
type herdRun struct {
	callers int
	compute time.Duration
	// shared: every caller uses one Client (one program with many
	// goroutines); otherwise each has its own (a herd of processes).
	shared bool
	// hint passes WithExpectedDuration(compute) to every caller.
	hint bool
	// longPoll gives every client WithLongPolling.
	longPoll bool
}

func (r herdRun) String() string {
	mode := "separate clients"
	if r.shared {
		mode = "one shared client"
	}
	if r.hint {
		mode += ", duration hint"
	}
	if r.longPoll {
		mode += ", long polling"
	}
	return fmt.Sprintf("N=%d compute=%s (%s)", r.callers, r.compute, mode)
}

// herdFigures is what a herd run measured.
type herdFigures struct {
	wall        time.Duration
	computed    int64
	requests    int64
	waiterMax   int64
	waiterMean  float64
	getItems    int
	readRate    float64
	peakRate    float64
	handOffLate time.Duration
	// acquired and stored are when the holder acquired the reservation and
	// stored its result, after the start.
	acquired, stored time.Duration
}

// measureHerd runs r against a fresh server with the service's default
// heartbeat (10 s) and checks what must hold whatever the timing: one
// computation, every caller gets the same entry.
func measureHerd(t *testing.T, r herdRun) herdFigures {
	t.Helper()
	srv := newMeasuredServer(t, manager.Config{})
	pool := sharedPool(t)
	counters := make([]*countingTransport, r.callers)
	clients := make([]*client.Client, r.callers)
	for i := range r.callers {
		if r.shared && i > 0 {
			clients[i], counters[i] = clients[0], counters[0]
			continue
		}
		counters[i] = &countingTransport{base: pool}
		opts := []client.Option{client.WithHTTPClient(&http.Client{Transport: counters[i]})}
		if r.longPoll {
			opts = append(opts, client.WithLongPolling())
		}
		clients[i] = newClient(t, srv.url, opts...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	key := "herd/" + strconv.Itoa(r.callers) + "/" + r.compute.String()
	// Warm up: every client has a connection and the server has served a
	// read, as in a herd of running workers. Not counted.
	for i, c := range clients {
		if i == 0 || clients[i] != clients[i-1] {
			if _, err := c.Get(ctx, scope, "warm-up", nil); !errors.Is(err, client.ErrNotFound) {
				t.Fatalf("warm-up: %v", err)
			}
		}
	}
	baseline := make([]int64, r.callers)
	for i, c := range counters {
		baseline[i] = c.n.Load()
	}
	serverBaseline := srv.requests.total.Load()

	var computed atomic.Int64
	var storedAt, acquiredAt atomic.Int64
	compute := func(ctx context.Context) (client.ComputeResult, error) {
		computed.Add(1)
		select {
		case <-time.After(r.compute):
		case <-ctx.Done():
			return client.ComputeResult{}, ctx.Err()
		}
		return client.ComputeResult{OutputURI: "s3://bucket/" + key}, nil
	}
	entries := make([]*client.Entry, r.callers)
	errs := make([]error, r.callers)
	holder := -1
	var holderMu sync.Mutex
	start := make(chan struct{})
	var ready, done sync.WaitGroup
	for i := range r.callers {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			opts := []client.ComputeOption{client.WithObserver(func(ev client.Event) {
				switch ev.Kind {
				case client.EventAcquired:
					acquiredAt.Store(time.Now().UnixNano())
					holderMu.Lock()
					holder = i
					holderMu.Unlock()
				case client.EventStored:
					storedAt.Store(time.Now().UnixNano())
				}
			})}
			if r.hint {
				opts = append(opts, client.WithExpectedDuration(r.compute))
			}
			ready.Done()
			<-start
			entries[i], errs[i] = clients[i].GetOrCompute(ctx, scope, key, compute, opts...)
		}()
	}
	ready.Wait()
	began := time.Now()
	close(start)
	done.Wait()
	wall := time.Since(began)
	end := time.Now()

	if n := computed.Load(); n != 1 {
		t.Errorf("%s: computed %d times, want 1", r, n)
	}
	for i := range r.callers {
		if errs[i] != nil {
			t.Fatalf("%s: caller %d: %v", r, i, errs[i])
		}
		if entries[i].OutputURI != entries[0].OutputURI || entries[i].Version != entries[0].Version {
			t.Fatalf("%s: caller %d got %+v, caller 0 %+v", r, i, entries[i], entries[0])
		}
	}
	f := herdFigures{wall: wall, computed: computed.Load(), requests: srv.requests.total.Load() - serverBaseline}
	f.handOffLate = end.Sub(time.Unix(0, storedAt.Load()))
	f.acquired = time.Unix(0, acquiredAt.Load()).Sub(began)
	f.stored = time.Unix(0, storedAt.Load()).Sub(began)
	if !r.shared {
		var total int64
		for i, c := range counters {
			if i == holder {
				continue
			}
			n := c.n.Load() - baseline[i]
			total += n
			f.waiterMax = max(f.waiterMax, n)
		}
		f.waiterMean = float64(total) / float64(r.callers-1)
	} else {
		f.waiterMean = float64(f.requests) / float64(r.callers)
	}
	reads := srv.store.readsBetween(began, end)
	f.getItems = len(reads)
	f.readRate = float64(len(reads)) / wall.Seconds()
	f.peakRate = peakRate(reads, 250*time.Millisecond)
	return f
}

// TestHerdHandOff measures the hand-off from one computing caller to a
// herd of waiters: by default a small herd (N=10, 0.5 s computation) in
// both configurations; STAMPEDE_HERD_N and STAMPEDE_HERD_COMPUTE (comma
// separated, e.g. "10,50,200" and "500ms,5s,60s") select others, and
// STAMPEDE_HERD_MODES some of "separate" (a client per caller), "hint"
// (the same with WithExpectedDuration), "longpoll" (the same with
// WithLongPolling) and "shared" (one client). It checks
// the protocol's promises (one computation, one entry for all) and logs the
// figures: wall time from the start to the last caller's return, requests
// per waiter, DynamoDB entry reads (GetItem) per second on the hot key.
func TestHerdHandOff(t *testing.T) {
	warmUpDynamoDB(t)
	for _, n := range envList("STAMPEDE_HERD_N", "10") {
		callers, err := strconv.Atoi(n)
		if err != nil || callers < 2 {
			t.Fatalf("STAMPEDE_HERD_N: bad herd size %q", n)
		}
		for _, d := range envList("STAMPEDE_HERD_COMPUTE", "500ms") {
			took, err := time.ParseDuration(d)
			if err != nil {
				t.Fatalf("STAMPEDE_HERD_COMPUTE: %v", err)
			}
			for _, mode := range envList("STAMPEDE_HERD_MODES", "separate,hint,longpoll,shared") {
				r := herdRun{callers: callers, compute: took}
				switch mode {
				case "separate":
				case "hint":
					r.hint = true
				case "shared":
					r.shared = true
				case "longpoll":
					r.longPoll = true
				default:
					t.Fatalf("STAMPEDE_HERD_MODES: unknown mode %q (separate, hint, longpoll, shared)", mode)
				}
				f := measureHerd(t, r)
				per := fmt.Sprintf("per waiter %.1f mean, %d max", f.waiterMean, f.waiterMax)
				if r.shared {
					per = fmt.Sprintf("per caller %.2f", f.waiterMean)
				}
				t.Logf("%-45s: all done after %7s (%.2f× the computation; holder acquired at %s, stored at %s, last return %s after the store); %d computation; %d requests, %s; %d GetItem, %.0f/s (peak %.0f/s over 250 ms)",
					r, f.wall.Round(time.Millisecond), f.wall.Seconds()/took.Seconds(),
					f.acquired.Round(time.Millisecond), f.stored.Round(time.Millisecond), f.handOffLate.Round(time.Millisecond),
					f.computed, f.requests, per, f.getItems, f.readRate, f.peakRate)
			}
		}
	}
}

// warmUpDynamoDB sends DynamoDB Local a few hundred requests of each kind,
// so that the first measurement does not pay for its JVM's warm-up.
func warmUpDynamoDB(t *testing.T) {
	t.Helper()
	srv := newMeasuredServer(t, manager.Config{})
	c := newClient(t, srv.url)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 15 {
				key := fmt.Sprintf("warm/%d/%d", w, i)
				_, _ = c.Put(ctx, scope, key, client.PutRequest{OutputURI: "s3://bucket/warm"})
				_, _ = c.Get(ctx, scope, key, nil)
				_, _ = c.Reserve(ctx, scope, key, client.ReserveRequest{OwnerID: "warm"})
				_, _ = c.Release(ctx, scope, key, client.ReleaseRequest{OwnerID: "warm"})
			}
		}()
	}
	wg.Wait()
}

// TestGetOrComputeLocalHandOff: calls of one client for a key follow the
// one that leads it: they do not poll, they are told when it is done. While
// the leader computes, after every other call started waiting, the service
// receives no request but the leader's heartbeats.
func TestGetOrComputeLocalHandOff(t *testing.T) {
	t.Parallel()
	const waiters = 8
	srv := newMeasuredServer(t, manager.Config{})
	c := newClient(t, srv.url)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	waiting := make(chan struct{}, waiters)
	var getsWhileComputing, requestsBeforeStore atomic.Int64
	compute := func(ctx context.Context) (client.ComputeResult, error) {
		for range waiters {
			select {
			case <-waiting:
			case <-ctx.Done():
				return client.ComputeResult{}, ctx.Err()
			}
		}
		// Long enough for pollers to look several times (every 200 ms at
		// first).
		before := srv.requests.gets.Load()
		time.Sleep(1500 * time.Millisecond)
		getsWhileComputing.Store(srv.requests.gets.Load() - before)
		requestsBeforeStore.Store(srv.requests.total.Load())
		return client.ComputeResult{OutputURI: "s3://bucket/local"}, nil
	}
	var wg sync.WaitGroup
	errs := make([]error, waiters+1)
	entries := make([]*client.Entry, waiters+1)
	var acquired atomic.Int32
	for i := range waiters + 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var once sync.Once
			entries[i], errs[i] = c.GetOrCompute(ctx, scope, "local", compute, client.WithObserver(func(ev client.Event) {
				switch ev.Kind {
				case client.EventWaiting:
					once.Do(func() { waiting <- struct{}{} })
				case client.EventAcquired:
					acquired.Add(1)
				}
			}))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
		if entries[i].OutputURI != "s3://bucket/local" {
			t.Fatalf("caller %d: %+v", i, entries[i])
		}
	}
	if acquired.Load() != 1 {
		t.Fatalf("%d callers computed", acquired.Load())
	}
	if n := getsWhileComputing.Load(); n != 0 {
		t.Fatalf("%d gets reached the service while the local holder computed; want 0", n)
	}
	// Up to the store: each call's first get (coalesced), one reserve, the
	// leader's look once more, and at most two heartbeats (10 s apart).
	if n := requestsBeforeStore.Load(); n > waiters+1+4 {
		t.Fatalf("%d requests before the store; want at most %d", n, waiters+1+4)
	}
}

// TestGetOrComputeLongPolling: a waiter with WithLongPolling learns of the
// holder's result from a get that waits for it, not by polling: a handful
// of requests for a computation that polling would look at several times.
func TestGetOrComputeLongPolling(t *testing.T) {
	t.Parallel()
	srv := newMeasuredServer(t, manager.Config{MaxHeartbeat: heartbeat, HeartbeatMultiplier: multiplier})
	counted := &countingTransport{base: sharedPool(t)}
	waiter := newClient(t, srv.url, client.WithLongPolling(), client.WithHTTPClient(&http.Client{Transport: counted}))
	// The holder finishes a while after the waiter began to wait: a poller
	// would have looked several times by then.
	waitForHolder(t, newClient(t, srv.url), waiter, "s3://bucket/long", 1500*time.Millisecond)
	// get, reserve, and the waiting gets: one per 3 s lease at most (the
	// waiter reserves again when the lease it saw ends).
	if n := counted.n.Load(); n > 6 {
		t.Fatalf("the waiter sent %d requests", n)
	}
	t.Logf("the waiter sent %d requests", counted.n.Load())
}

// waitForHolder runs one GetOrCompute on holder that finishes (storing
// uri) after waiter's GetOrCompute of the same key has waited for it for
// after, and checks that the waiter gets the holder's result.
func waitForHolder(t *testing.T, holder, waiter *client.Client, uri string, after time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	acquired, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := holder.GetOrCompute(ctx, scope, "k", func(ctx context.Context) (client.ComputeResult, error) {
			close(acquired)
			select {
			case <-release:
			case <-ctx.Done():
				return client.ComputeResult{}, ctx.Err()
			}
			return client.ComputeResult{OutputURI: uri}, nil
		}, client.WithHeartbeat(heartbeat))
		done <- err
	}()
	<-acquired
	var once sync.Once
	e, err := waiter.GetOrCompute(ctx, scope, "k", func(context.Context) (client.ComputeResult, error) {
		t.Error("the waiter computed")
		return client.ComputeResult{}, nil
	}, client.WithObserver(func(ev client.Event) {
		if ev.Kind == client.EventWaiting {
			once.Do(func() { time.AfterFunc(after, func() { close(release) }) })
		}
	}))
	if err != nil || e.OutputURI != uri {
		t.Fatalf("waiter: %+v, %v", e, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// waitsRecorder passes requests to the local server, noting the gets that
// asked it to wait; hide drops the server's Stampede-Waits header, as a
// Lambda function's answer lacks it.
type waitsRecorder struct {
	next  http.Handler
	hide  bool
	waits atomic.Int64
}

func (w *waitsRecorder) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Has("wait_ms") {
		w.waits.Add(1)
	}
	if w.hide {
		rw = headerDropper{rw}
	}
	w.next.ServeHTTP(rw, r)
}

type headerDropper struct{ http.ResponseWriter }

func (h headerDropper) WriteHeader(status int) {
	h.Header().Del(client.WaitsHeader)
	h.ResponseWriter.WriteHeader(status)
}

// Waiters long-poll without being told to when the service says its waits
// are shared (the local server), and poll when it does not (Lambda).
func TestGetOrComputeLongPollsWhereWaitsAreShared(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		hide      bool
		wantWaits bool
	}{
		{"local server", false, true},
		{"a host without shared waits", true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			store, _ := testenv.Store(t)
			mgr, err := manager.New(store, manager.Config{MaxHeartbeat: heartbeat, HeartbeatMultiplier: multiplier})
			if err != nil {
				t.Fatal(err)
			}
			rec := &waitsRecorder{next: transport.NewRouter(mgr, transport.Options{Log: slog.New(slog.DiscardHandler)}), hide: tt.hide}
			srv := httptest.NewServer(rec)
			t.Cleanup(srv.Close)
			waitForHolder(t, newClient(t, srv.URL), newClient(t, srv.URL), "s3://bucket/shared", 500*time.Millisecond)
			if got := rec.waits.Load() > 0; got != tt.wantWaits {
				t.Fatalf("%d gets that wait; want some: %v", rec.waits.Load(), tt.wantWaits)
			}
		})
	}
}
