package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stampede-cache/stampede/client"
	"github.com/stampede-cache/stampede/internal/manager"
	"github.com/stampede-cache/stampede/internal/testenv"
	"github.com/stampede-cache/stampede/internal/transport"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

var scope = client.Scope{Project: "proj", Domain: "dev"}

// The server's reservations: 1 s heartbeats (the minimum), expiring after
// three missed ones, so takeovers happen within seconds.
const (
	heartbeat  = time.Second
	multiplier = 3
)

// newServer starts the local API over a fresh table and returns its URL.
// clock, when set, is the server's clock.
func newServer(t *testing.T, clock func() time.Time) string {
	t.Helper()
	return newServerWith(t, manager.Config{HeartbeatMultiplier: multiplier, MaxHeartbeat: heartbeat, Clock: clock})
}

func newServerWith(t *testing.T, cfg manager.Config) string {
	t.Helper()
	store, _ := testenv.Store(t)
	mgr, err := manager.New(store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(transport.NewRouter(mgr, transport.Options{Log: slog.New(slog.DiscardHandler)}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func newClient(t *testing.T, url string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(url, append([]client.Option{client.WithRetry(3, 5*time.Millisecond, 50*time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func result(uri string) client.ComputeFunc {
	return func(context.Context) (client.ComputeResult, error) {
		return client.ComputeResult{OutputURI: uri}, nil
	}
}

// events records a caller's GetOrCompute events.
type events struct {
	mu  sync.Mutex
	all []client.Event
}

func (e *events) observe(ev client.Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
}

func (e *events) first(kind client.EventKind) (client.Event, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.all {
		if ev.Kind == kind {
			return ev, true
		}
	}
	return client.Event{}, false
}

// TestEntryJSONIsTheWireFormat checks that an Entry marshals back to the
// exact bytes the server sent (the CLI's --json relies on it).
func TestEntryJSONIsTheWireFormat(t *testing.T) {
	url := newServer(t, nil)
	c := newClient(t, url)
	ctx := context.Background()
	md := client.Metadata{Source: &client.Source{Project: "p", Name: "train", Version: "v1"}, Labels: map[string]string{"team": "ml", "a": "b"}}
	if _, err := c.Put(ctx, scope, "models/resnet", client.PutRequest{OutputURI: "s3://bucket/m", Metadata: md, TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(url + "/v1/projects/proj/domains/dev/cache/models/resnet")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	e, err := c.Get(ctx, scope, "models/resnet", nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.ExpiresAt.IsZero() || e.Metadata.Source.Name != "train" {
		t.Fatalf("entry = %+v", e)
	}
	if data, _ := json.Marshal(e); string(data) != string(raw) {
		t.Fatalf("marshalled entry\n%s\ndiffers from the server's\n%s", data, raw)
	}
}

// TestGetOrComputeComputesOnce: 20 concurrent callers on one key, healthy
// workers: compute runs once and everyone gets the same entry.
func TestGetOrComputeComputesOnce(t *testing.T) {
	t.Parallel()
	const callers = 20
	c := newClient(t, newServer(t, nil))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var computed atomic.Int32
	waiting := make(chan struct{}, callers)
	compute := func(ctx context.Context) (client.ComputeResult, error) {
		computed.Add(1)
		// Hold the reservation until every other caller waits on it, so
		// all of them take part in the contention.
		for range callers - 1 {
			select {
			case <-waiting:
			case <-ctx.Done():
				return client.ComputeResult{}, ctx.Err()
			}
		}
		return client.ComputeResult{OutputURI: "s3://bucket/once", Metadata: client.Metadata{Labels: map[string]string{"by": "compute"}}}, nil
	}
	entries := make([]*client.Entry, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var once sync.Once
			entries[i], errs[i] = c.GetOrCompute(ctx, scope, "shared/key", compute,
				client.WithHeartbeat(heartbeat),
				client.WithObserver(func(ev client.Event) {
					if ev.Kind == client.EventWaiting {
						once.Do(func() { waiting <- struct{}{} })
					}
				}))
		}()
	}
	wg.Wait()
	if n := computed.Load(); n != 1 {
		t.Fatalf("compute ran %d times, want 1", n)
	}
	want, _ := json.Marshal(entries[0])
	for i := range callers {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if got, _ := json.Marshal(entries[i]); string(got) != string(want) {
			t.Fatalf("caller %d got %s, caller 0 %s", i, got, want)
		}
	}
	if entries[0].OutputURI != "s3://bucket/once" || entries[0].Version <= 0 || entries[0].Metadata.Labels["by"] != "compute" {
		t.Fatalf("entry = %s", want)
	}

	// A later call is a plain hit.
	var ev events
	e, err := c.GetOrCompute(ctx, scope, "shared/key", func(context.Context) (client.ComputeResult, error) {
		t.Error("compute ran on a hit")
		return client.ComputeResult{}, nil
	}, client.WithObserver(ev.observe))
	if err != nil || e.OutputURI != "s3://bucket/once" {
		t.Fatalf("hit: %+v, %v", e, err)
	}
	if hit, ok := ev.first(client.EventHit); !ok || hit.Waited {
		t.Fatalf("events = %+v", ev.all)
	}
}

// switchTransport fails every request while dead, like a partitioned or
// frozen worker.
type switchTransport struct{ dead atomic.Bool }

func (s *switchTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if s.dead.Load() {
		return nil, errors.New("network is down")
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestGetOrComputeReplacesDeadHolder: a holder that stops heartbeating
// mid-compute is replaced within heartbeat × multiplier plus one poll
// interval; when it comes back, it learns it lost the reservation and
// stores nothing.
func TestGetOrComputeReplacesDeadHolder(t *testing.T) {
	t.Parallel()
	url := newServer(t, nil)
	net := &switchTransport{}
	holderClient := newClient(t, url, client.WithHTTPClient(&http.Client{Transport: net}), client.WithRetry(1, time.Millisecond, time.Millisecond))
	waiterClient := newClient(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	started := make(chan struct{})
	var holderEvents events
	holderDone := make(chan error, 1)
	go func() {
		_, err := holderClient.GetOrCompute(ctx, scope, "k", func(ctx context.Context) (client.ComputeResult, error) {
			close(started)
			<-ctx.Done()
			return client.ComputeResult{OutputURI: "s3://bucket/holder"}, context.Cause(ctx)
		}, client.WithHeartbeat(heartbeat), client.WithOwnerID("holder"), client.WithObserver(holderEvents.observe))
		holderDone <- err
	}()
	<-started
	net.dead.Store(true)
	died := time.Now()

	var waiterEvents events
	var acquiredAt time.Time
	e, err := waiterClient.GetOrCompute(ctx, scope, "k", func(context.Context) (client.ComputeResult, error) {
		acquiredAt = time.Now()
		return client.ComputeResult{OutputURI: "s3://bucket/waiter"}, nil
	}, client.WithHeartbeat(heartbeat), client.WithOwnerID("waiter"), client.WithObserver(waiterEvents.observe))
	if err != nil {
		t.Fatal(err)
	}
	if e.OutputURI != "s3://bucket/waiter" {
		t.Fatalf("entry = %+v", e)
	}
	if w, ok := waiterEvents.first(client.EventWaiting); !ok || w.Reservation.OwnerID != "holder" {
		t.Fatalf("the waiter never saw the holder: %+v", waiterEvents.all)
	}
	if a, _ := waiterEvents.first(client.EventAcquired); !a.Waited {
		t.Fatalf("acquired without waiting: %+v", a)
	}
	// The bound: the holder's lease (its last extension was at most when it
	// died) plus one poll interval (the holder's heartbeat, +20% jitter),
	// plus slack for request latency on a loaded machine.
	bound := heartbeat*multiplier + heartbeat*12/10 + time.Second
	if took := acquiredAt.Sub(died); took > bound {
		t.Errorf("takeover took %s, want at most %s", took, bound)
	}

	// The holder comes back: its next heartbeat finds the reservation gone
	// to another owner in between (a new fence), so compute is cancelled.
	net.dead.Store(false)
	select {
	case err := <-holderDone:
		if !errors.Is(err, client.ErrReservationLost) {
			t.Fatalf("holder: %v, want ErrReservationLost", err)
		}
	case <-ctx.Done():
		t.Fatal("the holder never noticed it lost the reservation")
	}
	if _, ok := holderEvents.first(client.EventLost); !ok {
		t.Errorf("no lost event: %+v", holderEvents.all)
	}
	got, err := waiterClient.Get(ctx, scope, "k", nil)
	if err != nil || got.OutputURI != "s3://bucket/waiter" || got.Version != e.Version {
		t.Fatalf("stored entry = %+v, %v", got, err)
	}
	// The holder released what its late heartbeat re-acquired.
	if r, err := waiterClient.Reserve(ctx, scope, "k", client.ReserveRequest{OwnerID: "third"}); err != nil || !r.Acquired {
		t.Fatalf("reserve after all: %+v, %v", r, err)
	}
}

// TestGetOrComputeLostToAnotherOwner: when an extension finds another owner
// holding the reservation, compute's context is cancelled with
// ErrReservationLost and nothing is stored.
func TestGetOrComputeLostToAnotherOwner(t *testing.T) {
	t.Parallel()
	clock := testenv.NewClock(time.Now())
	c := newClient(t, newServer(t, clock.Now))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	started := make(chan struct{})
	var cause error
	done := make(chan error, 1)
	go func() {
		_, err := c.GetOrCompute(ctx, scope, "k", func(ctx context.Context) (client.ComputeResult, error) {
			close(started)
			<-ctx.Done()
			cause = context.Cause(ctx)
			return client.ComputeResult{}, ctx.Err()
		}, client.WithHeartbeat(heartbeat), client.WithOwnerID("slow"))
		done <- err
	}()
	<-started
	// Let the reservation expire in the server's eyes and hand it to
	// another owner (retrying if a heartbeat slipped in first).
	for {
		clock.Advance(heartbeat * multiplier * 2)
		r, err := c.Reserve(ctx, scope, "k", client.ReserveRequest{OwnerID: "fast", Heartbeat: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if r.Acquired {
			break
		}
	}
	err := <-done
	if !errors.Is(err, client.ErrReservationLost) || !errors.Is(cause, client.ErrReservationLost) {
		t.Fatalf("err = %v, compute's cause = %v", err, cause)
	}
	if _, err := c.Get(ctx, scope, "k", nil); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("get = %v, want not found", err)
	}
	// The new owner keeps its reservation.
	if ok, err := c.Release(ctx, scope, "k", client.ReleaseRequest{OwnerID: "fast"}); err != nil || !ok {
		t.Fatalf("release by the new owner: %v, %v", ok, err)
	}
}

// TestGetOrComputeFailureReleases: a failed compute releases the
// reservation, returns its error, and a waiter takes over at once.
func TestGetOrComputeFailureReleases(t *testing.T) {
	t.Parallel()
	c := newClient(t, newServer(t, nil))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	boom := errors.New("boom")

	acquired := make(chan struct{})
	waiting := make(chan struct{})
	var once sync.Once
	failed := make(chan error, 1)
	go func() {
		_, err := c.GetOrCompute(ctx, scope, "k", func(ctx context.Context) (client.ComputeResult, error) {
			close(acquired)
			<-waiting
			return client.ComputeResult{}, boom
		}, client.WithHeartbeat(heartbeat))
		failed <- err
	}()
	<-acquired
	var ev events
	var computed atomic.Int32
	e, err := c.GetOrCompute(ctx, scope, "k", func(context.Context) (client.ComputeResult, error) {
		computed.Add(1)
		return client.ComputeResult{OutputURI: "s3://bucket/second"}, nil
	}, client.WithHeartbeat(heartbeat), client.WithObserver(func(e client.Event) {
		ev.observe(e)
		if e.Kind == client.EventWaiting {
			once.Do(func() { close(waiting) })
		}
	}))
	if err != nil || e.OutputURI != "s3://bucket/second" {
		t.Fatalf("waiter: %+v, %v", e, err)
	}
	if err := <-failed; !errors.Is(err, boom) {
		t.Fatalf("holder: %v, want boom", err)
	}
	if a, ok := ev.first(client.EventAcquired); !ok || !a.Waited || computed.Load() != 1 {
		t.Fatalf("events = %+v", ev.all)
	}
}

// TestGetOrComputeCancelReleases: cancelling the caller's context during
// compute releases the reservation.
func TestGetOrComputeCancelReleases(t *testing.T) {
	c := newClient(t, newServer(t, nil))
	ctx, cancel := context.WithCancel(context.Background())
	_, err := c.GetOrCompute(ctx, scope, "k", func(ctx context.Context) (client.ComputeResult, error) {
		cancel()
		<-ctx.Done()
		return client.ComputeResult{}, ctx.Err()
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	r, err := c.Reserve(context.Background(), scope, "k", client.ReserveRequest{OwnerID: "next"})
	if err != nil || !r.Acquired {
		t.Fatalf("reservation not released: %+v, %v", r, err)
	}
}

// TestGetOrComputePanicReleases: a panicking compute releases the
// reservation and the panic goes on.
func TestGetOrComputePanicReleases(t *testing.T) {
	c := newClient(t, newServer(t, nil))
	func() {
		defer func() {
			if p := recover(); p != "compute panicked" {
				t.Fatalf("recovered %v", p)
			}
		}()
		_, _ = c.GetOrCompute(context.Background(), scope, "k", func(context.Context) (client.ComputeResult, error) {
			panic("compute panicked")
		})
	}()
	r, err := c.Reserve(context.Background(), scope, "k", client.ReserveRequest{OwnerID: "next"})
	if err != nil || !r.Acquired {
		t.Fatalf("reservation not released: %+v, %v", r, err)
	}
}

// TestGetOrComputeConflictReturnsExisting: a put that meets an entry stored
// meanwhile returns that entry.
func TestGetOrComputeConflictReturnsExisting(t *testing.T) {
	c := newClient(t, newServer(t, nil))
	ctx := context.Background()
	var ev events
	e, err := c.GetOrCompute(ctx, scope, "k", func(ctx context.Context) (client.ComputeResult, error) {
		// Someone writes without the protocol while we compute.
		if _, err := c.Put(ctx, scope, "k", client.PutRequest{OutputURI: "s3://bucket/other"}); err != nil {
			return client.ComputeResult{}, err
		}
		return client.ComputeResult{OutputURI: "s3://bucket/mine"}, nil
	}, client.WithObserver(ev.observe))
	if err != nil || e.OutputURI != "s3://bucket/other" {
		t.Fatalf("GetOrCompute = %+v, %v", e, err)
	}
	if s, ok := ev.first(client.EventStored); !ok || !s.Existing {
		t.Fatalf("events = %+v", ev.all)
	}
}

// TestGetOrComputeStoresOptions: TTL and metadata reach the entry, and an
// invalid output is an error that releases the reservation.
func TestGetOrComputeStoresOptions(t *testing.T) {
	c := newClient(t, newServer(t, nil))
	ctx := context.Background()
	e, err := c.GetOrCompute(ctx, scope, "ttl", func(context.Context) (client.ComputeResult, error) {
		return client.ComputeResult{OutputURI: "s3://bucket/t", Metadata: client.Metadata{Labels: map[string]string{"x": "y"}}}, nil
	}, client.WithTTL(time.Hour))
	if err != nil || e.ExpiresAt.IsZero() || e.Metadata.Labels["x"] != "y" {
		t.Fatalf("GetOrCompute = %+v, %v", e, err)
	}
	_, err = c.GetOrCompute(ctx, scope, "bad", result("not-a-uri"), client.WithOwnerID("me"))
	if !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("invalid output: %v", err)
	}
	if r, err := c.Reserve(ctx, scope, "bad", client.ReserveRequest{OwnerID: "other"}); err != nil || !r.Acquired {
		t.Fatalf("reservation not released: %+v, %v", r, err)
	}
}

// TestGetOrComputeOverwriteAndMaxAge: WithOverwrite recomputes; WithMaxAge
// recomputes only entries older than the age.
func TestGetOrComputeOverwriteAndMaxAge(t *testing.T) {
	clock := testenv.NewClock(time.Now().Add(-2 * time.Hour))
	c := newClient(t, newServer(t, clock.Now))
	ctx := context.Background()
	first, err := c.Put(ctx, scope, "k", client.PutRequest{OutputURI: "s3://bucket/v1"})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Hour)
	// Versions are opaque and ordered: each write adds one.
	v := first.Entry.Version

	var computed atomic.Int32
	compute := func(uri string) client.ComputeFunc {
		return func(context.Context) (client.ComputeResult, error) {
			computed.Add(1)
			return client.ComputeResult{OutputURI: uri}, nil
		}
	}
	for i, tc := range []struct {
		opt     client.ComputeOption
		uri     string
		version int64
	}{
		{client.WithMaxAge(3 * time.Hour), "s3://bucket/v1", v}, // young enough: a hit
		{client.WithMaxAge(time.Hour), "s3://bucket/v2", v + 1}, // too old: recomputed
		{client.WithMaxAge(time.Hour), "s3://bucket/v2", v + 1}, // fresh now
		{client.WithOverwrite(), "s3://bucket/v3", v + 2},
	} {
		e, err := c.GetOrCompute(ctx, scope, "k", compute(tc.uri), tc.opt)
		if err != nil || e.OutputURI != tc.uri || e.Version != tc.version {
			t.Fatalf("case %d: %+v, %v", i, e, err)
		}
	}
	if computed.Load() != 2 {
		t.Fatalf("computed %d times, want 2", computed.Load())
	}
}

// TestGetOrComputeStoreAfterLapse: the store is a fenced put. When the
// reservation lapsed during compute (heartbeats did not get through), the
// outcome depends on what happened meanwhile.
func TestGetOrComputeStoreAfterLapse(t *testing.T) {
	for _, tc := range []struct {
		name string
		// meanwhile runs while our reservation is expired.
		meanwhile func(ctx context.Context, c *client.Client) error
		wantURI   string
		wantErr   error
	}{
		{
			name:      "nobody took the key: reserve again and store",
			meanwhile: func(context.Context, *client.Client) error { return nil },
			wantURI:   "s3://bucket/mine",
		},
		{
			name: "another owner holds the key: lost",
			meanwhile: func(ctx context.Context, c *client.Client) error {
				_, err := c.Reserve(ctx, scope, "k", client.ReserveRequest{OwnerID: "other"})
				return err
			},
			wantErr: client.ErrReservationLost,
		},
		{
			name: "another owner stored a result: use it",
			meanwhile: func(ctx context.Context, c *client.Client) error {
				if _, err := c.Reserve(ctx, scope, "k", client.ReserveRequest{OwnerID: "other"}); err != nil {
					return err
				}
				_, err := c.Put(ctx, scope, "k", client.PutRequest{OutputURI: "s3://bucket/theirs"})
				return err
			},
			wantURI: "s3://bucket/theirs",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := testenv.NewClock(time.Now())
			// Long heartbeats: none is due while compute runs.
			c := newClient(t, newServerWith(t, manager.Config{MaxHeartbeat: time.Minute, Clock: clock.Now}))
			ctx := context.Background()
			e, err := c.GetOrCompute(ctx, scope, "k", func(ctx context.Context) (client.ComputeResult, error) {
				clock.Advance(10 * time.Minute)
				if err := tc.meanwhile(ctx, c); err != nil {
					return client.ComputeResult{}, err
				}
				return client.ComputeResult{OutputURI: "s3://bucket/mine"}, nil
			}, client.WithHeartbeat(time.Minute), client.WithOwnerID("me"))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if _, err := c.Get(ctx, scope, "k", nil); !errors.Is(err, client.ErrNotFound) {
					t.Fatalf("a lost computation stored its output: %v", err)
				}
				return
			}
			if err != nil || e.OutputURI != tc.wantURI {
				t.Fatalf("GetOrCompute = %+v, %v; want %s", e, err, tc.wantURI)
			}
			// Whatever happened, we do not keep the key reserved.
			if ok, err := c.Release(ctx, scope, "k", client.ReleaseRequest{OwnerID: "me"}); err != nil || ok {
				t.Fatalf("still reserved by us: %v, %v", ok, err)
			}
		})
	}
}

func Example() {
	c, err := client.New(client.DefaultEndpoint)
	if err != nil {
		panic(err)
	}
	scope := client.Scope{Project: "ml", Domain: "dev"}
	entry, err := c.GetOrCompute(context.Background(), scope, "models/resnet@v3",
		func(ctx context.Context) (client.ComputeResult, error) {
			// Train, upload, and say where the output is.
			return client.ComputeResult{OutputURI: "s3://my-bucket/models/resnet/v3"}, nil
		},
		client.WithHeartbeat(10*time.Second), client.WithTTL(30*24*time.Hour))
	if err != nil {
		panic(err)
	}
	fmt.Println(entry.OutputURI)
}

// TestGetOrComputeLease: the holder's lease is counted on its own clock,
// ends no later than the service's expires_at, and heartbeats extend it
// well before it runs out.
func TestGetOrComputeLease(t *testing.T) {
	c := newClient(t, newServer(t, nil))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var ev events
	_, err := c.GetOrCompute(ctx, scope, "k", func(ctx context.Context) (client.ComputeResult, error) {
		// Long enough for a few heartbeats (1 s each).
		for {
			if n := func() int {
				ev.mu.Lock()
				defer ev.mu.Unlock()
				n := 0
				for _, e := range ev.all {
					if e.Kind == client.EventHeartbeat && e.Err == nil {
						n++
					}
				}
				return n
			}(); n >= 2 {
				return client.ComputeResult{OutputURI: "s3://bucket/k"}, nil
			}
			select {
			case <-ctx.Done():
				return client.ComputeResult{}, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}, client.WithHeartbeat(heartbeat), client.WithObserver(func(e client.Event) {
		if e.Kind == client.EventHeartbeat && e.Err == nil {
			// Extended before the previous lease ran out, with a lease
			// that ends no later than the service says.
			if e.LeaseDeadline.IsZero() || e.LeaseDeadline.After(e.Reservation.ExpiresAt) {
				t.Errorf("heartbeat lease %s, service's expires_at %s", e.LeaseDeadline, e.Reservation.ExpiresAt)
			}
		}
		ev.observe(e)
	}))
	if err != nil {
		t.Fatal(err)
	}
	a, ok := ev.first(client.EventAcquired)
	if !ok || a.LeaseDeadline.IsZero() || a.LeaseDeadline.After(a.Reservation.ExpiresAt) {
		t.Fatalf("acquired: lease %s, expires_at %s", a.LeaseDeadline, a.Reservation.ExpiresAt)
	}
	last := a.LeaseDeadline
	for _, e := range ev.all {
		if e.Kind == client.EventHeartbeat && e.Err == nil {
			if !e.LeaseDeadline.After(last) {
				t.Fatalf("a heartbeat did not extend the lease: %s after %s", e.LeaseDeadline, last)
			}
			last = e.LeaseDeadline
		}
	}
}

// TestGetOrComputeFollowersShareOverwrite: calls of one client that start
// while another recomputes a key (WithOverwrite) take its result: the key
// is recomputed once, not once per call.
func TestGetOrComputeFollowersShareOverwrite(t *testing.T) {
	c := newClient(t, newServer(t, nil))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.Put(ctx, scope, "k", client.PutRequest{OutputURI: "s3://bucket/old"}); err != nil {
		t.Fatal(err)
	}
	const callers = 5
	var computed atomic.Int32
	waiting := make(chan struct{}, callers)
	compute := func(ctx context.Context) (client.ComputeResult, error) {
		computed.Add(1)
		for range callers - 1 {
			select {
			case <-waiting:
			case <-ctx.Done():
				return client.ComputeResult{}, ctx.Err()
			}
		}
		return client.ComputeResult{OutputURI: "s3://bucket/new"}, nil
	}
	var wg sync.WaitGroup
	entries := make([]*client.Entry, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var once sync.Once
			entries[i], errs[i] = c.GetOrCompute(ctx, scope, "k", compute, client.WithOverwrite(),
				client.WithObserver(func(ev client.Event) {
					if ev.Kind == client.EventWaiting {
						once.Do(func() { waiting <- struct{}{} })
					}
				}))
		}()
	}
	wg.Wait()
	for i := range callers {
		if errs[i] != nil || entries[i].OutputURI != "s3://bucket/new" {
			t.Fatalf("caller %d: %+v, %v", i, entries[i], errs[i])
		}
	}
	if n := computed.Load(); n != 1 {
		t.Fatalf("recomputed %d times, want 1", n)
	}
}

// putBetween is an http.RoundTripper that, after the first cache miss it
// carries, stores an entry through another client before handing the miss
// back: a holder that finished between the caller's get and its reserve.
type putBetween struct {
	t      *testing.T
	other  *client.Client
	key    string
	once   sync.Once
	sent   []string
	sentMu sync.Mutex
}

func (p *putBetween) RoundTrip(r *http.Request) (*http.Response, error) {
	p.sentMu.Lock()
	p.sent = append(p.sent, r.Method+" "+strings.SplitN(strings.TrimPrefix(r.URL.Path, "/v1/projects/proj/domains/dev/"), "/", 2)[0])
	p.sentMu.Unlock()
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && r.Method == http.MethodGet && resp.StatusCode == http.StatusNotFound {
		p.once.Do(func() {
			if _, err := p.other.Put(r.Context(), scope, p.key, client.PutRequest{OutputURI: "s3://bucket/between"}); err != nil {
				p.t.Errorf("the put in between: %v", err)
			}
		})
	}
	return resp, err
}

// TestGetOrComputeTakesTheEntryFromTheReserve: the reserve's answer
// carries the key's live entry, so a result stored between the caller's
// get and its reserve is returned without computing and without another
// get; a lone caller on a fresh key sends get, reserve, put.
func TestGetOrComputeTakesTheEntryFromTheReserve(t *testing.T) {
	t.Parallel()
	url := newServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	between := &putBetween{t: t, other: newClient(t, url), key: "landed/between"}
	c := newClient(t, url, client.WithHTTPClient(&http.Client{Transport: between}))
	e, err := c.GetOrCompute(ctx, scope, "landed/between", func(context.Context) (client.ComputeResult, error) {
		t.Error("computed although the entry was there")
		return client.ComputeResult{}, nil
	})
	if err != nil || e.OutputURI != "s3://bucket/between" {
		t.Fatalf("GetOrCompute = %+v, %v", e, err)
	}
	if want := []string{"GET cache", "POST reservations", "DELETE reservations"}; !slices.Equal(between.sent, want) {
		t.Fatalf("requests %v, want %v", between.sent, want)
	}

	lone := &putBetween{t: t, key: "unrelated"}
	lone.once.Do(func() {}) // never puts
	c = newClient(t, url, client.WithHTTPClient(&http.Client{Transport: lone}))
	if _, err := c.GetOrCompute(ctx, scope, "fresh/key", result("s3://bucket/fresh")); err != nil {
		t.Fatal(err)
	}
	if want := []string{"GET cache", "POST reservations", "PUT cache"}; !slices.Equal(lone.sent, want) {
		t.Fatalf("requests %v, want %v", lone.sent, want)
	}
}
