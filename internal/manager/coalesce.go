package manager

import (
	"context"
	"sync"
	"time"
)

// Coalesced strong reads, after Netflix's Titus gateway: a read that
// arrives while a strong read of the same key is in flight must not take
// that read's answer (it may have been decided before the read arrived,
// and so miss a write acknowledged in between); it waits for the next read,
// which starts after it arrived, and every read waiting for that one shares
// it. Per key there is at most one read in flight and one queued, so a hot
// key costs at most one GetItem per DynamoDB round trip however many
// callers read it, and every read still sees every write that finished
// before it began.

// readGroup coalesces the strong reads of one Manager.
type readGroup struct {
	mu   sync.Mutex
	keys map[ID]*keyReads
}

// keyReads is one key's read queued behind the one in flight; a key is in
// the group's map exactly while a read of it is in flight.
type keyReads struct {
	next *sharedRead
}

// sharedRead is one GetItem shared by every read that joined it before it
// started.
type sharedRead struct {
	done  chan struct{}
	entry *Entry
	err   error

	// Guarded by readGroup.mu until the read starts.
	waiters  int
	deadline time.Time
	noLimit  bool
	cancel   context.CancelFunc
}

// join adds a caller with ctx's deadline.
func (s *sharedRead) join(ctx context.Context) {
	s.waiters++
	if d, ok := ctx.Deadline(); !ok {
		s.noLimit = true
	} else if d.After(s.deadline) {
		s.deadline = d
	}
}

// strongRead returns the key's entry from a strongly consistent read that
// started after the call began, shared with concurrent callers.
func (m *Manager) strongRead(ctx context.Context, id ID) (*Entry, error) {
	g := &m.group
	g.mu.Lock()
	if g.keys == nil {
		g.keys = make(map[ID]*keyReads)
	}
	kr := g.keys[id]
	if kr == nil {
		// No read of the key in flight: the caller reads in its own
		// goroutine, on its own context. Nobody can share this read (later
		// callers queue for the next), so the common case, a key nobody
		// else is reading, costs no goroutine and no channel.
		g.keys[id] = &keyReads{}
		g.mu.Unlock()
		e, err := m.store.GetEntry(ctx, id, true)
		m.finishRead(id)
		if err != nil && ctx.Err() != nil {
			return nil, outOfTime(ctx.Err())
		}
		return e, err
	}
	s := kr.next
	if s == nil {
		s = &sharedRead{done: make(chan struct{})}
		kr.next = s
	}
	s.join(ctx)
	g.mu.Unlock()

	select {
	case <-s.done:
		return s.entry, s.err
	case <-ctx.Done():
		g.mu.Lock()
		s.waiters--
		if s.waiters == 0 && s.cancel != nil {
			s.cancel()
		}
		g.mu.Unlock()
		return nil, outOfTime(ctx.Err())
	}
}

// outOfTime is the error of a request whose time budget ran out (or whose
// caller went away) while it waited.
func outOfTime(err error) error {
	return &Error{Code: CodeUnavailable, Message: "the request ran out of time; retry", Err: err}
}

// startRead runs s, the read queued behind the one that just finished.
// Called with the group locked; s takes no more callers. Its context
// carries no caller's cancellation (one caller giving up must not fail the
// others) but the latest of their deadlines, and it is cancelled when every
// caller has given up.
func (m *Manager) startRead(id ID, s *sharedRead) {
	var ctx context.Context
	if s.noLimit {
		ctx, s.cancel = context.WithCancel(context.Background())
	} else {
		ctx, s.cancel = context.WithDeadline(context.Background(), s.deadline)
	}
	go func() {
		e, err := m.store.GetEntry(ctx, id, true)
		s.cancel()
		m.finishRead(id)
		s.entry, s.err = e, err
		close(s.done)
	}()
}

// finishRead ends the key's read in flight and starts the queued read, if
// anyone still waits for it.
func (m *Manager) finishRead(id ID) {
	g := &m.group
	g.mu.Lock()
	defer g.mu.Unlock()
	kr := g.keys[id]
	next := kr.next
	kr.next = nil
	switch {
	case next != nil && next.waiters > 0:
		m.startRead(id, next)
	case next != nil:
		close(next.done) // every caller gave up before it started
		delete(g.keys, id)
	default:
		delete(g.keys, id)
	}
}
