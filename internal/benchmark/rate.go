package benchmark

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stampede-cache/stampede/internal/benchmark/rawdynamo"
)

// RateOptions size section 3.
type RateOptions struct {
	// Rates lists the target request rates (gets per second).
	Rates []int
	// Duration is the measured window per rate; Warmup precedes it and is
	// not counted.
	Duration, Warmup time.Duration
	// HotKeys is how many keys the gets spread over.
	HotKeys int
	// WriteEvery is the interval of the writer's overwrites of a hot key.
	WriteEvery time.Duration
	// MaxInFlight bounds the requests outstanding at once; a request due
	// while that many are outstanding is dropped and counted.
	MaxInFlight int
}

// RateResult is one target rate.
type RateResult struct {
	Target int `json:"target"`
	// Achieved is the rate of successful answers to the requests scheduled
	// in the window: their number over the time from the window's start to
	// the last answer (at least the window). A server that keeps up
	// achieves the target; one that falls behind answers later.
	Achieved float64 `json:"achieved"`
	// Latencies run from each request's scheduled instant (open loop: a
	// late send counts against the service, not the load generator).
	Latencies Latencies `json:"latencies"`
	Scheduled int       `json:"scheduled"`
	Dropped   int       `json:"dropped"`
	Errors    int       `json:"errors"`
	Writes    int64     `json:"writes"`
	// ReadsPerSec is DynamoDB GetItem requests per second in the window:
	// below the get rate when strong reads of a key coalesce.
	ReadsPerSec float64 `json:"reads_per_sec"`
	// Saturated is true when the achieved rate fell below 95% of the
	// target or requests were dropped.
	Saturated bool `json:"saturated"`
}

// runRates measures section 3.
func (b *bench) runRates(ctx context.Context, o RateOptions) ([]RateResult, error) {
	var specs []reqSpec
	for k := range o.HotKeys {
		key := fmt.Sprintf("hot-%d", k)
		specs = append(specs, reqSpec{http.MethodPut, cachePath(key), putBody(outputURI(key), true)})
	}
	if err := b.setup(ctx, specs, http.StatusOK, http.StatusCreated); err != nil {
		return nil, err
	}
	var out []RateResult
	for _, rate := range o.Rates {
		b.logf("fixed rate: %d gets/s for %s (+%s warm-up)", rate, o.Duration, o.Warmup)
		r, err := b.fixedRate(ctx, rate, o)
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

// sample is one get of the open-loop run.
type sample struct {
	scheduled, done time.Time
	ok              bool
}

func (b *bench) fixedRate(ctx context.Context, rate int, o RateOptions) (RateResult, error) {
	res := RateResult{Target: rate}
	hc := b.loadClient(o.MaxInFlight)
	defer hc.CloseIdleConnections()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	// The writer overwrites one hot key after another.
	var writes atomic.Int64
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		t := time.NewTicker(o.WriteEvery)
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
			}
			key := fmt.Sprintf("hot-%d", i%o.HotKeys)
			resp, err := hc.Do(reqSpec{http.MethodPut, cachePath(key), putBody(outputURI(key), true)}.request(runCtx, b.svc.URL))
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				writes.Add(1)
			}
		}
	}()

	interval := time.Second / time.Duration(rate)
	total := int((o.Warmup + o.Duration) / interval)
	samples := make([]sample, total)
	var (
		inFlight atomic.Int64
		wg       sync.WaitGroup
		dropped  int
	)
	start := time.Now().Add(10 * time.Millisecond)
	windowStart := start.Add(o.Warmup)
	windowEnd := windowStart.Add(o.Duration)
	var readsAtWindow rawdynamo.Counts
	readsTaken := false
	for i := 0; i < total; {
		now := time.Now()
		if !readsTaken && !now.Before(windowStart) {
			readsAtWindow, readsTaken = b.svc.serverDB.Snapshot(), true
		}
		// Fire every request that is due, each at its own scheduled instant.
		for ; i < total; i++ {
			at := start.Add(time.Duration(i) * interval)
			if at.After(now) {
				break
			}
			samples[i].scheduled = at
			if inFlight.Load() >= int64(o.MaxInFlight) {
				if !at.Before(windowStart) {
					dropped++
				}
				continue
			}
			inFlight.Add(1)
			wg.Add(1)
			key := fmt.Sprintf("hot-%d", rand.IntN(o.HotKeys))
			go func(s *sample) {
				defer wg.Done()
				defer inFlight.Add(-1)
				resp, err := hc.Do(reqSpec{http.MethodGet, cachePath(key), nil}.request(runCtx, b.svc.URL))
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					s.ok = resp.StatusCode == http.StatusOK
				}
				s.done = time.Now()
			}(&samples[i])
		}
		if i < total {
			next := start.Add(time.Duration(i) * interval)
			select {
			case <-ctx.Done():
				return res, ctx.Err()
			case <-time.After(time.Until(next)):
			}
		}
	}
	// Wait for the window to close, then for the stragglers (bounded).
	time.Sleep(time.Until(windowEnd))
	readsAfter := b.svc.serverDB.Snapshot()
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(30 * time.Second):
		cancel()
		<-waited
	}
	cancel()
	<-writerDone
	res.Writes = writes.Load()

	var lat []time.Duration
	last := windowStart
	answered := 0
	for _, s := range samples {
		if s.scheduled.Before(windowStart) || s.done.IsZero() {
			continue // warm-up, or dropped
		}
		res.Scheduled++
		if !s.ok {
			res.Errors++
			continue
		}
		answered++
		lat = append(lat, s.done.Sub(s.scheduled))
		if s.done.After(last) {
			last = s.done
		}
	}
	res.Scheduled += dropped
	res.Dropped = dropped
	res.Latencies = summarize(lat)
	res.Achieved = float64(answered) / max(last.Sub(windowStart), o.Duration).Seconds()
	res.ReadsPerSec = float64(readsAfter.Sub(readsAtWindow).GetItem) / o.Duration.Seconds()
	res.Saturated = res.Achieved < 0.95*float64(rate) || dropped > 0
	return res, nil
}
