package client

import (
	"fmt"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// The adaptive waiting policy (see docs/client.md, Waiting). A waiter's
// lateness (from the result's arrival to its next look) is bounded by the
// gap between looks; requests by the number of looks. Gaps that grow in
// proportion to the time already waited keep lateness a fixed fraction of
// the computation's duration while the number of looks grows only with its
// logarithm.
const (
	// firstPollGap is the gap between looks early on, and the window over
	// which a herd's first looks are spread (full jitter).
	firstPollGap = 200 * time.Millisecond
	// pollGrowth is the gap as a fraction of the time waited so far.
	pollGrowth = 0.4
	// pollJitter spreads each later gap by ±10%, so a herd that looked at
	// the same moment once does not stay in step.
	pollJitter = 0.1
	// hintBandFraction and hintBandLooks shape the looks around an
	// expected completion: from about one band before it, every band, for
	// hintBandLooks looks; a band is this fraction of the expected
	// duration (at least firstPollGap, at most the ceiling).
	hintBandFraction = 0.02
	hintBandLooks    = 4
)

// pollPolicy decides when a waiter looks for the holder's result next.
type pollPolicy struct {
	// fixed is WithPollInterval's interval; zero means adaptive.
	fixed time.Duration
	// ceiling is the largest gap: the holder's heartbeat interval, within
	// [MinPollInterval, MaxPollInterval].
	ceiling time.Duration
	// expected is how long the computation is expected to take from when
	// the waiter first saw the holder; zero when unknown.
	expected time.Duration
}

func newPollPolicy(fixed, heartbeat, expected time.Duration) pollPolicy {
	return pollPolicy{
		fixed:    fixed,
		ceiling:  min(max(heartbeat, MinPollInterval), MaxPollInterval),
		expected: expected,
	}
}

// delay returns the wait before the next look, the n-th (from 0), when the
// holder was first seen waited ago. random returns numbers in [0, 1).
func (p pollPolicy) delay(n int, waited time.Duration, random func() float64) time.Duration {
	jitter := func(d time.Duration, spread float64) time.Duration {
		return time.Duration(float64(d) * (1 - spread + 2*spread*random()))
	}
	if p.fixed > 0 {
		return jitter(p.fixed, 0.2)
	}
	if p.expected > 0 {
		band := min(max(time.Duration(float64(p.expected)*hintBandFraction), firstPollGap), p.ceiling)
		// The looks around the expected end start one band before it.
		start := p.expected - 2*band
		switch {
		case waited < start:
			// Nothing is due before: sleep towards the band in steps of at
			// most the ceiling, and arrive spread over its first band.
			until := start - waited
			if until > p.ceiling {
				return jitter(p.ceiling, pollJitter)
			}
			return until + time.Duration(random()*float64(band))
		case waited < start+(hintBandLooks+1)*band:
			return jitter(band, pollJitter)
		}
		// Later than expected: gaps grow again, from a band, with the
		// time waited past the expected end.
		over := waited - p.expected
		return jitter(min(max(time.Duration(float64(over)*pollGrowth), band), p.ceiling), pollJitter)
	}
	if n == 0 {
		// Full jitter: a herd that saw the holder together spreads its
		// first looks over the first gap.
		return max(time.Duration(random()*float64(firstPollGap)), time.Millisecond)
	}
	gap := min(max(time.Duration(float64(waited)*pollGrowth), firstPollGap), p.ceiling)
	return jitter(gap, pollJitter)
}

// localCalls are the GetOrCompute calls of a client that talk to the
// service about a key: one per key at a time, the leader. Other calls of
// the same client for the key follow it: they send nothing while it works
// (it reserves, waits and polls, or computes, for all of them) and, once
// it returns, look at the cache (one coalesced read between them) and
// return the result, or one of them leads in turn: in-process hand-off.
type localCalls struct {
	mu sync.Mutex
	m  map[string]*localCall
}

// localCall is a leading GetOrCompute call.
type localCall struct {
	// done is closed when the call returns, whatever it returns.
	done chan struct{}

	mu sync.Mutex
	// holder is the reservation the call holds or waits for, and since
	// when it has seen it; nil before the call's first reserve.
	holder *Reservation
	since  time.Time
	// changed is closed and replaced when holder changes.
	changed chan struct{}
}

func newLocalCalls() *localCalls {
	return &localCalls{m: map[string]*localCall{}}
}

// lead returns the call leading path, registering a new one, led by the
// caller, when there is none (leader is then true). The leader must call
// finish.
func (l *localCalls) lead(path string) (call *localCall, leader bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if call := l.m[path]; call != nil {
		return call, false
	}
	call = &localCall{done: make(chan struct{}), changed: make(chan struct{})}
	l.m[path] = call
	return call, true
}

// finish ends the leader's call and wakes its followers.
func (l *localCalls) finish(path string, call *localCall) {
	l.mu.Lock()
	if l.m[path] == call {
		delete(l.m, path)
	}
	l.mu.Unlock()
	close(call.done)
}

// setHolder records the reservation the leader holds or waits for.
func (c *localCall) setHolder(r Reservation, since time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h := c.holder; h != nil && h.OwnerID == r.OwnerID && h.Fence == r.Fence && h.ExpiresAt.Equal(r.ExpiresAt) {
		return
	}
	c.holder, c.since = &r, since
	close(c.changed)
	c.changed = make(chan struct{})
}

// current returns a copy of the holder (nil when not known yet), since
// when it is held, and a channel closed when that changes.
func (c *localCall) current() (*Reservation, time.Time, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.holder == nil {
		return nil, c.since, c.changed
	}
	r := *c.holder
	return &r, c.since, c.changed
}

// durations remembers how long each key's last computation took (bounded,
// least recently used first out): the expected duration of the next one.
type durations struct {
	last *lru.Cache[string, time.Duration]
}

func newDurations(size int) (*durations, error) {
	last, err := lru.New[string, time.Duration](size)
	if err != nil {
		return nil, fmt.Errorf("durations: %w", err)
	}
	return &durations{last: last}, nil
}

func (d *durations) record(path string, took time.Duration) { d.last.Add(path, took) }

func (d *durations) expected(path string) time.Duration {
	took, _ := d.last.Get(path)
	return took
}
