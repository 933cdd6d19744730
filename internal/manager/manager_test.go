package manager_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stampede-cache/stampede/internal/manager"
	"github.com/stampede-cache/stampede/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

var epoch = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// v is the nth version of a key first written at epoch: versions are
// seeded from the clock (milliseconds) and grow by one per write.
func v(n int64) int64 { return epoch.UnixMilli() + n }

type fixture struct {
	mgr     *manager.Manager
	clock   *testenv.Clock
	counter *testenv.Counter
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	store, counter := testenv.Store(t)
	clock := testenv.NewClock(epoch)
	mgr, err := manager.New(store, manager.Config{Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{mgr: mgr, clock: clock, counter: counter}
}

func id(key string) manager.ID { return manager.ID{Project: "proj", Domain: "dev", Key: key} }

func ptr[T any](v T) *T { return &v }

func wantCode(t *testing.T, err error, code string) *manager.Error {
	t.Helper()
	var e *manager.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("error = %v, want code %s", err, code)
	}
	return e
}

func TestGetMissAndHit(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, err := f.mgr.Get(ctx, id("k"), manager.GetOptions{})
	wantCode(t, err, manager.CodeNotFound)

	put, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{
		OutputURI: "s3://bucket/out/k",
		Metadata: manager.Metadata{
			Source: &manager.Source{Project: "p", Name: "train", Version: "v1"},
			Labels: map[string]string{"team": "ml"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.mgr.Get(ctx, id("k"), manager.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := res.Entry
	if got.OutputURI != "s3://bucket/out/k" || got.Version != v(1) || got.Metadata.Labels["team"] != "ml" ||
		got.Metadata.Source.Name != "train" || !got.CreatedAt.Equal(epoch) || got.ID != id("k") {
		t.Fatalf("got %+v", got)
	}
	if !put.Entry.CreatedAt.Equal(got.CreatedAt) || put.Entry.Version != got.Version {
		t.Fatalf("put returned %+v, get %+v", put.Entry, got)
	}
}

func TestExpiredEntryIsAMissAndReplaceable(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/a", TTLSeconds: ptr[int64](60)}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(59*time.Second + 999*time.Millisecond)
	if _, err := f.mgr.Get(ctx, id("k"), manager.GetOptions{}); err != nil {
		t.Fatalf("1ms before expiry: %v", err)
	}
	f.clock.Advance(time.Millisecond)
	_, err := f.mgr.Get(ctx, id("k"), manager.GetOptions{})
	wantCode(t, err, manager.CodeNotFound)

	// DynamoDB Local never sweeps TTL, like DynamoDB for hours: the condition
	// must treat the expired item as absent.
	res, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/b"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Created || res.Entry.ExpiresAt != nil || res.Entry.Version != v(2) {
		t.Fatalf("put over expired: %+v", res)
	}
	if d, err := f.mgr.Delete(ctx, id("k"), manager.DeleteRequest{}); err != nil || !d.Deleted {
		t.Fatalf("delete = %+v, %v", d, err)
	}
}

func TestPutConflictOverwriteAndMerge(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	first, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/1"})
	if err != nil || !first.Created || first.Entry.Version != v(1) {
		t.Fatalf("first put = %+v, %v", first, err)
	}

	f.clock.Advance(time.Minute)
	_, err = f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/2"})
	e := wantCode(t, err, manager.CodeAlreadyExists)
	if e.Existing == nil || e.Existing.OutputURI != "s3://bucket/1" {
		t.Fatalf("conflict carries %+v", e.Existing)
	}

	second, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/2", Overwrite: true})
	if err != nil {
		t.Fatal(err)
	}
	if second.Created || second.Entry.Version != v(2) || !second.Entry.CreatedAt.Equal(epoch) ||
		!second.Entry.LastUpdatedAt.Equal(epoch.Add(time.Minute)) {
		t.Fatalf("overwrite = %+v", second)
	}
	res, err := f.mgr.Get(ctx, id("k"), manager.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := res.Entry
	if got.OutputURI != "s3://bucket/2" || !got.CreatedAt.Equal(epoch) || got.Version != v(2) {
		t.Fatalf("stored = %+v", got)
	}
}

func TestPutMaxAge(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/1"}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(30 * time.Second)
	_, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/2", MaxAgeSeconds: ptr[int64](30)})
	wantCode(t, err, manager.CodeAlreadyExists)
	f.clock.Advance(time.Millisecond)
	res, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/2", MaxAgeSeconds: ptr[int64](30)})
	if err != nil || res.Created || res.Entry.Version != v(2) {
		t.Fatalf("put older than max age = %+v, %v", res, err)
	}
}

func TestConcurrentPutsWithoutOverwriteHaveOneWinner(t *testing.T) {
	f := newFixture(t)
	const n = 20
	var wg sync.WaitGroup
	results := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.mgr.Put(context.Background(), id("race"), manager.PutRequest{
				OutputURI: "s3://bucket/out-" + string(rune('a'+i)),
			})
			results <- err
		}()
	}
	wg.Wait()
	close(results)
	wins := 0
	for err := range results {
		switch manager.ErrorCode(err) {
		case "":
			wins++
		case manager.CodeAlreadyExists:
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d puts won, want exactly 1", wins)
	}
}

func TestDeleteIsIdempotent(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if d, err := f.mgr.Delete(ctx, id("k"), manager.DeleteRequest{}); err != nil || d.Deleted {
		t.Fatalf("delete of nothing = %+v, %v", d, err)
	}
	if _, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/1"}); err != nil {
		t.Fatal(err)
	}
	if d, err := f.mgr.Delete(ctx, id("k"), manager.DeleteRequest{}); err != nil || !d.Deleted {
		t.Fatalf("delete = %+v, %v", d, err)
	}
	if d, err := f.mgr.Delete(ctx, id("k"), manager.DeleteRequest{}); err != nil || d.Deleted {
		t.Fatalf("second delete = %+v, %v", d, err)
	}
	_, err := f.mgr.Get(ctx, id("k"), manager.GetOptions{})
	wantCode(t, err, manager.CodeNotFound)
}

func TestScopesNeverCollide(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// Flyte's "project-domain-key" maps all of these to one row.
	ids := []manager.ID{
		{Project: "a-b", Domain: "c", Key: "k"},
		{Project: "a", Domain: "b-c", Key: "k"},
		{Project: "a", Domain: "b", Key: "c-k"},
		{Project: "a", Domain: "b", Key: "c/k"},
		{Project: "a", Domain: "bc", Key: "k"},
		{Project: "ab", Domain: "c", Key: "k"},
	}
	for i, x := range ids {
		if _, err := f.mgr.Put(ctx, x, manager.PutRequest{OutputURI: "s3://bucket/" + string(rune('0'+i))}); err != nil {
			t.Fatalf("put %+v: %v", x, err)
		}
	}
	for i, x := range ids {
		res, err := f.mgr.Get(ctx, x, manager.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got := res.Entry
		if want := "s3://bucket/" + string(rune('0'+i)); got.OutputURI != want || got.ID != x || got.Version != v(1) {
			t.Fatalf("%+v read %+v, want %s", x, got, want)
		}
	}
}

func TestReserveAcquireContendExtendTakeover(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a, err := f.mgr.Reserve(ctx, id("k"), manager.ReserveRequest{OwnerID: "worker-a", HeartbeatSeconds: ptr[int64](5)})
	if err != nil || !a.Acquired {
		t.Fatalf("first reserve = %+v, %v", a, err)
	}
	if a.Reservation.OwnerID != "worker-a" || a.Reservation.HeartbeatInterval != 5*time.Second ||
		!a.Reservation.ExpiresAt.Equal(epoch.Add(15*time.Second)) || a.Reservation.ID != id("k") {
		t.Fatalf("reservation = %+v", a.Reservation)
	}

	f.clock.Advance(5 * time.Second)
	b, err := f.mgr.Reserve(ctx, id("k"), manager.ReserveRequest{OwnerID: "worker-b"})
	if err != nil || b.Acquired {
		t.Fatalf("contended reserve = %+v, %v", b, err)
	}
	if b.Reservation != a.Reservation {
		t.Fatalf("contended reserve returned %+v, want the holder %+v", b.Reservation, a.Reservation)
	}

	ext, err := f.mgr.Reserve(ctx, id("k"), manager.ReserveRequest{OwnerID: "worker-a", HeartbeatSeconds: ptr[int64](5)})
	if err != nil || !ext.Acquired || ext.Reservation.Fence != a.Reservation.Fence ||
		!ext.Reservation.ExpiresAt.Equal(epoch.Add(20*time.Second)) {
		t.Fatalf("extension = %+v, %v (first fence %d)", ext, err, a.Reservation.Fence)
	}

	// One millisecond before expiry the holder still wins; at expiry it is
	// taken over and the fence grows.
	f.clock.Advance(15*time.Second - time.Millisecond)
	if r, _ := f.mgr.Reserve(ctx, id("k"), manager.ReserveRequest{OwnerID: "worker-b"}); r.Acquired {
		t.Fatal("took over a live reservation")
	}
	f.clock.Advance(time.Millisecond)
	take, err := f.mgr.Reserve(ctx, id("k"), manager.ReserveRequest{OwnerID: "worker-b"})
	if err != nil || !take.Acquired || take.Reservation.OwnerID != "worker-b" || take.Reservation.Fence <= a.Reservation.Fence {
		t.Fatalf("takeover = %+v, %v", take, err)
	}

	// The old owner is refused and learns who holds the key now.
	old, err := f.mgr.Reserve(ctx, id("k"), manager.ReserveRequest{OwnerID: "worker-a"})
	if err != nil || old.Acquired || old.Reservation.OwnerID != "worker-b" {
		t.Fatalf("old owner reserve = %+v, %v", old, err)
	}

	// Release, then a new acquisition by the first owner: fence grows again.
	if ok, err := f.mgr.Release(ctx, id("k"), manager.ReleaseRequest{OwnerID: "worker-b"}); err != nil || !ok {
		t.Fatalf("release = %v, %v", ok, err)
	}
	again, err := f.mgr.Reserve(ctx, id("k"), manager.ReserveRequest{OwnerID: "worker-a"})
	if err != nil || !again.Acquired || again.Reservation.Fence <= take.Reservation.Fence {
		t.Fatalf("reacquire = %+v, %v (previous fence %d)", again, err, take.Reservation.Fence)
	}
	if again.Reservation.HeartbeatInterval != manager.DefaultHeartbeatInterval {
		t.Fatalf("default heartbeat = %s", again.Reservation.HeartbeatInterval)
	}
}

func TestReserveHeartbeatPolicy(t *testing.T) {
	store, _ := testenv.Store(t)
	clock := testenv.NewClock(epoch)
	mgr, err := manager.New(store, manager.Config{Clock: clock.Now, HeartbeatMultiplier: 4, MaxHeartbeat: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tests := []struct {
		name    string
		seconds *int64
		want    time.Duration
		code    string
	}{
		{"default", nil, 10 * time.Second, ""},
		{"within bounds", ptr[int64](20), 20 * time.Second, ""},
		{"clamped", ptr[int64](3600), 30 * time.Second, ""},
		{"huge is clamped, not overflowed", ptr[int64](1 << 62), 30 * time.Second, ""},
		{"zero", ptr[int64](0), 0, manager.CodeInvalidArgument},
		{"negative", ptr[int64](-5), 0, manager.CodeInvalidArgument},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := mgr.Reserve(ctx, id(tt.name), manager.ReserveRequest{OwnerID: "o", HeartbeatSeconds: tt.seconds})
			if tt.code != "" {
				e := wantCode(t, err, tt.code)
				if !strings.HasPrefix(e.Message, "heartbeat_interval_seconds") {
					t.Fatalf("message %q does not name the field", e.Message)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Reservation.HeartbeatInterval != tt.want || !res.Reservation.ExpiresAt.Equal(epoch.Add(4*tt.want)) {
				t.Fatalf("case %d: %+v", i, res.Reservation)
			}
		})
	}
}

func TestFiftyConcurrentReservationsOneWinner(t *testing.T) {
	f := newFixture(t)
	const n = 50
	var wg sync.WaitGroup
	type outcome struct {
		owner string
		res   manager.ReserveResult
		err   error
	}
	out := make(chan outcome, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := "worker-" + strings.Repeat("x", i%5) + string(rune('A'+i))
			res, err := f.mgr.Reserve(context.Background(), id("herd"), manager.ReserveRequest{OwnerID: owner})
			out <- outcome{owner, res, err}
		}()
	}
	wg.Wait()
	close(out)
	var winners []string
	var holders = map[string]bool{}
	for o := range out {
		if o.err != nil {
			t.Fatalf("%s: %v", o.owner, o.err)
		}
		if o.res.Acquired {
			winners = append(winners, o.owner)
		} else {
			holders[o.res.Reservation.OwnerID] = true
		}
	}
	if len(winners) != 1 {
		t.Fatalf("winners = %v, want exactly one", winners)
	}
	for h := range holders {
		if h != winners[0] {
			t.Fatalf("a loser was told %q holds the key; the winner is %q", h, winners[0])
		}
	}
}

func TestReleaseOnlyByOwner(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if ok, err := f.mgr.Release(ctx, id("k"), manager.ReleaseRequest{OwnerID: "nobody"}); err != nil || ok {
		t.Fatalf("release of nothing = %v, %v", ok, err)
	}
	held, err := f.mgr.Reserve(ctx, id("k"), manager.ReserveRequest{OwnerID: "owner"})
	if err != nil || !held.Acquired {
		t.Fatal(err)
	}
	if ok, err := f.mgr.Release(ctx, id("k"), manager.ReleaseRequest{OwnerID: "intruder"}); err != nil || ok {
		t.Fatalf("non-owner release = %v, %v", ok, err)
	}
	// Still held by the owner.
	if r, err := f.mgr.Reserve(ctx, id("k"), manager.ReserveRequest{OwnerID: "intruder"}); err != nil || r.Acquired || r.Reservation.OwnerID != "owner" {
		t.Fatalf("after non-owner release: %+v, %v", r, err)
	}
	if ok, err := f.mgr.Release(ctx, id("k"), manager.ReleaseRequest{OwnerID: "owner"}); err != nil || !ok {
		t.Fatalf("owner release = %v, %v", ok, err)
	}
	if ok, err := f.mgr.Release(ctx, id("k"), manager.ReleaseRequest{OwnerID: "owner"}); err != nil || ok {
		t.Fatalf("second release = %v, %v", ok, err)
	}
	if r, err := f.mgr.Reserve(ctx, id("k"), manager.ReserveRequest{OwnerID: "intruder"}); err != nil || !r.Acquired {
		t.Fatalf("reserve after release: %+v, %v", r, err)
	}
}

func TestEveryOperationIsOneRequest(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ops := []struct {
		name string
		run  func() error
	}{
		{"get miss", func() error {
			_, err := f.mgr.Get(ctx, id("k"), manager.GetOptions{})
			return ignore(err, manager.CodeNotFound)
		}},
		{"put create", func() error {
			_, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/k"})
			return err
		}},
		{"get hit", func() error { _, err := f.mgr.Get(ctx, id("k"), manager.GetOptions{}); return err }},
		{"put conflict", func() error {
			_, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/k"})
			return ignore(err, manager.CodeAlreadyExists)
		}},
		{"put overwrite", func() error {
			_, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/k", Overwrite: true})
			return err
		}},
		{"delete hit", func() error { _, err := f.mgr.Delete(ctx, id("k"), manager.DeleteRequest{}); return err }},
		{"delete miss", func() error { _, err := f.mgr.Delete(ctx, id("k"), manager.DeleteRequest{}); return err }},
		{"reserve acquire", func() error { _, err := f.mgr.Reserve(ctx, id("k"), manager.ReserveRequest{OwnerID: "a"}); return err }},
		{"reserve extend", func() error { _, err := f.mgr.Reserve(ctx, id("k"), manager.ReserveRequest{OwnerID: "a"}); return err }},
		{"reserve contended", func() error { _, err := f.mgr.Reserve(ctx, id("k"), manager.ReserveRequest{OwnerID: "b"}); return err }},
		{"release non-owner", func() error { _, err := f.mgr.Release(ctx, id("k"), manager.ReleaseRequest{OwnerID: "b"}); return err }},
		{"release owner", func() error { _, err := f.mgr.Release(ctx, id("k"), manager.ReleaseRequest{OwnerID: "a"}); return err }},
		{"release missing", func() error {
			_, err := f.mgr.Release(ctx, id("none"), manager.ReleaseRequest{OwnerID: "a"})
			return err
		}},
	}
	for _, op := range ops {
		f.counter.Reset()
		if err := op.run(); err != nil {
			t.Fatalf("%s: %v", op.name, err)
		}
		if n := f.counter.Total(); n != 1 {
			t.Errorf("%s sent %d DynamoDB requests, want 1", op.name, n)
		}
	}
	// Invalid input is refused before any request.
	f.counter.Reset()
	_, err := f.mgr.Get(ctx, manager.ID{Project: "Bad", Domain: "dev", Key: "k"}, manager.GetOptions{})
	wantCode(t, err, manager.CodeInvalidArgument)
	if n := f.counter.Total(); n != 0 {
		t.Errorf("invalid get sent %d requests", n)
	}
}

func ignore(err error, code string) error {
	if manager.ErrorCode(err) == code {
		return nil
	}
	return err
}

func TestOrgsNeverCollideWithTheDefaultScope(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ids := []manager.ID{
		{Project: "ml", Domain: "dev", Key: "k"},
		{Org: "ml", Project: "dev", Domain: "k", Key: "k"},
		{Org: "acme", Project: "ml", Domain: "dev", Key: "k"},
		{Project: "acme", Domain: "ml", Key: "dev/k"},
	}
	for i, x := range ids {
		if _, err := f.mgr.Put(ctx, x, manager.PutRequest{OutputURI: "s3://bucket/" + string(rune('0'+i))}); err != nil {
			t.Fatalf("%+v: %v", x, err)
		}
	}
	for i, x := range ids {
		got, err := f.mgr.Get(ctx, x, manager.GetOptions{})
		if want := "s3://bucket/" + string(rune('0'+i)); err != nil || got.Entry.OutputURI != want || got.Entry.ID != x {
			t.Errorf("%+v read %+v %v, want %s", x, got.Entry, err, want)
		}
	}
	_, err := f.mgr.Get(ctx, manager.ID{Org: "Acme!", Project: "ml", Domain: "dev", Key: "k"}, manager.GetOptions{})
	if e := wantCode(t, err, manager.CodeInvalidArgument); !strings.HasPrefix(e.Message, "org") {
		t.Fatal(e)
	}
}

// A reservation's answer carries the key's live entry from the same write,
// so a caller about to compute sees a result that landed since it looked.
func TestReserveReportsTheLiveEntry(t *testing.T) {
	for _, tt := range []struct {
		name      string
		entry     bool          // put an entry first
		ttl       int64         // its lifetime in seconds (0: none)
		later     time.Duration // time passed before the reserve
		held      bool          // another owner holds the key
		wantEntry bool
	}{
		{name: "no entry"},
		{name: "live entry, acquired", entry: true, wantEntry: true},
		{name: "live entry, contended", entry: true, held: true, wantEntry: true},
		{name: "expired entry", entry: true, ttl: 60, later: 2 * time.Minute},
		{name: "contended, no entry", held: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			if tt.entry {
				req := manager.PutRequest{OutputURI: "s3://bucket/out"}
				if tt.ttl > 0 {
					req.TTLSeconds = ptr(tt.ttl)
				}
				if _, err := f.mgr.Put(ctx, id("k"), req); err != nil {
					t.Fatal(err)
				}
			}
			f.clock.Advance(tt.later)
			if tt.held {
				if r, err := f.mgr.Reserve(ctx, id("k"), manager.ReserveRequest{OwnerID: "holder"}); err != nil || !r.Acquired {
					t.Fatalf("holder's reserve = %+v, %v", r, err)
				}
			}
			before := f.counter.Total()
			r, err := f.mgr.Reserve(ctx, id("k"), manager.ReserveRequest{OwnerID: "caller"})
			if err != nil || r.Acquired == tt.held {
				t.Fatalf("reserve = %+v, %v", r, err)
			}
			if n := f.counter.Total() - before; n != 1 {
				t.Fatalf("%d DynamoDB requests, want 1", n)
			}
			if got := r.Entry != nil; got != tt.wantEntry {
				t.Fatalf("entry = %+v, want one: %v", r.Entry, tt.wantEntry)
			}
			if tt.wantEntry && (r.Entry.OutputURI != "s3://bucket/out" || r.Entry.ID != id("k")) {
				t.Fatalf("entry = %+v", r.Entry)
			}
		})
	}
}
