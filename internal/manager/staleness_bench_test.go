package manager_test

import (
	"context"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/stampede-cache/stampede/internal/manager"
	"github.com/stampede-cache/stampede/internal/testenv"
)

// BenchmarkSkewedReads measures whether the bounded-staleness read cache
// pays: reads of 1000 keys with a Zipf(1.1) popularity, one warm instance
// receiving a read every millisecond (the fake clock advances 1 ms per
// read). It reports the DynamoDB requests per read, the cache hit rate and
// the time per read against DynamoDB Local.
func BenchmarkSkewedReads(b *testing.B) {
	const keys = 1000
	store, counter := testenv.Store(b)
	clock := testenv.NewClock(epoch)
	mgr, err := manager.New(store, manager.Config{Clock: clock.Now})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for i := range keys {
		if _, err := mgr.Put(ctx, id(strconv.Itoa(i)), manager.PutRequest{OutputURI: "s3://bucket/" + strconv.Itoa(i)}); err != nil {
			b.Fatal(err)
		}
	}
	modes := []struct {
		name string
		opts manager.GetOptions
	}{
		{"strong", manager.GetOptions{}},
		{"eventual", manager.GetOptions{Eventual: true}},
		{"max_staleness=100ms", manager.GetOptions{MaxStaleness: 100 * time.Millisecond}},
		{"max_staleness=1s", manager.GetOptions{MaxStaleness: time.Second}},
	}
	for _, mode := range modes {
		b.Run(mode.name, func(b *testing.B) {
			zipf := rand.NewZipf(rand.New(rand.NewPCG(1, 2)), 1.1, 1, keys-1)
			counter.Reset()
			hits, reads := 0, 0
			b.ReportAllocs()
			for b.Loop() {
				clock.Advance(time.Millisecond)
				res, err := mgr.Get(ctx, id(strconv.FormatUint(zipf.Uint64(), 10)), mode.opts)
				if err != nil {
					b.Fatal(err)
				}
				if res.Read == manager.ReadCache {
					hits++
				}
				reads++
			}
			b.ReportMetric(float64(counter.Total())/float64(reads), "ddb-requests/op")
			b.ReportMetric(100*float64(hits)/float64(reads), "hit-%")
		})
	}
}
