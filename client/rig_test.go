package client_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stampede-cache/stampede/internal/manager"
	"github.com/stampede-cache/stampede/internal/testenv"
	"github.com/stampede-cache/stampede/internal/transport"
)

// readCountingStore is the real store, counting the entry reads the
// manager sends to DynamoDB (each one GetItem) and when.
type readCountingStore struct {
	manager.Store
	mu    sync.Mutex
	reads []time.Time
}

func (s *readCountingStore) GetEntry(ctx context.Context, id manager.ID, consistent bool) (*manager.Entry, error) {
	s.mu.Lock()
	s.reads = append(s.reads, time.Now())
	s.mu.Unlock()
	return s.Store.GetEntry(ctx, id, consistent)
}

// readsBetween returns the entry reads sent in [from, to].
func (s *readCountingStore) readsBetween(from, to time.Time) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []time.Time
	for _, t := range s.reads {
		if !t.Before(from) && !t.After(to) {
			out = append(out, t)
		}
	}
	return out
}

// peakRate is the highest number of events in any window of the given
// width, per second.
func peakRate(events []time.Time, window time.Duration) float64 {
	slices.SortFunc(events, func(a, b time.Time) int { return a.Compare(b) })
	peak, j := 0, 0
	for i := range events {
		for events[i].Sub(events[j]) >= window {
			j++
		}
		peak = max(peak, i-j+1)
	}
	return float64(peak) / window.Seconds()
}

// requestCounter counts the HTTP requests a server receives, by method.
type requestCounter struct {
	next        http.Handler
	gets, total atomic.Int64
}

func (c *requestCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.total.Add(1)
	if r.Method == http.MethodGet {
		c.gets.Add(1)
	}
	c.next.ServeHTTP(w, r)
}

// measuredServer is the local API over a fresh table, with its DynamoDB
// entry reads and HTTP requests counted.
type measuredServer struct {
	url      string
	store    *readCountingStore
	requests *requestCounter
}

func newMeasuredServer(t testing.TB, cfg manager.Config) *measuredServer {
	t.Helper()
	store, _ := testenv.Store(t)
	counted := &readCountingStore{Store: store}
	mgr, err := manager.New(counted, cfg)
	if err != nil {
		t.Fatal(err)
	}
	requests := &requestCounter{next: transport.NewRouter(mgr, transport.Options{Log: slog.New(slog.DiscardHandler)})}
	srv := httptest.NewServer(requests)
	t.Cleanup(srv.Close)
	return &measuredServer{url: srv.URL, store: counted, requests: requests}
}

// countingTransport counts the requests one client sends.
type countingTransport struct {
	base http.RoundTripper
	n    atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.base.RoundTrip(r)
}

// sharedPool is an HTTP transport for many clients of one test server,
// with an idle pool large enough that they do not churn connections.
func sharedPool(t testing.TB) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 1024, 1024
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// figures reports whether the long measurements were asked for
// (STAMPEDE_CLIENT_FIGURES=1); by default tests measure briefly.
func figures() bool { return os.Getenv("STAMPEDE_CLIENT_FIGURES") == "1" }

// envList reads a comma-separated environment variable, or def.
func envList(name, def string) []string {
	v := os.Getenv(name)
	if v == "" {
		v = def
	}
	return strings.Split(v, ",")
}

// percentile returns the p-th percentile (0 < p <= 100) of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
