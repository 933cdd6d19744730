package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
)

// ComputeResult is what a compute function produced: where its output now
// lives and what describes it.
type ComputeResult struct {
	OutputURI string
	Metadata  Metadata
}

// ComputeFunc computes a key's output. Its context is cancelled when the
// caller's is, or when the reservation is lost (context.Cause is then an
// error that is ErrReservationLost); it should stop promptly.
type ComputeFunc func(ctx context.Context) (ComputeResult, error)

// Bounds of the default poll interval, which follows the holder's
// heartbeat interval.
const (
	MinPollInterval = 100 * time.Millisecond
	MaxPollInterval = 10 * time.Second
)

// releaseTimeout bounds the release at the end of a computation, which
// runs even when the caller's context is done.
const releaseTimeout = 10 * time.Second

// expirySlack is how long after a holder's expires_at a waiter tries to
// take over, so the service (which compares at millisecond precision) sees
// the reservation expired.
const expirySlack = 25 * time.Millisecond

// ComputeOption tunes GetOrCompute.
type ComputeOption func(*computeOptions)

type computeOptions struct {
	heartbeat time.Duration
	overwrite bool
	maxAge    time.Duration
	ttl       time.Duration
	ownerID   string
	poll      time.Duration
	expected  time.Duration
	observer  func(Event)
}

// WithHeartbeat asks for a heartbeat interval (the service clamps it; 10 s
// at most by default). The reservation is extended every effective
// interval and expires after the service's multiplier (3) of them without
// an extension. Zero (the default) takes the service's default.
func WithHeartbeat(d time.Duration) ComputeOption {
	return func(o *computeOptions) { o.heartbeat = d }
}

// WithOverwrite recomputes even when an entry exists: the entry present
// when the call starts is ignored and overwritten. Callers that start while
// another one recomputes wait for its result, as usual.
func WithOverwrite() ComputeOption {
	return func(o *computeOptions) { o.overwrite = true }
}

// WithMaxAge treats an entry last written more than d ago as a miss: it is
// recomputed and replaced (the put carries max_age_seconds).
func WithMaxAge(d time.Duration) ComputeOption {
	return func(o *computeOptions) { o.maxAge = d }
}

// WithTTL gives the stored entry a lifetime.
func WithTTL(d time.Duration) ComputeOption {
	return func(o *computeOptions) { o.ttl = d }
}

// WithOwnerID sets the reservation owner ID. The default, NewOwnerID, is
// unique per call; set one only to resume a reservation under a known ID.
func WithOwnerID(id string) ComputeOption {
	return func(o *computeOptions) { o.ownerID = id }
}

// WithPollInterval makes a waiter look for the holder's result at this
// fixed interval (jittered by ±20%) instead of the adaptive default: short
// first looks, gaps growing with the time waited up to the holder's
// heartbeat interval (within [MinPollInterval, MaxPollInterval]). Either
// way a waiter tries to take over as soon as the holder's reservation
// expires. Calls that follow another call of the same Client do not poll
// at all: they are told when it returns.
func WithPollInterval(d time.Duration) ComputeOption {
	return func(o *computeOptions) { o.poll = d }
}

// WithExpectedDuration tells waiters how long the computation usually
// takes, so they sleep through it and look often around its expected end:
// a prompt hand-off for long computations at few requests. Without it, a
// waiter uses the duration of the key's last computation by the same
// Client, if it remembers one, and otherwise polls adaptively. A wrong
// hint costs promptness (at most one heartbeat interval), never
// correctness.
func WithExpectedDuration(d time.Duration) ComputeOption {
	return func(o *computeOptions) { o.expected = d }
}

// WithObserver calls fn on each step of the protocol, e.g. to show who a
// caller is waiting for. fn runs on GetOrCompute's goroutines (heartbeat
// events on a separate one) and must not block.
func WithObserver(fn func(Event)) ComputeOption {
	return func(o *computeOptions) { o.observer = fn }
}

// EventKind names a step of GetOrCompute.
type EventKind int

// The steps of GetOrCompute.
const (
	// EventHit: a usable entry was found (Entry); GetOrCompute returns it.
	// Waited says whether another owner computed it while this caller
	// waited.
	EventHit EventKind = iota + 1
	// EventWaiting: another owner holds the reservation (Reservation);
	// HeldSince is when this caller first saw that holder. Sent after each
	// look that found no result.
	EventWaiting
	// EventAcquired: this caller holds the reservation (Reservation, and
	// LeaseDeadline) and is about to run compute. Waited says whether it
	// took over from another owner.
	EventAcquired
	// EventHeartbeat: an extension of the reservation succeeded
	// (Reservation, and the new LeaseDeadline) or failed (Err; retried
	// soon).
	EventHeartbeat
	// EventLost: an extension found the reservation lost (Reservation is
	// the new holder's: another owner's, or ours under a new fence after
	// another owner held it); compute is cancelled.
	EventLost
	// EventStored: the output was stored (Entry, Created), or the put met an
	// entry another owner stored first (Entry, Created false, Existing).
	// A successful store releases the reservation in the same write
	// (EventReleased follows).
	EventStored
	// EventReleased: the reservation was released (Err when that failed; it
	// then expires by itself).
	EventReleased
)

// String returns the kind's name.
func (k EventKind) String() string {
	switch k {
	case EventHit:
		return "hit"
	case EventWaiting:
		return "waiting"
	case EventAcquired:
		return "acquired"
	case EventHeartbeat:
		return "heartbeat"
	case EventLost:
		return "lost"
	case EventStored:
		return "stored"
	case EventReleased:
		return "released"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is one step of GetOrCompute, for observers.
type Event struct {
	Kind        EventKind
	Key         string
	Entry       *Entry
	Reservation *Reservation
	HeldSince   time.Time
	Waited      bool
	Created     bool
	Existing    bool
	// LeaseDeadline, with EventAcquired and a successful EventHeartbeat,
	// is until when this caller can count on its reservation, by its own
	// clock (see ReserveResult.LeaseDeadline).
	LeaseDeadline time.Time
	Err           error
}

// GetOrCompute returns key's entry, computing it at most once across all
// callers that use the protocol:
//
//   - get: a live entry is returned (unless WithOverwrite or WithMaxAge
//     reject it);
//   - otherwise reserve: the caller that acquires the reservation checks
//     the cache once more, then runs compute while extending the
//     reservation every heartbeat interval, puts the output, releases the
//     reservation and returns the entry. When compute fails (or the context
//     is cancelled) it releases the reservation and returns compute's
//     error; when the put meets an entry another owner stored first, that
//     entry is returned.
//   - callers that do not acquire the reservation wait until the holder's
//     result appears (returned), looking with get at adaptive intervals,
//     and reserve again when the holder's reservation expires: one of them
//     takes over.
//
// Calls of one Client for the same key share this: one of them (the
// leader) reserves, waits or computes; the others send nothing until it
// returns, then take its result (one shared get) or one of them leads in
// turn.
//
// With healthy workers compute runs once per key; a holder that stops
// heartbeating is replaced within the reservation's lifetime (heartbeat ×
// the service's multiplier) plus a moment. See docs/client.md for the
// guarantees, the waiting policy and their limits.
func (c *Client) GetOrCompute(ctx context.Context, s Scope, key string, compute ComputeFunc, opts ...ComputeOption) (*Entry, error) {
	if compute == nil {
		return nil, invalidArgument("compute: nil function")
	}
	var o computeOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.ownerID == "" {
		o.ownerID = NewOwnerID()
	}
	if o.heartbeat < 0 || o.maxAge < 0 || o.ttl < 0 || o.poll < 0 || o.expected < 0 {
		return nil, invalidArgument("GetOrCompute: durations must not be negative")
	}
	path, err := resourcePath(s, key, "cache")
	if err != nil {
		return nil, err
	}
	// The service counts max_age_seconds in whole seconds; so does the
	// freshness check, or an entry could be judged stale by one and fresh by
	// the other.
	o.maxAge = (o.maxAge + time.Second - 1) / time.Second * time.Second
	g := &getOrCompute{c: c, scope: s, key: key, path: path, compute: compute, o: o}
	return g.run(ctx)
}

// getOrCompute is one GetOrCompute call.
type getOrCompute struct {
	c     *Client
	scope Scope
	key   string
	// path identifies the key within the client (its resource path).
	path    string
	compute ComputeFunc
	o       computeOptions

	// stale is the entry found at the start and rejected (WithOverwrite,
	// WithMaxAge): it does not count as a result while waiting.
	stale *Entry
	// waited is set once another owner was seen holding the reservation.
	waited bool
	// holder and holderSince track the reservation being waited for;
	// looks counts the looks for its result.
	holder      *Reservation
	holderSince time.Time
	looks       int
	// call is this call's registration as the client's leading call of
	// the key (see localCalls).
	call *localCall
}

func (g *getOrCompute) emit(ev Event) {
	if g.o.observer != nil {
		ev.Key = g.key
		g.o.observer(ev)
	}
}

// get returns the live entry, or nil on a miss.
func (g *getOrCompute) get(ctx context.Context) (*Entry, error) {
	e, err := g.c.Get(ctx, g.scope, g.key, nil)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return e, err
}

// errCannotWait: the service does not know wait_ms.
var errCannotWait = errors.New("stampede: the service cannot wait for an entry")

// longPoll reports whether to wait for the holder's result with a get
// that waits: WithLongPolling, or a service that shares its waits
// (WaitsHeader). Not when the key has an entry this call rejected
// (WithOverwrite, WithMaxAge): the service waits only on a miss.
func (g *getOrCompute) longPoll() bool {
	return (g.c.longPolling || g.c.sharedWaits.Load()) && g.stale == nil && !g.c.cannotWait.Load()
}

// getWaiting gets the entry, asking the service to wait up to d for it:
// nil on a miss. A service that refuses wait_ms is remembered, and
// errCannotWait returned.
func (g *getOrCompute) getWaiting(ctx context.Context, d time.Duration) (*Entry, error) {
	e, err := g.c.Get(ctx, g.scope, g.key, &GetOptions{Wait: d})
	var apiErr *APIError
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, nil
	case errors.As(err, &apiErr) && apiErr.Code == CodeInvalidArgument && strings.HasPrefix(apiErr.Message, "wait_ms"):
		g.c.cannotWait.Store(true)
		return nil, errCannotWait
	}
	return e, err
}

// usable reports whether an entry found after the first look is a result:
// anything but the stale entry rejected at the start.
func (g *getOrCompute) usable(e *Entry) bool {
	if e == nil {
		return false
	}
	s := g.stale
	return s == nil || e.Version != s.Version || !e.LastUpdatedAt.Equal(s.LastUpdatedAt) || e.OutputURI != s.OutputURI
}

func (g *getOrCompute) run(ctx context.Context) (*Entry, error) {
	e, err := g.get(ctx)
	if err != nil {
		return nil, err
	}
	if e != nil {
		if !g.o.overwrite && (g.o.maxAge == 0 || time.Since(e.LastUpdatedAt) <= g.o.maxAge) {
			g.emit(Event{Kind: EventHit, Entry: e})
			return e, nil
		}
		g.stale = e
	}
	for {
		call, leader := g.c.calls.lead(g.path)
		if leader {
			return g.leadCall(ctx, call)
		}
		e, err := g.follow(ctx, call)
		if err != nil || e != nil {
			return e, err
		}
	}
}

// leadCall runs the protocol with the service for this client's calls of
// the key.
func (g *getOrCompute) leadCall(ctx context.Context, call *localCall) (*Entry, error) {
	g.call = call
	defer g.c.calls.finish(g.path, call)
	for {
		sent := time.Now()
		res, err := g.reserve(ctx)
		if err != nil {
			return nil, err
		}
		if res.Acquired {
			return g.hold(ctx, res)
		}
		if g.usable(res.Entry) {
			// The holder stored its result since our first look.
			g.emit(Event{Kind: EventHit, Entry: res.Entry, Waited: g.waited})
			return res.Entry, nil
		}
		e, err := g.wait(ctx, res.Reservation, sent, time.Now())
		if err != nil || e != nil {
			return e, err
		}
	}
}

// follow waits for the call of this client that leads the key to return,
// then looks at the cache: it returns a usable entry, or nil, nil when
// there is none (lead or follow anew).
func (g *getOrCompute) follow(ctx context.Context, call *localCall) (*Entry, error) {
	g.waited = true
	var seen *Reservation
	for {
		holder, since, changed := call.current()
		if holder != nil && (seen == nil || seen.OwnerID != holder.OwnerID || seen.Fence != holder.Fence) {
			seen = holder
			g.emit(Event{Kind: EventWaiting, Reservation: holder, HeldSince: since})
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("stampede: waiting for %q: %w", g.key, context.Cause(ctx))
		case <-call.done:
			e, err := g.get(ctx)
			if err != nil || !g.usable(e) {
				return nil, err
			}
			g.emit(Event{Kind: EventHit, Entry: e, Waited: true})
			return e, nil
		case <-changed:
		}
	}
}

// hold runs once the reservation is acquired: it looks for a result once
// more, or computes and stores one.
func (g *getOrCompute) hold(ctx context.Context, res *ReserveResult) (*Entry, error) {
	g.call.setHolder(res.Reservation, time.Now())
	// The previous holder may have stored its result and released between
	// our get and our reserve: the reserve's answer says (an older service
	// does not, and then we look once more).
	e := res.Entry
	if !res.EntryKnown {
		var err error
		if e, err = g.get(ctx); err != nil {
			g.release(ctx)
			return nil, err
		}
	}
	if g.usable(e) {
		g.release(ctx)
		g.emit(Event{Kind: EventHit, Entry: e, Waited: g.waited})
		return e, nil
	}
	return g.computeAndStore(ctx, res)
}

// reserve asks for the reservation, or extends ours.
func (g *getOrCompute) reserve(ctx context.Context) (*ReserveResult, error) {
	return g.c.Reserve(ctx, g.scope, g.key, ReserveRequest{OwnerID: g.o.ownerID, Heartbeat: g.o.heartbeat})
}

// wait waits for holder's result, which it returns, until holder's
// reservation may be over (nil, nil: reserve again). The reserve that
// answered holder was sent at sent and answered at received.
func (g *getOrCompute) wait(ctx context.Context, holder Reservation, sent, received time.Time) (*Entry, error) {
	if g.holder == nil || g.holder.OwnerID != holder.OwnerID || g.holder.Fence != holder.Fence {
		g.holderSince, g.looks = sent, 0
	}
	g.holder, g.waited = &holder, true
	g.call.setHolder(holder, g.holderSince)
	g.emit(Event{Kind: EventWaiting, Reservation: &holder, HeldSince: g.holderSince})

	// Try the reservation again once the holder's expires_at has passed,
	// as the service's answer put it, counted on our clock. A holder that
	// has expired by our clock although the service said it is live means
	// skewed clocks: then try again after about a heartbeat.
	left := holder.ExpiresAt.Sub(received)
	if left <= 0 {
		left = min(max(holder.HeartbeatInterval, MinPollInterval), MaxPollInterval)
	}
	retryAt := received.Add(left + expirySlack)
	expected := g.o.expected
	if expected == 0 {
		expected = g.c.durations.expected(g.path)
	}
	policy := newPollPolicy(g.o.poll, holder.HeartbeatInterval, expected)
	for {
		if g.longPoll() {
			until := time.Until(retryAt)
			if until <= 0 {
				return nil, nil
			}
			d := min(until, MaxGetWait)
			began := time.Now()
			e, err := g.getWaiting(ctx, d)
			switch {
			case errors.Is(err, errCannotWait):
			case err != nil:
				return nil, err
			case g.usable(e):
				g.emit(Event{Kind: EventHit, Entry: e, Waited: true})
				return e, nil
			default:
				g.looks++
				g.emit(Event{Kind: EventWaiting, Reservation: &holder, HeldSince: g.holderSince})
				if time.Since(began) >= d/2 {
					continue
				}
				// The service cut the wait short: pause as a poller would
				// before waiting again, rather than spin.
			}
		}
		wake := min(time.Until(retryAt), policy.delay(g.looks, time.Since(g.holderSince), rand.Float64))
		t := time.NewTimer(max(wake, 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("stampede: waiting for %q held by %s: %w", g.key, holder.OwnerID, context.Cause(ctx))
		case <-t.C:
		}
		if !time.Now().Before(retryAt) {
			return nil, nil
		}
		e, err := g.get(ctx)
		if err != nil {
			return nil, err
		}
		if g.usable(e) {
			g.emit(Event{Kind: EventHit, Entry: e, Waited: true})
			return e, nil
		}
		g.looks++
		g.emit(Event{Kind: EventWaiting, Reservation: &holder, HeldSince: g.holderSince})
	}
}

// computeAndStore runs compute while heartbeating, stores its output and
// releases the reservation.
func (g *getOrCompute) computeAndStore(ctx context.Context, acquired *ReserveResult) (*Entry, error) {
	res := &acquired.Reservation
	g.emit(Event{Kind: EventAcquired, Reservation: res, Waited: g.waited, LeaseDeadline: acquired.LeaseDeadline})
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	hbctx, stopHeartbeat := context.WithCancel(ctx)
	var lost *Reservation
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		lost = g.heartbeat(hbctx, acquired, cancel)
	}()
	stop := func() {
		stopHeartbeat()
		wg.Wait()
	}

	finished := false
	defer func() {
		if !finished { // compute panicked
			stop()
			g.release(ctx)
		}
	}()
	began := time.Now()
	out, err := g.compute(cctx)
	finished = true
	stop()
	if lost != nil {
		// Releasing is a no-op when the new holder is another owner, and
		// frees the key when it is us under a new fence.
		g.release(ctx)
		return nil, g.lostError(lost)
	}
	if err != nil {
		g.release(ctx)
		return nil, err
	}
	e, err := g.store(ctx, out, res)
	if err == nil {
		// The next computation of the key is expected to take as long:
		// waiters of this client use it to time their looks.
		g.c.durations.record(g.path, time.Since(began))
	}
	return e, err
}

// store puts compute's output with a fenced put that also releases the
// reservation: one write, which succeeds only while we still hold the
// reservation under its fence, so a holder whose lease lapsed can never
// store over a successor's result.
func (g *getOrCompute) store(ctx context.Context, out ComputeResult, res *Reservation) (*Entry, error) {
	for attempt := 1; ; attempt++ {
		put, err := g.c.Put(ctx, g.scope, g.key, PutRequest{
			OutputURI: out.OutputURI,
			Metadata:  out.Metadata,
			Overwrite: g.o.overwrite,
			MaxAge:    g.o.maxAge,
			TTL:       g.o.ttl,
			OwnerID:   g.o.ownerID,
			Fence:     res.Fence,
			Release:   true,
		})
		if err == nil {
			g.emit(Event{Kind: EventStored, Entry: &put.Entry, Created: put.Created})
			g.emit(Event{Kind: EventReleased})
			return &put.Entry, nil
		}
		var apiErr *APIError
		if !errors.As(err, &apiErr) {
			g.release(ctx)
			return nil, fmt.Errorf("stampede: store the output of %q: %w", g.key, err)
		}
		switch {
		case apiErr.Code == CodeAlreadyExists && apiErr.Existing != nil:
			// Another owner stored a result first (it wrote without the
			// protocol, or took over while our heartbeats were late and
			// finished). Our reservation was kept: release it.
			g.emit(Event{Kind: EventStored, Entry: apiErr.Existing, Existing: true})
			g.release(ctx)
			return apiErr.Existing, nil
		case apiErr.Code == CodeFailedPrecondition && apiErr.Existing != nil:
			// Lost the reservation, but a result is there: use it.
			g.emit(Event{Kind: EventStored, Entry: apiErr.Existing, Existing: true})
			if h := apiErr.Holder; h != nil && h.OwnerID == g.o.ownerID {
				g.release(ctx)
			}
			return apiErr.Existing, nil
		case apiErr.Code == CodeFailedPrecondition && apiErr.Holder == nil && attempt == 1:
			// Our reservation lapsed (late heartbeats) and nobody took the
			// key: reserve it again and store under the new fence.
			again, rerr := g.reserve(ctx)
			if rerr != nil {
				g.release(ctx) // in case it was acquired and the answer lost
				return nil, fmt.Errorf("stampede: store the output of %q: %w", g.key, rerr)
			}
			if !again.Acquired {
				g.emit(Event{Kind: EventLost, Reservation: &again.Reservation})
				return nil, g.lostError(&again.Reservation)
			}
			res = &again.Reservation
		case apiErr.Code == CodeFailedPrecondition:
			g.emit(Event{Kind: EventLost, Reservation: apiErr.Holder})
			if h := apiErr.Holder; h != nil && h.OwnerID == g.o.ownerID {
				g.release(ctx)
			}
			return nil, g.lostError(apiErr.Holder)
		default:
			g.release(ctx)
			return nil, fmt.Errorf("stampede: store the output of %q: %w", g.key, err)
		}
	}
}

// heartbeat extends the reservation until ctx is done: well before the
// lease runs out (at a third of it, or every heartbeat interval if that is
// sooner), and again soon after a failed extension. It returns the new
// holder's reservation, after cancelling compute, when an extension finds
// the reservation lost: held by another owner, or acquired anew by this one
// (a different fence: the lease expired and someone else held it in
// between).
func (g *getOrCompute) heartbeat(ctx context.Context, ours *ReserveResult, cancel context.CancelCauseFunc) *Reservation {
	interval := ours.Reservation.HeartbeatInterval
	if interval <= 0 {
		interval = time.Second
	}
	// next is when the next extension is due: a third of the lease after
	// the last successful one was sent.
	lastSent, lease := ours.sent, ours.LeaseDeadline
	next := func() time.Duration {
		step := interval
		if left := lease.Sub(lastSent); left > 0 {
			step = min(step, left/3)
		}
		return time.Until(lastSent.Add(step))
	}
	wait := next()
	for {
		t := time.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		// Each extension gets one interval; a late one is overtaken by the
		// next.
		sent := time.Now()
		rctx, done := context.WithTimeout(ctx, interval)
		res, err := g.reserve(rctx)
		done()
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			g.emit(Event{Kind: EventHeartbeat, Err: err})
			// Try again soon: the lease keeps running out meanwhile.
			wait = max(min(interval, time.Until(lease))/4, MinPollInterval)
		case !res.Acquired || res.Reservation.Fence != ours.Reservation.Fence:
			holder := res.Reservation
			cancel(g.lostError(&holder))
			g.emit(Event{Kind: EventLost, Reservation: &holder})
			return &holder
		default:
			lastSent, lease = sent, res.LeaseDeadline
			g.emit(Event{Kind: EventHeartbeat, Reservation: &res.Reservation, LeaseDeadline: res.LeaseDeadline})
			wait = next()
		}
	}
}

func (g *getOrCompute) lostError(holder *Reservation) error {
	switch {
	case holder == nil:
		return fmt.Errorf("%w: %q expired or was released before the output was stored", ErrReservationLost, g.key)
	case holder.OwnerID == g.o.ownerID:
		return fmt.Errorf("%w: %q expired while heartbeats failed and was held by another owner meanwhile", ErrReservationLost, g.key)
	}
	return fmt.Errorf("%w: %q is now held by %s (fence %d)", ErrReservationLost, g.key, holder.OwnerID, holder.Fence)
}

// release ends the reservation, even when ctx is done; a failure is only
// reported to the observer (the reservation then expires by itself).
func (g *getOrCompute) release(ctx context.Context) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	_, err := g.c.Release(rctx, g.scope, g.key, ReleaseRequest{OwnerID: g.o.ownerID})
	g.emit(Event{Kind: EventReleased, Err: err})
}
