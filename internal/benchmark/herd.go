package benchmark

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stampede-cache/stampede/client"
)

// HerdOptions size section 2.
type HerdOptions struct {
	// Sizes lists the herd sizes N (concurrent callers on one key).
	Sizes []int
	// Computations lists how long the computation takes.
	Computations []time.Duration
	// Extra lists further herds, e.g. one long computation at one size.
	Extra []HerdCell
	// LongPolling runs every herd twice, both with the client's defaults:
	// against the server as it is (it says its waits are shared, so the
	// waiters long-poll) and with that header hidden from the clients (they
	// poll, as behind Lambda). Without it, only the second.
	LongPolling bool
	// Timeout bounds each caller beyond the computation.
	Timeout time.Duration
}

// HerdCell is one herd size with one computation length.
type HerdCell struct {
	N       int
	Compute time.Duration
}

// HerdResult is one herd: N callers of client.GetOrCompute on one fresh
// key, all started at once, the computation taking Compute.
type HerdResult struct {
	// LongPolling is true for callers that saw the server's
	// Stampede-Waits: shared and so long-polled (or, in results from
	// before that header, had client.WithLongPolling); false for callers
	// that polled.
	LongPolling bool          `json:"long_polling,omitempty"`
	N           int           `json:"n"`
	Compute     time.Duration `json:"compute_ns"`
	// Last is from the start to the last caller's result; Median to the
	// median caller's.
	Last   time.Duration `json:"last_ns"`
	Median time.Duration `json:"median_ns"`
	// HandOff is from the end of the computation (compute returned) to the
	// last caller's result.
	HandOff      time.Duration `json:"hand_off_ns"`
	Computations int64         `json:"computations"`
	// RequestsPerWaiter is the mean number of HTTP requests (attempts) of
	// the callers that did not compute; MaxRequests the most any sent.
	RequestsPerWaiter float64 `json:"requests_per_waiter"`
	MaxRequests       int64   `json:"max_requests"`
	// HotKeyReads counts the server's GetItem requests during the herd,
	// all on its key (nothing else runs then); ReadsPerSec is
	// their mean rate over Last (at least a second) and PeakReadsPerSec the
	// most in one second.
	HotKeyReads     int     `json:"hot_key_reads"`
	ReadsPerSec     float64 `json:"reads_per_sec"`
	PeakReadsPerSec int     `json:"peak_reads_per_sec"`
	// DynamoDBRequests counts every DynamoDB request the server sent.
	DynamoDBRequests int64  `json:"dynamodb_requests"`
	Errors           int    `json:"errors"`
	FirstError       string `json:"first_error,omitempty"`
}

// runHerds measures section 2.
func (b *bench) runHerds(ctx context.Context, o HerdOptions) ([]HerdResult, error) {
	var cells []HerdCell
	for _, d := range o.Computations {
		for _, n := range o.Sizes {
			cells = append(cells, HerdCell{n, d})
		}
	}
	// An untimed small herd first: the first requests of a fresh DynamoDB
	// Local are slow, and the first herd would pay for them.
	if _, err := b.herd(ctx, 4, 50*time.Millisecond, o.Timeout, false); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	modes := []bool{false}
	if o.LongPolling {
		modes = append(modes, true)
	}
	var out []HerdResult
	for _, long := range modes {
		for _, c := range append(cells, o.Extra...) {
			b.logf("herd: N=%d, computation %s, client %s", c.N, c.Compute, clientMode(long))
			r, err := b.herd(ctx, c.N, c.Compute, o.Timeout, long)
			if err != nil {
				return out, err
			}
			out = append(out, r)
		}
	}
	return out, nil
}

func (b *bench) herd(ctx context.Context, n int, compute, timeout time.Duration, longPolling bool) (HerdResult, error) {
	res := HerdResult{N: n, Compute: compute, LongPolling: longPolling}
	b.run++
	key := fmt.Sprintf("herd-%d-%d-%d", n, compute.Milliseconds(), b.run)
	// One connection pool, as callers in one process share; each caller
	// counts its own requests.
	shared := http.DefaultTransport.(*http.Transport).Clone()
	shared.MaxIdleConnsPerHost = n
	shared.MaxIdleConns = 2 * n
	defer shared.CloseIdleConnections()

	requests := make([]atomic.Int64, n)
	clients := make([]*client.Client, n)
	for i := range n {
		hc := &http.Client{
			Transport:     countingTransport{next: shared, n: &requests[i], hideWaits: !longPolling},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
		c, err := client.New(b.svc.URL, client.WithHTTPClient(hc), client.WithoutSigV4())
		if err != nil {
			return res, err
		}
		clients[i] = c
	}

	var (
		computations atomic.Int64
		computeEnd   atomic.Int64 // unix nanoseconds
		mu           sync.Mutex
		finish       []time.Duration
		computed     = make([]atomic.Bool, n)
		wg           sync.WaitGroup
	)
	scope := client.Scope{Project: benchProject, Domain: benchDomain}
	start := make(chan struct{})
	runCtx, cancel := context.WithTimeout(ctx, compute+timeout)
	defer cancel()
	before := b.svc.serverDB.Snapshot()
	b.svc.serverDB.RecordReads()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			t0 := time.Now()
			_, err := clients[i].GetOrCompute(runCtx, scope, key, func(cctx context.Context) (client.ComputeResult, error) {
				computations.Add(1)
				computed[i].Store(true)
				select {
				case <-time.After(compute):
				case <-cctx.Done():
					return client.ComputeResult{}, context.Cause(cctx)
				}
				computeEnd.Store(time.Now().UnixNano())
				return client.ComputeResult{OutputURI: outputURI(key)}, nil
			})
			took := time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.Errors++
				if res.FirstError == "" {
					res.FirstError = err.Error()
				}
				return
			}
			finish = append(finish, took)
		}()
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	reads := b.svc.serverDB.RecordedReads()
	res.DynamoDBRequests = b.svc.serverDB.Snapshot().Sub(before).Total()
	res.Computations = computations.Load()
	if len(finish) > 0 {
		res.Last = maxDuration(finish)
		res.Median = median(finish)
	}
	if end := computeEnd.Load(); end > 0 {
		res.HandOff = t0.Add(res.Last).Sub(time.Unix(0, end))
	}
	waiters, sum := 0, int64(0)
	for i := range n {
		r := requests[i].Load()
		if computed[i].Load() {
			continue
		}
		waiters++
		sum += r
		res.MaxRequests = max(res.MaxRequests, r)
	}
	res.RequestsPerWaiter = ratio(float64(sum), float64(waiters))
	res.HotKeyReads = len(reads)
	// Over at least a second, so that a short herd's few reads are not
	// read as a rate no second saw.
	res.ReadsPerSec = ratio(float64(len(reads)), max(res.Last, time.Second).Seconds())
	res.PeakReadsPerSec = peakPerSecond(reads)
	return res, ctx.Err()
}

func maxDuration(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

// countingTransport counts the HTTP requests sent through it.
type countingTransport struct {
	next http.RoundTripper
	n    *atomic.Int64
	// hideWaits drops the server's Stampede-Waits header from its answers,
	// as a Lambda function's answers lack it: the client then polls.
	hideWaits bool
}

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n.Add(1)
	resp, err := t.next.RoundTrip(r)
	if err == nil && t.hideWaits {
		resp.Header.Del(client.WaitsHeader)
	}
	return resp, err
}

// clientMode names the waiters' configuration.
func clientMode(longPolling bool) string {
	if longPolling {
		return "defaults, serve (long polling)"
	}
	return "defaults, no shared waits (polling)"
}
