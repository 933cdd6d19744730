package client_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/stampede-cache/stampede/client"
	"github.com/stampede-cache/stampede/internal/manager"
)

// registerInput is an operation on a key: a get, a put of value, or a
// delete.
type registerInput struct {
	key   string
	op    string
	value string
}

// registerModel is the keys of docs/api.md reduced to what reads can tell
// apart: the output URI of the live entry, "" when there is none. Puts
// overwrite, deletes remove, gets answer the current value. Keys are
// independent, so each is checked on its own.
func registerModel() porcupine.Model {
	return porcupine.Model{
		Partition: func(ops []porcupine.Operation) [][]porcupine.Operation {
			byKey := map[string][]porcupine.Operation{}
			var keys []string
			for _, op := range ops {
				k := op.Input.(registerInput).key
				if _, ok := byKey[k]; !ok {
					keys = append(keys, k)
				}
				byKey[k] = append(byKey[k], op)
			}
			out := make([][]porcupine.Operation, 0, len(keys))
			for _, k := range keys {
				out = append(out, byKey[k])
			}
			return out
		},
		Init: func() any { return "" },
		Step: func(state, input, output any) (bool, any) {
			in := input.(registerInput)
			switch in.op {
			case "put":
				return true, in.value
			case "delete":
				return true, ""
			}
			return output.(string) == state.(string), state
		},
		DescribeOperation: func(input, output any) string {
			in := input.(registerInput)
			switch in.op {
			case "put":
				return "put(" + in.value + ")"
			case "delete":
				return "delete()"
			}
			return fmt.Sprintf("get() → %q", output)
		},
		DescribeState: func(state any) string { return fmt.Sprintf("%q", state) },
	}
}

// history records operations with their call and return instants.
type history struct {
	t0  time.Time
	mu  sync.Mutex
	ops []porcupine.Operation
}

func (h *history) now() int64 { return int64(time.Since(h.t0)) }

func (h *history) add(clientID int, in registerInput, out string, call, ret int64) {
	h.mu.Lock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: clientID, Input: in, Output: out, Call: call, Return: ret})
	h.mu.Unlock()
}

// checkLinearizable fails t, writing porcupine's visualization, when ops
// are not linearizable.
func checkLinearizable(t *testing.T, ops []porcupine.Operation) {
	t.Helper()
	res, info := porcupine.CheckOperationsVerbose(registerModel(), ops, time.Minute)
	if res == porcupine.Ok {
		return
	}

	path := filepath.Join(os.TempDir(), fmt.Sprintf("stampede-client-linearizability-%d.html", time.Now().UnixNano()))
	if err := porcupine.VisualizePath(registerModel(), info, path); err != nil {
		t.Logf("visualization: %v", err)
	}
	t.Fatalf("history of %d operations: %s; visualization in %s", len(ops), res, path)
}

// TestModelRejectsStaleRead: the checker catches the anomaly coalescing
// must avoid, a read that begins after a write was acknowledged and still
// answers the value before it (what joining an in-flight read would do).
func TestModelRejectsStaleRead(t *testing.T) {
	ops := []porcupine.Operation{
		{ClientId: 0, Input: registerInput{key: "k", op: "put", value: "a"}, Call: 0, Output: "", Return: 10},
		{ClientId: 1, Input: registerInput{key: "k", op: "get"}, Call: 15, Output: "a", Return: 60},
		{ClientId: 0, Input: registerInput{key: "k", op: "put", value: "b"}, Call: 20, Output: "", Return: 30},
		// Began after put(b) returned, answered with the read in flight.
		{ClientId: 2, Input: registerInput{key: "k", op: "get"}, Call: 40, Output: "a", Return: 60},
	}
	if porcupine.CheckOperations(registerModel(), ops) {
		t.Fatal("a stale read passed the check")
	}
	ops[3].Output = "b"
	if !porcupine.CheckOperations(registerModel(), ops) {
		t.Fatal("a linearizable history failed the check")
	}
}

// TestCoalescedReadsAreLinearizable: many goroutines read one hot key
// through one client (their reads coalesce) while writers overwrite and
// delete it, through the same client and another one; the history,
// checked by porcupine against the register model, is linearizable.
func TestCoalescedReadsAreLinearizable(t *testing.T) {
	t.Parallel()
	srv := newMeasuredServer(t, manager.Config{})
	shared := newClient(t, srv.url)
	other := newClient(t, srv.url, client.WithoutReadCoalescing())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Rounds on fresh keys keep each key's history small enough for the
	// checker; every round is a hot key with concurrent writers. The
	// checker's search grows exponentially with the number of concurrent
	// reads that answer alike (it tries subsets of them), which coalesced
	// reads are: 8 readers per key keep it to milliseconds even on a loaded
	// machine (12 once took a minute there, 24 took minutes).
	// TestHotKeyReadCost checks 64 readers for stale reads.
	const (
		rounds        = 12
		readers       = 8
		readsEach     = 20
		writers       = 3
		writesEach    = 8
		deleteEachNth = 5
	)
	h := &history{t0: time.Now()}
	for round := range rounds {
		key := fmt.Sprintf("hot/%d", round)
		var wg sync.WaitGroup
		errs := make(chan error, readers+writers)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := shared
				if w == 0 {
					c = other
				}
				for i := range writesEach {
					call := h.now()
					if i%deleteEachNth == deleteEachNth-1 {
						if _, err := c.Delete(ctx, scope, key, nil); err != nil {
							errs <- fmt.Errorf("writer %d: delete: %w", w, err)
							return
						}
						h.add(readers+w, registerInput{key: key, op: "delete"}, "", call, h.now())
					} else {
						value := fmt.Sprintf("s3://bucket/%d-w%d-%d", round, w, i)
						if _, err := c.Put(ctx, scope, key, client.PutRequest{OutputURI: value, Overwrite: true}); err != nil {
							errs <- fmt.Errorf("writer %d: put: %w", w, err)
							return
						}
						h.add(readers+w, registerInput{key: key, op: "put", value: value}, "", call, h.now())
					}
					time.Sleep(time.Duration(w+1) * 3 * time.Millisecond)
				}
			}()
		}
		for r := range readers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range readsEach {
					call := h.now()
					e, err := shared.Get(ctx, scope, key, nil)
					ret := h.now()
					value := ""
					switch {
					case errors.Is(err, client.ErrNotFound):
					case err != nil:
						errs <- fmt.Errorf("reader %d: %w", r, err)
						return
					default:
						value = e.OutputURI
					}
					h.add(r, registerInput{key: key, op: "get"}, value, call, ret)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	reads := srv.store.readsBetween(h.t0, time.Now())
	t.Logf("%d operations on %d hot keys (%d reads by %d goroutines, %d writes); %d GetItem for the reads: %.3f per read",
		len(h.ops), rounds, rounds*readers*readsEach, readers, rounds*writers*writesEach, len(reads), float64(len(reads))/float64(rounds*readers*readsEach))
	checkLinearizable(t, h.ops)
}

// TestHotKeyReadCost measures what a hot key costs: 64 goroutines of one
// program reading one key as fast as they can while a writer overwrites it
// every 200 ms, with coalescing off (every read one GetItem) and on. It
// checks that no read is stale (every read answers at least the version
// acknowledged to the writer before the read began) and logs GetItem per
// read and latencies; set STAMPEDE_CLIENT_FIGURES=1 for longer runs.
func TestHotKeyReadCost(t *testing.T) {
	const readers = 64
	run := 1500 * time.Millisecond
	if figures() {
		run = 5 * time.Second
	}
	srv := newMeasuredServer(t, manager.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// A single strong read's latency, alone, is the yardstick.
	base := newClient(t, srv.url)
	if _, err := base.Put(ctx, scope, "single", client.PutRequest{OutputURI: "s3://bucket/single"}); err != nil {
		t.Fatal(err)
	}
	var single []time.Duration
	for range 200 {
		start := time.Now()
		if _, err := base.Get(ctx, scope, "single", nil); err != nil {
			t.Fatal(err)
		}
		single = append(single, time.Since(start))
	}
	slices.Sort(single)
	t.Logf("one strong read alone: p50 %s, p99 %s", percentile(single, 50).Round(time.Microsecond), percentile(single, 99).Round(time.Microsecond))

	for _, mode := range []struct {
		name string
		opts []client.Option
	}{
		{"coalescing off", []client.Option{client.WithoutReadCoalescing()}},
		{"coalescing on", nil},
	} {
		key := "hot/" + mode.name
		c := newClient(t, srv.url, mode.opts...)
		put, err := c.Put(ctx, scope, key, client.PutRequest{OutputURI: "s3://bucket/v0"})
		if err != nil {
			t.Fatal(err)
		}
		var acked atomic.Int64
		acked.Store(put.Entry.Version)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			for i := 1; ; i++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				res, err := c.Put(ctx, scope, key, client.PutRequest{OutputURI: fmt.Sprintf("s3://bucket/v%d", i), Overwrite: true})
				if err != nil {
					t.Error(err)
					return
				}
				acked.Store(res.Entry.Version)
			}
		}()
		var mu sync.Mutex
		var latencies []time.Duration
		var stale atomic.Int64
		getsBefore := srv.requests.gets.Load()
		start := time.Now()
		for range readers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var mine []time.Duration
				for time.Since(start) < run {
					floor := acked.Load()
					began := time.Now()
					e, err := c.Get(ctx, scope, key, nil)
					if err != nil {
						t.Error(err)
						return
					}
					mine = append(mine, time.Since(began))
					if e.Version < floor {
						stale.Add(1)
					}
				}
				mu.Lock()
				latencies = append(latencies, mine...)
				mu.Unlock()
			}()
		}
		time.Sleep(run)
		close(stop)
		wg.Wait()
		end := time.Now()
		slices.Sort(latencies)
		getItems := len(srv.store.readsBetween(start, end))
		gets := srv.requests.gets.Load() - getsBefore
		t.Logf("%s: %d readers, %d reads in %s (%.0f/s), %d HTTP gets (%.3f per read), %d GetItem: %.3f GetItem per read; latency p50 %s, p99 %s; %d stale",
			mode.name, readers, len(latencies), end.Sub(start).Round(time.Millisecond), float64(len(latencies))/end.Sub(start).Seconds(),
			gets, float64(gets)/float64(len(latencies)), getItems, float64(getItems)/float64(len(latencies)),
			percentile(latencies, 50).Round(time.Microsecond), percentile(latencies, 99).Round(time.Microsecond), stale.Load())
		if n := stale.Load(); n != 0 {
			t.Errorf("%s: %d stale reads", mode.name, n)
		}
	}
}
