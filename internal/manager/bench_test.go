package manager_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/stampede-cache/stampede/internal/manager"
	"github.com/stampede-cache/stampede/internal/testenv"
)

// Benchmarks of each operation against DynamoDB Local. They report
// DynamoDB requests per operation (always 1 by design) next to time and
// allocations; absolute times measure DynamoDB Local on this machine, not
// DynamoDB.
func BenchmarkOperations(b *testing.B) {
	store, counter := testenv.Store(b)
	mgr, err := manager.New(store, manager.Config{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	put := manager.PutRequest{
		OutputURI: "s3://bucket/outputs/run-42/model.tar.gz",
		Metadata: manager.Metadata{
			Source: &manager.Source{Project: "ml", Domain: "dev", Name: "train", Version: "v7"},
			Labels: map[string]string{"team": "vision", "gpu": "a100"},
		},
	}
	if _, err := mgr.Put(ctx, id("hot"), put); err != nil {
		b.Fatal(err)
	}
	if _, err := mgr.Reserve(ctx, id("held"), manager.ReserveRequest{OwnerID: "holder"}); err != nil {
		b.Fatal(err)
	}
	overwrite := put
	overwrite.Overwrite = true
	benches := []struct {
		name string
		op   func(i int) error
	}{
		{"get/hit", func(int) error { _, err := mgr.Get(ctx, id("hot"), manager.GetOptions{}); return err }},
		{"get/miss", func(int) error {
			_, err := mgr.Get(ctx, id("cold"), manager.GetOptions{})
			return ignore(err, manager.CodeNotFound)
		}},
		{"put/create", func(i int) error { _, err := mgr.Put(ctx, id("new-"+strconv.Itoa(i)), put); return err }},
		{"put/overwrite", func(int) error { _, err := mgr.Put(ctx, id("hot"), overwrite); return err }},
		{"put/conflict", func(int) error { _, err := mgr.Put(ctx, id("hot"), put); return ignore(err, manager.CodeAlreadyExists) }},
		{"delete", func(i int) error {
			_, err := mgr.Delete(ctx, id("new-"+strconv.Itoa(i)), manager.DeleteRequest{})
			return err
		}},
		{"reserve/acquire", func(i int) error {
			_, err := mgr.Reserve(ctx, id("r-"+strconv.Itoa(i)), manager.ReserveRequest{OwnerID: "w"})
			return err
		}},
		{"reserve/extend", func(int) error {
			_, err := mgr.Reserve(ctx, id("held"), manager.ReserveRequest{OwnerID: "holder"})
			return err
		}},
		{"reserve/contended", func(int) error {
			_, err := mgr.Reserve(ctx, id("held"), manager.ReserveRequest{OwnerID: "other"})
			return err
		}},
		{"release", func(i int) error {
			_, err := mgr.Release(ctx, id("r-"+strconv.Itoa(i)), manager.ReleaseRequest{OwnerID: "w"})
			return err
		}},
	}
	for _, bench := range benches {
		b.Run(bench.name, func(b *testing.B) {
			counter.Reset()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := bench.op(i); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(counter.Total())/float64(i), "ddb-requests/op")
		})
	}
}
