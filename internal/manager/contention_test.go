package manager_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stampede-cache/stampede/internal/manager"
	"github.com/stampede-cache/stampede/internal/testenv"
)

// gatedReserves holds each reservation's answer, once DynamoDB Local has
// decided it, until the test lets it go, so the test can order callers
// against a write in flight. It controls timing only.
type gatedReserves struct {
	manager.Store
	entered chan manager.Acquisition
	release chan struct{}
	writes  atomic.Int64
}

func newGatedReserves(store manager.Store) *gatedReserves {
	return &gatedReserves{Store: store, entered: make(chan manager.Acquisition, 64), release: make(chan struct{})}
}

func (g *gatedReserves) AcquireReservation(ctx context.Context, a manager.Acquisition) (manager.AcquireOutcome, error) {
	g.writes.Add(1)
	out, err := g.Store.AcquireReservation(ctx, a)
	g.entered <- a
	select {
	case <-g.release:
	case <-ctx.Done():
	}
	return out, err
}

// releaseAll lets every write go from now on, until the test ends.
func (g *gatedReserves) releaseAll(t *testing.T) {
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	go func() {
		for {
			select {
			case g.release <- struct{}{}:
			case <-done:
				return
			}
		}
	}()
}

type reserveAnswer struct {
	owner string
	res   manager.ReserveResult
	err   error
}

func reserveAsync(mgr *manager.Manager, owner string, out chan<- reserveAnswer) {
	go func() {
		res, err := mgr.Reserve(context.Background(), id("k"), manager.ReserveRequest{OwnerID: owner})
		out <- reserveAnswer{owner, res, err}
	}()
}

// A herd reserving one key shares its refusals: one winner, every other
// caller told the winner holds the key, and far fewer writes than callers.
func TestAHerdOfReservationsSharesItsRefusals(t *testing.T) {
	store, _ := testenv.Store(t)
	gate := newGatedReserves(store)
	mgr, _ := manager.New(gate, manager.Config{})
	const herd = 50
	answers := make(chan reserveAnswer, herd)
	reserveAsync(mgr, "worker-0", answers)
	<-gate.entered // the first write is in flight
	for i := 1; i < herd; i++ {
		reserveAsync(mgr, fmt.Sprintf("worker-%d", i), answers)
	}
	time.Sleep(100 * time.Millisecond) // let the herd queue behind it
	gate.releaseAll(t)
	winners := map[string]bool{}
	var holders []manager.Reservation
	for range herd {
		a := <-answers
		if a.err != nil {
			t.Fatalf("%s: %v", a.owner, a.err)
		}
		if a.res.Acquired {
			winners[a.owner] = true
			continue
		}
		holders = append(holders, a.res.Reservation)
	}
	if len(winners) != 1 || !winners["worker-0"] {
		t.Fatalf("winners %v, want worker-0 alone", winners)
	}
	for _, h := range holders {
		if h.OwnerID != "worker-0" {
			t.Fatalf("a refused caller was told %s holds the key", h.OwnerID)
		}
	}
	if n := gate.writes.Load(); n >= herd/2 {
		t.Fatalf("%d conditional writes for %d callers: refusals were not shared", n, herd)
	}
	t.Logf("%d callers, %d conditional writes", herd, gate.writes.Load())
}

// A caller never takes the answer of a write that was in flight when it
// arrived: that write may have been decided before the key changed.
func TestASharedRefusalStartedAfterTheCaller(t *testing.T) {
	store, _ := testenv.Store(t)
	other, _ := manager.New(store, manager.Config{})
	ctx := context.Background()
	if r, err := other.Reserve(ctx, id("k"), manager.ReserveRequest{OwnerID: "holder"}); err != nil || !r.Acquired {
		t.Fatalf("holder: %+v, %v", r, err)
	}
	gate := newGatedReserves(store)
	mgr, _ := manager.New(gate, manager.Config{})
	answers := make(chan reserveAnswer, 2)
	reserveAsync(mgr, "early", answers)
	<-gate.entered // decided: held by holder; not answered yet
	// The holder releases; a caller arriving now must be able to acquire.
	if ok, err := other.Release(ctx, id("k"), manager.ReleaseRequest{OwnerID: "holder"}); err != nil || !ok {
		t.Fatalf("release: %v, %v", ok, err)
	}
	reserveAsync(mgr, "late", answers)
	time.Sleep(50 * time.Millisecond)
	gate.releaseAll(t)
	got := map[string]reserveAnswer{}
	for range 2 {
		a := <-answers
		got[a.owner] = a
	}
	if a := got["early"]; a.err != nil || a.res.Acquired || a.res.Reservation.OwnerID != "holder" {
		t.Fatalf("early: %+v", a)
	}
	if a := got["late"]; a.err != nil || !a.res.Acquired {
		t.Fatalf("late caller took an answer decided before it arrived: %+v", a)
	}
}

// The holder's extension is never answered with its own reservation as a
// refusal, and a caller whose clock says the holder has expired takes the
// key over instead of sharing a refusal decided earlier.
func TestSharedRefusalsOnlyWhenTheCallerWouldBeRefused(t *testing.T) {
	store, _ := testenv.Store(t)
	clock := testenv.NewClock(epoch)
	gate := newGatedReserves(store)
	mgr, _ := manager.New(gate, manager.Config{Clock: clock.Now})
	ctx := context.Background()
	gate.releaseAll(t)
	first, err := mgr.Reserve(ctx, id("k"), manager.ReserveRequest{OwnerID: "holder", HeartbeatSeconds: ptr[int64](5)})
	if err != nil || !first.Acquired {
		t.Fatalf("holder: %+v, %v", first, err)
	}
	<-gate.entered

	t.Run("extension", func(t *testing.T) {
		g := newGatedReserves(store)
		m, _ := manager.New(g, manager.Config{Clock: clock.Now})
		answers := make(chan reserveAnswer, 3)
		reserveAsync(m, "herd-a", answers)
		<-g.entered
		reserveAsync(m, "herd-b", answers)
		reserveAsync(m, "holder", answers)
		time.Sleep(50 * time.Millisecond)
		g.releaseAll(t)
		for range 3 {
			a := <-answers
			if a.err != nil {
				t.Fatal(a.err)
			}
			if a.owner == "holder" && (!a.res.Acquired || a.res.Reservation.Fence != first.Reservation.Fence) {
				t.Fatalf("the holder's extension: %+v", a.res)
			}
			if a.owner != "holder" && (a.res.Acquired || a.res.Reservation.OwnerID != "holder") {
				t.Fatalf("%s: %+v", a.owner, a.res)
			}
		}
	})

	t.Run("expired meanwhile", func(t *testing.T) {
		g := newGatedReserves(store)
		m, _ := manager.New(g, manager.Config{Clock: clock.Now})
		answers := make(chan reserveAnswer, 3)
		reserveAsync(m, "first", answers)
		<-g.entered // refused: the holder's lease runs 15 s from its last extension
		reserveAsync(m, "second", answers)
		reserveAsync(m, "third", answers)
		time.Sleep(50 * time.Millisecond)
		g.release <- struct{}{} // first answers; one of second and third writes
		writer := <-g.entered   // refused too, decided before the lease ran out
		clock.Advance(time.Minute)
		g.releaseAll(t)
		got := map[string]reserveAnswer{}
		for range 3 {
			a := <-answers
			if a.err != nil {
				t.Fatal(a.err)
			}
			got[a.owner] = a
		}
		if got["first"].res.Acquired || got[writer.OwnerID].res.Acquired {
			t.Fatalf("refused writes answered as acquired: %+v", got)
		}
		taker := "second"
		if writer.OwnerID == "second" {
			taker = "third"
		}
		if a := got[taker]; !a.res.Acquired || !a.res.TookOver {
			t.Fatalf("%s shared a refusal by a holder expired on its clock: %+v", taker, a.res)
		}
	})
}

// Callers that give up while queued leave the key usable.
func TestGivingUpInTheReservationQueue(t *testing.T) {
	store, _ := testenv.Store(t)
	gate := newGatedReserves(store)
	mgr, _ := manager.New(gate, manager.Config{})
	answers := make(chan reserveAnswer, 1)
	reserveAsync(mgr, "first", answers)
	<-gate.entered
	var wg sync.WaitGroup
	for i := range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cancel()
			if _, err := mgr.Reserve(ctx, id("k"), manager.ReserveRequest{OwnerID: fmt.Sprintf("quitter-%d", i)}); manager.ErrorCode(err) != manager.CodeUnavailable {
				t.Errorf("a caller that gave up: %v", err)
			}
		}()
	}
	wg.Wait()
	gate.releaseAll(t)
	if a := <-answers; a.err != nil || !a.res.Acquired {
		t.Fatalf("first: %+v", a)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := mgr.Reserve(ctx, id("k"), manager.ReserveRequest{OwnerID: "later"})
	if err != nil || r.Acquired || r.Reservation.OwnerID != "first" {
		t.Fatalf("a later caller: %+v, %v", r, err)
	}
}
