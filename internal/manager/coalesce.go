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

// keyReads is one key's read in flight and the read queued behind it.
type keyReads struct {
	inFlight bool
	next     *sharedRead
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
		kr = &keyReads{}
		g.keys[id] = kr
	}
	s := kr.next
	if s == nil {
		s = &sharedRead{done: make(chan struct{})}
	}
	s.join(ctx)
	if kr.inFlight {
		kr.next = s
	} else {
		kr.inFlight = true
		m.startRead(ctx, id, s)
	}
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

// startRead runs s. Called with the group locked; s takes no more callers.
// Its context carries no caller's cancellation (one caller giving up must
// not fail the others) but the latest of their deadlines, and it is
// cancelled when every caller has given up.
func (m *Manager) startRead(parent context.Context, id ID, s *sharedRead) {
	base := context.WithoutCancel(parent)
	var ctx context.Context
	if s.noLimit {
		ctx, s.cancel = context.WithCancel(base)
	} else {
		ctx, s.cancel = context.WithDeadline(base, s.deadline)
	}
	go func() {
		e, err := m.store.GetEntry(ctx, id, true)
		s.cancel()
		m.finishRead(id, s, e, err)
	}()
}

// finishRead publishes s's answer and starts the queued read, if any.
func (m *Manager) finishRead(id ID, s *sharedRead, e *Entry, err error) {
	g := &m.group
	g.mu.Lock()
	kr := g.keys[id]
	if next := kr.next; next != nil && next.waiters > 0 {
		kr.next = nil
		m.startRead(context.Background(), id, next)
	} else {
		if next != nil {
			close(next.done) // every caller gave up before it started
		}
		delete(g.keys, id)
	}
	g.mu.Unlock()
	s.entry, s.err = e, err
	close(s.done)
}
