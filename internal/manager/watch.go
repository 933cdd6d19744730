package manager

import (
	"context"
	"sync"
	"time"
)

// Waiting for an entry (a get with Wait): the herd behind a reservation
// learns of the result as soon as this process sees it, without each waiter
// polling DynamoDB. Waiters of a key share one ticker; on each tick, and at
// once when a put through this process writes the key, they wake together
// and take one coalesced strong read (at most two GetItems per tick per key
// per process, however many wait). The read they take started after they
// woke, so what they answer is linearizable.

// DefaultWaitPoll is how often waiters of a key read it by default.
const DefaultWaitPoll = 100 * time.Millisecond

// MaxWait bounds GetOptions.Wait: under API Gateway's 29 s integration
// timeout, with room for the last read.
const MaxWait = 20 * time.Second

// waitReserve is kept back from the request's deadline for the last read.
const waitReserve = time.Second

// watchGroup holds the waiters of each key.
type watchGroup struct {
	mu   sync.Mutex
	keys map[ID]*watch
}

// watch wakes the waiters of one key: changed is closed (and replaced) on
// every tick and on every local write.
type watch struct {
	waiters int
	changed chan struct{}
	stop    chan struct{}
}

// subscribe registers a waiter of id and returns the channel that closes on
// the next wake-up; unsubscribe when done.
func (m *Manager) subscribe(id ID) <-chan struct{} {
	g := &m.watches
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.keys == nil {
		g.keys = make(map[ID]*watch)
	}
	w := g.keys[id]
	if w == nil {
		w = &watch{changed: make(chan struct{}), stop: make(chan struct{})}
		g.keys[id] = w
		go m.tick(id, w)
	}
	w.waiters++
	return w.changed
}

// next returns the channel of id's next wake-up for a subscribed waiter.
func (m *Manager) next(id ID) <-chan struct{} {
	g := &m.watches
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.keys[id].changed
}

func (m *Manager) unsubscribe(id ID) {
	g := &m.watches
	g.mu.Lock()
	defer g.mu.Unlock()
	w := g.keys[id]
	if w.waiters--; w.waiters == 0 {
		close(w.stop)
		delete(g.keys, id)
	}
}

// notify wakes id's waiters now: this process just wrote the key.
func (m *Manager) notify(id ID) {
	g := &m.watches
	g.mu.Lock()
	defer g.mu.Unlock()
	if w := g.keys[id]; w != nil {
		close(w.changed)
		w.changed = make(chan struct{})
	}
}

// tick wakes id's waiters every poll interval until the last one leaves.
func (m *Manager) tick(id ID, w *watch) {
	t := time.NewTicker(m.waitPoll)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			m.notify(id)
		}
	}
}

// awaitEntry waits until id has a live entry, the wait ends, or ctx is
// done. It answers the entry, or nil when the wait ended without one. The
// wait is measured in real time (timers), expiry with the manager's clock.
func (m *Manager) awaitEntry(ctx context.Context, id ID, wait time.Duration) (*Entry, error) {
	until := time.Now().Add(wait)
	if d, ok := ctx.Deadline(); ok && d.Add(-waitReserve).Before(until) {
		until = d.Add(-waitReserve)
	}
	m.subscribe(id)
	defer m.unsubscribe(id)
	for {
		remaining := time.Until(until)
		if remaining <= 0 {
			return nil, nil
		}
		timer := time.NewTimer(remaining)
		select {
		case <-m.next(id):
			timer.Stop()
		case <-timer.C:
			return nil, nil
		case <-ctx.Done():
			timer.Stop()
			return nil, outOfTime(ctx.Err())
		}
		e, err := m.strongRead(ctx, id)
		if err != nil {
			return nil, err
		}
		if e != nil && e.LiveAt(m.clock()) {
			return e, nil
		}
	}
}
