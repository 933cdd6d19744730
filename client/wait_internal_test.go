package client

import (
	"math/rand/v2"
	"testing"
	"time"
)

// simulateWait replays the policy for a waiter that first saw the holder
// when its computation started and whose result appears after took: the
// number of looks until one finds it, and how late that look is.
func simulateWait(p pollPolicy, took time.Duration, random func() float64) (looks int, late time.Duration) {
	var waited time.Duration
	for looks < 10000 {
		waited += p.delay(looks, waited, random)
		looks++
		if waited >= took {
			return looks, waited - took
		}
	}
	return looks, -1
}

// waitFigures is the worst case of simulateWait over many random waiters.
func waitFigures(p pollPolicy, took time.Duration, waiters int) (maxLooks int, maxLate time.Duration, meanLooks float64) {
	rng := rand.New(rand.NewPCG(1, uint64(took)))
	total := 0
	for range waiters {
		looks, late := simulateWait(p, took, rng.Float64)
		total += looks
		maxLooks, maxLate = max(maxLooks, looks), max(maxLate, late)
	}
	return maxLooks, maxLate, float64(total) / float64(waiters)
}

// TestPollPolicyBounds: every wait is positive and at most the ceiling
// (plus jitter); the first looks of a herd are spread over the first gap.
func TestPollPolicyBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for _, p := range []pollPolicy{
		newPollPolicy(0, 10*time.Second, 0),
		newPollPolicy(0, time.Second, 0),
		newPollPolicy(0, 0, 0),
		newPollPolicy(0, 10*time.Second, 500*time.Millisecond),
		newPollPolicy(0, 10*time.Second, time.Minute),
		newPollPolicy(0, time.Hour, 2*time.Hour),
	} {
		if p.ceiling < MinPollInterval || p.ceiling > MaxPollInterval {
			t.Fatalf("ceiling %s outside [%s, %s]", p.ceiling, MinPollInterval, MaxPollInterval)
		}
		var waited time.Duration
		for n := range 500 {
			d := p.delay(n, waited, rng.Float64)
			if d <= 0 || float64(d) > float64(p.ceiling)*(1+pollJitter) {
				t.Fatalf("%+v: wait %d after %s = %s", p, n, waited, d)
			}
			if n == 0 && p.expected == 0 && d > firstPollGap {
				t.Fatalf("%+v: first wait %s", p, d)
			}
			waited += d
		}
	}
	fixed := newPollPolicy(2*time.Second, 10*time.Second, time.Minute)
	for n := range 100 {
		if d := fixed.delay(n, time.Duration(n)*time.Second, rng.Float64); d < 1600*time.Millisecond || d > 2400*time.Millisecond {
			t.Fatalf("fixed interval: wait %s", d)
		}
	}
}

// TestPollPolicyFigures checks what the policy promises a waiter that saw
// the holder start (2,000 simulated waiters, 10 s heartbeats): looks (each
// one GET) and lateness, without a hint and with an exact one. Together
// with the initial get and reserve (2 requests) and the reserves at the
// holder's expiry (one per 20-30 s), these are the hand-off figures polling
// can reach; docs/client.md has them.
func TestPollPolicyFigures(t *testing.T) {
	for _, tc := range []struct {
		took, hint time.Duration
		// Bounds on the worst waiter.
		looks int
		late  time.Duration
	}{
		{took: 500 * time.Millisecond, looks: 4, late: 250 * time.Millisecond},
		{took: 2 * time.Second, looks: 8, late: time.Second},
		{took: 5 * time.Second, looks: 11, late: 2500 * time.Millisecond},
		{took: time.Minute, looks: 20, late: 11 * time.Second},
		{took: 500 * time.Millisecond, hint: 500 * time.Millisecond, looks: 4, late: 250 * time.Millisecond},
		{took: 5 * time.Second, hint: 5 * time.Second, looks: 4, late: 250 * time.Millisecond},
		{took: time.Minute, hint: time.Minute, looks: 10, late: 1400 * time.Millisecond},
		// The computation (or its store) takes longer than the hint says.
		{took: 7 * time.Second, hint: 5 * time.Second, looks: 11, late: 900 * time.Millisecond},
		{took: 90 * time.Second, hint: time.Minute, looks: 19, late: 11 * time.Second},
	} {
		p := newPollPolicy(0, 10*time.Second, tc.hint)
		looks, late, mean := waitFigures(p, tc.took, 2000)
		t.Logf("computation %-6s hint %-6s: looks max %2d (mean %4.1f), lateness max %s", tc.took, tc.hint, looks, mean, late.Round(time.Millisecond))
		if looks > tc.looks || late > tc.late {
			t.Errorf("computation %s, hint %s: %d looks, %s late; want at most %d and %s", tc.took, tc.hint, looks, late, tc.looks, tc.late)
		}
	}
}
