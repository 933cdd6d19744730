package transport_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stampede-cache/stampede/internal/manager"
	"github.com/stampede-cache/stampede/internal/testenv"
	"github.com/stampede-cache/stampede/internal/transport"
)

// BenchmarkHotKey is issue 10's measurement: R concurrent readers of one
// key through the local server's HTTP path while a writer overwrites it
// every 200 ms. It reports GetItem requests per read (coalescing), stale
// reads (a read older than a write acknowledged before it began: must be
// 0), and read latency percentiles next to a lone strong read's, measured
// in the same run on the same DynamoDB Local.
func BenchmarkHotKey(b *testing.B) {
	for _, readers := range []int{1, 16, 64} {
		b.Run("readers="+strconv.Itoa(readers), func(b *testing.B) {
			store, counter := testenv.Store(b)
			mgr, err := manager.New(store, manager.Config{})
			if err != nil {
				b.Fatal(err)
			}
			srv := httptest.NewServer(transport.NewRouter(mgr, transport.Options{Budget: time.Minute}))
			defer srv.Close()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: readers + 4}}
			url := srv.URL + prefix + "/cache/hot"
			put := func(v int) int64 {
				req, _ := http.NewRequest(http.MethodPut, url, strings.NewReader(`{"output_uri":"s3://bucket/`+strconv.Itoa(v)+`","overwrite":true}`))
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				defer resp.Body.Close()
				var e struct{ Version int64 }
				if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || resp.StatusCode >= 300 {
					b.Fatalf("put: %d %v", resp.StatusCode, err)
				}
				return e.Version
			}
			get := func() int64 {
				resp, err := client.Get(url)
				if err != nil {
					b.Fatal(err)
				}
				defer resp.Body.Close()
				var e struct{ Version int64 }
				if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				return e.Version
			}
			var acked, writes atomic.Int64
			acked.Store(put(0))

			// A lone strong read, for the latency baseline.
			var lone []time.Duration
			for range 200 {
				start := time.Now()
				get()
				lone = append(lone, time.Since(start))
			}

			stop := make(chan struct{})
			var writer sync.WaitGroup
			writer.Add(1)
			go func() {
				defer writer.Done()
				for v := 1; ; v++ {
					select {
					case <-stop:
						return
					case <-time.After(200 * time.Millisecond):
						acked.Store(put(v))
						writes.Add(1)
					}
				}
			}()
			counter.Reset()
			writes.Store(0)
			var (
				mu        sync.Mutex
				latencies []time.Duration
				stale     atomic.Int64
				reads     atomic.Int64
			)
			b.ResetTimer()
			var wg sync.WaitGroup
			per := max(b.N/readers, 50)
			for range readers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					mine := make([]time.Duration, 0, per)
					for range per {
						floor := acked.Load()
						start := time.Now()
						if v := get(); v < floor {
							stale.Add(1)
						}
						mine = append(mine, time.Since(start))
						reads.Add(1)
					}
					mu.Lock()
					latencies = append(latencies, mine...)
					mu.Unlock()
				}()
			}
			wg.Wait()
			b.StopTimer()
			close(stop)
			writer.Wait()
			getItems := counter.Total() - writes.Load() // each put is one UpdateItem
			b.ReportMetric(float64(getItems)/float64(reads.Load()), "ddb-requests/read")
			b.ReportMetric(float64(stale.Load()), "stale-reads")
			b.ReportMetric(ms(percentile(latencies, 0.50)), "p50-ms")
			b.ReportMetric(ms(percentile(latencies, 0.99)), "p99-ms")
			b.ReportMetric(ms(percentile(lone, 0.99)), "lone-p99-ms")
			if stale.Load() != 0 {
				b.Fatalf("%d stale reads", stale.Load())
			}
		})
	}
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
