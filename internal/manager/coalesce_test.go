package manager_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/stampede-cache/stampede/internal/manager"
	"github.com/stampede-cache/stampede/internal/testenv"
)

// gatedStore holds each GetEntry's answer until the test lets it go, so
// the test can order a read against writes and other reads. It controls
// timing only: every read and write still goes to DynamoDB Local.
type gatedStore struct {
	manager.Store
	entered chan struct{}
	release chan struct{}
	reads   atomic.Int64
}

func (g *gatedStore) GetEntry(ctx context.Context, id manager.ID, consistent bool) (*manager.Entry, error) {
	g.reads.Add(1)
	e, err := g.Store.GetEntry(ctx, id, consistent)
	g.entered <- struct{}{}
	<-g.release
	return e, err
}

func TestACoalescedReadNeverTakesAnEarlierReadsAnswer(t *testing.T) {
	store, _ := testenv.Store(t)
	gate := &gatedStore{Store: store, entered: make(chan struct{}, 8), release: make(chan struct{})}
	mgr, _ := manager.New(gate, manager.Config{})
	writer, _ := manager.New(store, manager.Config{})
	ctx := context.Background()

	type answer struct {
		res manager.GetResult
		err error
	}
	first := make(chan answer, 1)
	go func() {
		res, err := mgr.Get(ctx, id("k"), manager.GetOptions{})
		first <- answer{res, err}
	}()
	<-gate.entered // the first read was decided (a miss) but has not answered

	// A put is acknowledged; every read that starts now must see it.
	if _, err := writer.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/new"}); err != nil {
		t.Fatal(err)
	}
	const later = 20
	answers := make(chan answer, later)
	for range later {
		go func() {
			res, err := mgr.Get(ctx, id("k"), manager.GetOptions{})
			answers <- answer{res, err}
		}()
	}
	// One reader gives up: the others must not fail with it.
	gaveUp, cancel := context.WithCancel(ctx)
	quitter := make(chan error, 1)
	go func() {
		_, err := mgr.Get(gaveUp, id("k"), manager.GetOptions{})
		quitter <- err
	}()
	time.Sleep(100 * time.Millisecond) // let them queue behind the first read
	cancel()
	if err := <-quitter; manager.ErrorCode(err) != manager.CodeUnavailable {
		t.Fatalf("the reader that gave up: %v", err)
	}

	gate.release <- struct{}{}
	if a := <-first; manager.ErrorCode(a.err) != manager.CodeNotFound {
		t.Fatalf("first read: %+v %v", a.res, a.err)
	}
	<-gate.entered // the queued read, shared by the later readers
	gate.release <- struct{}{}
	for range later {
		a := <-answers
		if a.err != nil || a.res.Entry.OutputURI != "s3://bucket/new" {
			t.Fatalf("a later read: %+v %v", a.res, a.err)
		}
	}
	if n := gate.reads.Load(); n != 2 {
		t.Fatalf("%d GetItems for %d reads, want 2", n, later+2)
	}
}

func TestWaitAnswersAsSoonAsTheEntryExists(t *testing.T) {
	store, counter := testenv.Store(t)
	mgr, _ := manager.New(store, manager.Config{WaitPoll: 50 * time.Millisecond})
	other, _ := manager.New(store, manager.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Nothing comes: the wait ends in a miss, not an error.
	res, err := mgr.Get(ctx, id("none"), manager.GetOptions{Wait: 200 * time.Millisecond})
	if manager.ErrorCode(err) != manager.CodeNotFound || res.Entry != nil {
		t.Fatalf("empty wait: %+v %v", res, err)
	}

	for _, tt := range []struct {
		name   string
		writer *manager.Manager
	}{
		{"a put through this process wakes the waiters", mgr},
		{"a put elsewhere is seen at the next poll", other},
	} {
		t.Run(tt.name, func(t *testing.T) {
			key := id(tt.name)
			const waiters = 50
			var wg sync.WaitGroup
			errs := make(chan error, waiters)
			for range waiters {
				wg.Add(1)
				go func() {
					defer wg.Done()
					res, err := mgr.Get(ctx, key, manager.GetOptions{Wait: 15 * time.Second})
					if err == nil && res.Entry.OutputURI != "s3://bucket/done" {
						err = fmt.Errorf("got %+v", res.Entry)
					}
					errs <- err
				}()
			}
			time.Sleep(300 * time.Millisecond)
			counter.Reset()
			if _, err := tt.writer.Put(ctx, key, manager.PutRequest{OutputURI: "s3://bucket/done"}); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			// However many wait, each poll is one or two shared GetItems.
			t.Logf("%d waiters: %d DynamoDB requests from the put to the last answer", waiters, counter.Total())
		})
	}
}

// register is the sequential model of one key read and overwritten: the
// output URI last written, "" for none.
type registerOp struct {
	write bool
	value string
}

func TestCoalescedReadsAreLinearizable(t *testing.T) {
	store, counter := testenv.Store(t)
	mgr, _ := manager.New(store, manager.Config{})
	ctx := context.Background()
	const readers, readsEach, writes = 8, 40, 30
	var (
		mu      sync.Mutex
		history []porcupine.Operation
		start   = time.Now()
	)
	record := func(client int, in registerOp, out string, call, ret time.Time) {
		mu.Lock()
		defer mu.Unlock()
		history = append(history, porcupine.Operation{ClientId: client, Input: in, Output: out,
			Call: call.Sub(start).Nanoseconds(), Return: ret.Sub(start).Nanoseconds()})
	}
	var wg sync.WaitGroup
	var reads atomic.Int64
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range readsEach {
				call := time.Now()
				res, err := mgr.Get(ctx, id("hot"), manager.GetOptions{})
				ret := time.Now()
				out := ""
				switch {
				case err == nil:
					out = res.Entry.OutputURI
				case manager.ErrorCode(err) != manager.CodeNotFound:
					t.Error(err)
					return
				}
				reads.Add(1)
				record(r, registerOp{}, out, call, ret)
			}
		}()
	}
	for w := range writes {
		value := "s3://bucket/" + strconv.Itoa(w)
		call := time.Now()
		if _, err := mgr.Put(ctx, id("hot"), manager.PutRequest{OutputURI: value, Overwrite: true}); err != nil {
			t.Fatal(err)
		}
		record(readers, registerOp{write: true, value: value}, "", call, time.Now())
		time.Sleep(5 * time.Millisecond)
	}
	wg.Wait()

	model := porcupine.Model{
		Init: func() any { return "" },
		Step: func(state, input, output any) (bool, any) {
			in := input.(registerOp)
			if in.write {
				return true, in.value
			}
			return output.(string) == state.(string), state
		},
		DescribeOperation: func(input, output any) string {
			if in := input.(registerOp); in.write {
				return "put " + in.value
			}
			return "get -> " + output.(string)
		},
	}
	result, info := porcupine.CheckOperationsVerbose(model, history, time.Minute)
	if result != porcupine.Ok {
		file := filepath.Join(t.TempDir(), "coalesced.html")
		if f, err := os.Create(file); err == nil {
			_ = porcupine.Visualize(model, info, f)
			f.Close()
		}
		t.Fatalf("not linearizable (%v): see %s", result, file)
	}
	t.Logf("%d reads and %d writes linearizable; %.3f DynamoDB requests per operation", reads.Load(), writes,
		float64(counter.Total())/float64(reads.Load()+writes))
}

// cancellableGate is gatedStore for a read whose caller may give up: it
// holds the answer until released or until the read's context ends, as
// the SDK does.
type cancellableGate struct {
	manager.Store
	entered chan struct{}
	release chan struct{}
}

func (g *cancellableGate) GetEntry(ctx context.Context, id manager.ID, consistent bool) (*manager.Entry, error) {
	e, err := g.Store.GetEntry(ctx, id, consistent)
	g.entered <- struct{}{}
	select {
	case <-g.release:
		return e, err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// The first reader of a key reads on its own context; when it gives up,
// the readers queued behind it still get the next read.
func TestALeaderGivingUpDoesNotStrandItsFollowers(t *testing.T) {
	store, _ := testenv.Store(t)
	gate := &cancellableGate{Store: store, entered: make(chan struct{}, 16), release: make(chan struct{})}
	mgr, _ := manager.New(gate, manager.Config{})
	leaderCtx, cancel := context.WithCancel(context.Background())
	leader := make(chan error, 1)
	go func() {
		_, err := mgr.Get(leaderCtx, id("k"), manager.GetOptions{})
		leader <- err
	}()
	<-gate.entered
	const followers = 5
	answers := make(chan error, followers)
	for range followers {
		go func() {
			_, err := mgr.Get(context.Background(), id("k"), manager.GetOptions{})
			answers <- err
		}()
	}
	time.Sleep(100 * time.Millisecond) // let them queue behind the leader's read
	cancel()
	if err := <-leader; manager.ErrorCode(err) != manager.CodeUnavailable {
		t.Fatalf("the leader that gave up: %v", err)
	}
	// Release every read from now on: a follower that had not queued yet
	// when the leader gave up reads on its own, which is as correct.
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case gate.release <- struct{}{}:
			case <-done:
				return
			}
		}
	}()
	for range followers {
		if err := <-answers; manager.ErrorCode(err) != manager.CodeNotFound {
			t.Fatalf("a follower: %v, want not_found", err)
		}
	}
}
