package client

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"
)

// readCoalescer shares strong reads of a key among the goroutines of one
// client, keeping each read linearizable (the Titus gateway's rule): a read
// never takes the answer of a request that was already in flight when it
// arrived, because that request may have read the key before a write that
// finished before this read began. It waits for the next request, which
// starts after it arrived; every read waiting for that one shares it. Per
// key there is at most one request in flight and one queued.
type readCoalescer struct {
	mu   sync.Mutex
	keys map[string]*keyReads
}

// keyReads are a key's shared reads.
type keyReads struct {
	// inflight was sent; only the reads that joined before it started take
	// its answer.
	inflight *readFlight
	// queued starts when inflight ends; reads arriving meanwhile join it.
	queued *readFlight
}

// readFlight is one request shared by the reads that joined it.
type readFlight struct {
	// done is closed when entry and err are set.
	done  chan struct{}
	entry *Entry
	err   error

	// Guarded by readCoalescer.mu.
	waiters int
	// deadline is the latest of the waiters' deadlines: the request lives
	// as long as someone may still want its answer.
	deadline time.Time
	// values is the context of the first waiter, for its values only.
	values  context.Context
	started bool
	cancel  context.CancelFunc
}

func newReadCoalescer() *readCoalescer {
	return &readCoalescer{keys: map[string]*keyReads{}}
}

// fetchFunc performs one strong read of a key.
type fetchFunc func(ctx context.Context) (*Entry, error)

// read returns the answer of a strong read of path that started after this
// call began, shared with the concurrent reads of path. ctx must have a
// deadline. A caller that gives up returns at once; the shared request is
// cancelled only when every read waiting for it gave up.
func (rc *readCoalescer) read(ctx context.Context, path string, fetch fetchFunc) (*Entry, error) {
	deadline, _ := ctx.Deadline()
	rc.mu.Lock()
	k := rc.keys[path]
	if k == nil {
		k = &keyReads{}
		rc.keys[path] = k
	}
	var f *readFlight
	if k.inflight == nil {
		f = &readFlight{done: make(chan struct{}), values: ctx}
		k.inflight = f
		f.join(deadline)
		rc.start(path, k, f, fetch)
	} else {
		if k.queued == nil {
			k.queued = &readFlight{done: make(chan struct{}), values: ctx}
		}
		f = k.queued
		f.join(deadline)
	}
	rc.mu.Unlock()

	select {
	case <-f.done:
		return cloneEntry(f.entry), f.err
	case <-ctx.Done():
	}
	rc.mu.Lock()
	f.waiters--
	if f.waiters == 0 {
		if f.started {
			f.cancel()
		} else if k.queued == f {
			// Nobody wants it any more: never send it.
			k.queued = nil
		}
	}
	rc.mu.Unlock()
	return nil, fmt.Errorf("stampede: read %s: %w", path, context.Cause(ctx))
}

func (f *readFlight) join(deadline time.Time) {
	f.waiters++
	if deadline.After(f.deadline) {
		f.deadline = deadline
	}
}

// start sends f. Called with rc.mu held.
func (rc *readCoalescer) start(path string, k *keyReads, f *readFlight, fetch fetchFunc) {
	// The request belongs to no single waiter: it ends when the last one
	// may still want it, or when all gave up.
	ctx, cancel := context.WithDeadline(context.WithoutCancel(f.values), f.deadline)
	f.started, f.cancel, f.values = true, cancel, nil
	go func() {
		defer cancel()
		entry, err := fetch(ctx)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		f.entry, f.err = entry, err
		close(f.done)
		k.inflight = nil
		if q := k.queued; q != nil {
			// Every read queued arrived while f was in flight: the next
			// request starts now, after all of them.
			k.queued = nil
			k.inflight = q
			rc.start(path, k, q, fetch)
			return
		}
		delete(rc.keys, path)
	}()
}

// cloneEntry copies e, so that waiters sharing an answer cannot see each
// other's changes to it.
func cloneEntry(e *Entry) *Entry {
	if e == nil {
		return nil
	}
	c := *e
	if e.Metadata.Source != nil {
		s := *e.Metadata.Source
		c.Metadata.Source = &s
	}
	c.Metadata.Labels = maps.Clone(e.Metadata.Labels)
	return &c
}
