package manager

import (
	"context"
	"sync"
)

// Shared contention, the write-side twin of coalesced reads: a herd of
// workers reserving one key sends one conditional write per worker, and all
// but the first fail; every failed write costs a write unit and holds up
// the key's later writes (the holder's put among them) behind the herd's.
//
// A reservation that fails changes nothing, so its answer (the key is held
// by H) is a read of the key at the write's linearization point. The rule
// that keeps sharing it linearizable is the coalesced reads' rule: a caller
// that arrives while a reservation of the key is in flight waits for the
// next one, which starts after it arrived; one of the callers waiting for it
// writes its own reservation, and the others take its answer as theirs if
// their own write, decided at that point, would have failed the same way:
// the holder is not them and, by their clock, has not expired. Otherwise
// (the holder is the caller, extending; or the lease ran out meanwhile) a
// caller writes for itself. Per key there is at most one reservation in
// flight and one batch waiting.

// reserveGroup shares contended reservations within one Manager.
type reserveGroup struct {
	mu   sync.Mutex
	keys map[ID]*reserveQueue
}

// reserveQueue is one key's reservation in flight and the batch of callers
// that arrived during it.
type reserveQueue struct {
	next *reserveBatch
}

// reserveBatch is the callers waiting for the next reservation of a key.
type reserveBatch struct {
	// ready is closed when the write before the batch's has finished: one
	// member may write (claimed), the others wait for done.
	ready chan struct{}
	done  chan struct{}

	// Guarded by reserveGroup.mu.
	members int
	claimed bool
	started bool

	// Set before done is closed.
	out AcquireOutcome
	err error
}

// acquire runs owner's conditional write of id's reservation, built by
// build just before it is sent (the lease is measured from there), or
// shares the answer of a write that started after the call did (see
// above). It returns the acquisition it wrote, zero when it shared one.
func (m *Manager) acquire(ctx context.Context, id ID, owner string, build func() Acquisition) (AcquireOutcome, Acquisition, error) {
	write := func() (AcquireOutcome, Acquisition, error) {
		a := build()
		out, err := m.store.AcquireReservation(ctx, a)
		return out, a, err
	}
	for {
		g := &m.reserves
		g.mu.Lock()
		if g.keys == nil {
			g.keys = make(map[ID]*reserveQueue)
		}
		q := g.keys[id]
		if q == nil {
			// Nothing in flight: write at once.
			g.keys[id] = &reserveQueue{}
			g.mu.Unlock()
			out, a, err := write()
			m.finishReserve(id)
			return out, a, err
		}
		b := q.next
		if b == nil {
			b = &reserveBatch{ready: make(chan struct{}), done: make(chan struct{})}
			q.next = b
		}
		b.members++
		g.mu.Unlock()

		select {
		case <-b.ready:
		case <-ctx.Done():
			m.leaveBatch(id, b)
			return AcquireOutcome{}, Acquisition{}, outOfTime(ctx.Err())
		}
		g.mu.Lock()
		writer := !b.claimed
		b.claimed = true
		g.mu.Unlock()
		if writer {
			out, a, err := write()
			b.out, b.err = out, err
			close(b.done)
			m.finishReserve(id)
			return out, a, err
		}
		select {
		case <-b.done:
		case <-ctx.Done():
			return AcquireOutcome{}, Acquisition{}, outOfTime(ctx.Err())
		}
		if b.err == nil && m.sameRefusal(b.out, owner) {
			return AcquireOutcome{Reservation: b.out.Reservation, Entry: b.out.Entry}, Acquisition{}, nil
		}
		// The shared answer is not ours to take: write (again in turn).
	}
}

// sameRefusal reports whether a reservation by owner, decided now, would
// have failed as out shows: someone else holds the key, live by the clock.
func (m *Manager) sameRefusal(out AcquireOutcome, owner string) bool {
	return out.Reservation.OwnerID != owner && out.Reservation.ExpiresAt.After(m.clock())
}

// leaveBatch takes a caller that gave up out of b; when b was ready, nobody
// had claimed its write and the caller was the last member, the key is
// free for the next caller.
func (m *Manager) leaveBatch(id ID, b *reserveBatch) {
	g := &m.reserves
	g.mu.Lock()
	defer g.mu.Unlock()
	b.members--
	if b.members == 0 && b.started && !b.claimed {
		b.claimed = true
		m.advance(id)
	}
}

// finishReserve ends the key's reservation in flight.
func (m *Manager) finishReserve(id ID) {
	g := &m.reserves
	g.mu.Lock()
	defer g.mu.Unlock()
	m.advance(id)
}

// advance lets the key's waiting batch write, or frees the key. Called with
// the group locked.
func (m *Manager) advance(id ID) {
	g := &m.reserves
	q := g.keys[id]
	b := q.next
	q.next = nil
	if b == nil || b.members == 0 {
		delete(g.keys, id)
		return
	}
	b.started = true
	close(b.ready)
}
