package manager_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/stampede-cache/stampede/internal/dynamostore"
	"github.com/stampede-cache/stampede/internal/manager"
	"github.com/stampede-cache/stampede/internal/testenv"
)

// losingHTTP forwards every request to DynamoDB Local but, while armed,
// throws away the response to the next UpdateItem and reports a reset
// connection instead: DynamoDB applied the write, the caller never heard.
// A real engine cannot be told to lose one answer, so this double does it
// at the HTTP layer and everything above it (the SDK's retryer, the store,
// the manager) runs for real.
type losingHTTP struct {
	next  *http.Client
	armed atomic.Bool
	lost  atomic.Int64
}

func (l *losingHTTP) Do(req *http.Request) (*http.Response, error) {
	resp, err := l.next.Do(req)
	if err != nil || !strings.HasSuffix(req.Header.Get("X-Amz-Target"), ".UpdateItem") || !l.armed.CompareAndSwap(true, false) {
		return resp, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	l.lost.Add(1)
	return nil, &lostResponse{}
}

// lostResponse looks like a connection reset to the SDK's retryer.
type lostResponse struct{}

func (*lostResponse) Error() string {
	return "read: connection reset by peer (response lost by the test)"
}
func (*lostResponse) Timeout() bool   { return false }
func (*lostResponse) Temporary() bool { return true }

// rawFixture is a manager over a table the test can also read raw.
type rawFixture struct {
	*fixture
	db    *dynamodb.Client
	table string
	lose  *losingHTTP
}

func newRawFixture(t *testing.T, cfg manager.Config) *rawFixture {
	t.Helper()
	lose := &losingHTTP{next: &http.Client{}}
	db, counter := testenv.Client(t, func(o *dynamodb.Options) { o.HTTPClient = lose })
	table := testenv.Table(t, db)
	clock := testenv.NewClock(epoch)
	cfg.Clock = clock.Now
	mgr, err := manager.New(dynamostore.New(db, table), cfg)
	if err != nil {
		t.Fatal(err)
	}
	counter.Reset()
	return &rawFixture{fixture: &fixture{mgr: mgr, clock: clock, counter: counter}, db: db, table: table, lose: lose}
}

// loseNextAnswer makes the next UpdateItem land without its answer.
func (f *rawFixture) loseNextAnswer() { f.lose.armed.Store(true) }

func TestALostAnswerNeverTurnsSuccessIntoFailure(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		setup func(f *rawFixture) error
		call  func(f *rawFixture) (string, error)
		want  string
	}{
		{
			name: "create answers created, not already_exists",
			call: func(f *rawFixture) (string, error) {
				res, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/a"})
				return sprint(res.Created, res.Entry.Version, res.Entry.OutputURI), err
			},
			want: sprint(true, v(1), "s3://bucket/a"),
		},
		{
			name: "overwrite is applied once",
			setup: func(f *rawFixture) error {
				_, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/a"})
				return err
			},
			call: func(f *rawFixture) (string, error) {
				res, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/b", Overwrite: true})
				return sprint(res.Created, res.Entry.Version, res.Entry.CreatedAt.Equal(epoch)), err
			},
			want: sprint(false, v(2), true),
		},
		{
			name: "fenced put-and-release answers success, not failed_precondition",
			setup: func(f *rawFixture) error {
				_, err := f.mgr.Reserve(ctx, id("k"), manager.ReserveRequest{OwnerID: "w"})
				return err
			},
			call: func(f *rawFixture) (string, error) {
				res, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/a", OwnerID: "w", Release: true})
				return sprint(res.Created, res.Entry.Version), err
			},
			want: sprint(true, v(1)),
		},
		{
			name: "delete answers deleted",
			setup: func(f *rawFixture) error {
				_, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/a"})
				return err
			},
			call: func(f *rawFixture) (string, error) {
				res, err := f.mgr.Delete(ctx, id("k"), manager.DeleteRequest{})
				return sprint(res.Deleted), err
			},
			want: sprint(true),
		},
		{
			name: "release answers released",
			setup: func(f *rawFixture) error {
				_, err := f.mgr.Reserve(ctx, id("k"), manager.ReserveRequest{OwnerID: "w"})
				return err
			},
			call: func(f *rawFixture) (string, error) {
				released, err := f.mgr.Release(ctx, id("k"), manager.ReleaseRequest{OwnerID: "w"})
				return sprint(released), err
			},
			want: sprint(true),
		},
		{
			name: "acquire answers acquired with the same fence",
			call: func(f *rawFixture) (string, error) {
				res, err := f.mgr.Reserve(ctx, id("k"), manager.ReserveRequest{OwnerID: "w"})
				return sprint(res.Acquired, res.Reservation.Fence), err
			},
			want: sprint(true, epoch.UnixMilli()+1),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newRawFixture(t, manager.Config{})
			if tt.setup != nil {
				if err := tt.setup(f); err != nil {
					t.Fatal(err)
				}
			}
			f.counter.Reset()
			f.loseNextAnswer()
			got, err := tt.call(f)
			if err != nil || got != tt.want {
				t.Fatalf("got %s, %v; want %s", got, err, tt.want)
			}
			if f.lose.lost.Load() != 1 || f.counter.Total() != 2 {
				t.Fatalf("lost %d answers in %d requests; want 1 in 2 (the SDK's retry)", f.lose.lost.Load(), f.counter.Total())
			}
		})
	}
}

func TestIdempotencyKeyAnswersAReSentRequestAsTheFirst(t *testing.T) {
	ctx := context.Background()
	f := newRawFixture(t, manager.Config{})
	put := manager.PutRequest{OutputURI: "s3://bucket/a", IdempotencyKey: "run-1#put"}
	first, err := f.mgr.Put(ctx, id("k"), put)
	if err != nil || !first.Created {
		t.Fatalf("first: %+v %v", first, err)
	}
	f.clock.Advance(time.Second)
	again, err := f.mgr.Put(ctx, id("k"), put)
	if err != nil || !again.Created || again.Entry.Version != first.Entry.Version || !again.Entry.LastUpdatedAt.Equal(first.Entry.LastUpdatedAt) {
		t.Fatalf("re-sent: %+v %v, want %+v", again, err, first)
	}
	// The same key with another request is another request.
	_, err = f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/b", IdempotencyKey: "run-1#put"})
	wantCode(t, err, manager.CodeAlreadyExists)
	// Without a key, a re-sent create is a conflict: the caller must say.
	_, err = f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/a"})
	wantCode(t, err, manager.CodeAlreadyExists)

	if _, err := f.mgr.Reserve(ctx, id("r"), manager.ReserveRequest{OwnerID: "w"}); err != nil {
		t.Fatal(err)
	}
	rel := manager.ReleaseRequest{OwnerID: "w", IdempotencyKey: "run-1#release"}
	for i := range 2 {
		if released, err := f.mgr.Release(ctx, id("r"), rel); err != nil || !released {
			t.Fatalf("release %d: %v %v", i, released, err)
		}
	}
	if released, err := f.mgr.Release(ctx, id("r"), manager.ReleaseRequest{OwnerID: "w"}); err != nil || released {
		t.Fatalf("a fresh release of a released key: %v %v", released, err)
	}
	del := manager.DeleteRequest{IdempotencyKey: "run-1#delete"}
	for i := range 2 {
		if res, err := f.mgr.Delete(ctx, id("k"), del); err != nil || !res.Deleted {
			t.Fatalf("delete %d: %+v %v", i, res, err)
		}
	}
}

func TestARetryIsRecognisedAcrossRecentWrites(t *testing.T) {
	ctx := context.Background()
	f := newRawFixture(t, manager.Config{})
	put := manager.PutRequest{OutputURI: "s3://bucket/mine", IdempotencyKey: "mine"}
	if _, err := f.mgr.Put(ctx, id("k"), put); err != nil {
		t.Fatal(err)
	}
	for i := range manager.RecentWrites {
		if i > 0 {
			res, err := f.mgr.Put(ctx, id("k"), put)
			if err != nil || !res.Created || res.Entry.Version != v(1) {
				t.Fatalf("after %d other writes: %+v %v", i, res, err)
			}
		}
		if _, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/other", Overwrite: true}); err != nil {
			t.Fatal(err)
		}
	}
	// Past the register the retry is judged afresh: a conflict, the truth
	// of today's state, never a second create.
	_, err := f.mgr.Put(ctx, id("k"), put)
	wantCode(t, err, manager.CodeAlreadyExists)
}

func TestVersionsOnlyGrow(t *testing.T) {
	ctx := context.Background()
	f := newRawFixture(t, manager.Config{})
	first, _ := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/a"})
	if _, err := f.mgr.Delete(ctx, id("k"), manager.DeleteRequest{}); err != nil {
		t.Fatal(err)
	}
	second, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/b"})
	if err != nil || second.Entry.Version <= first.Entry.Version {
		t.Fatalf("after a delete: %d then %+v %v", first.Entry.Version, second, err)
	}
	// An If-Match naming the deleted entry's version matches nothing.
	_, err = f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/c", IfVersion: &first.Entry.Version})
	wantCode(t, err, manager.CodeFailedPrecondition)
	_, err = f.mgr.Delete(ctx, id("k"), manager.DeleteRequest{IfVersion: &first.Entry.Version})
	wantCode(t, err, manager.CodeFailedPrecondition)

	// Garbage collection (after the retention, at the earliest) forgets the
	// counter; the clock seeds it again, above every version the key had as
	// long as the key averaged under one write per millisecond.
	f.clock.Advance(manager.ReservationRetention)
	f.deleteItem(t, id("k"))
	third, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/d"})
	if err != nil || third.Entry.Version <= second.Entry.Version {
		t.Fatalf("after collection: %d then %+v %v", second.Entry.Version, third, err)
	}
}

func TestIfMatchOnAMissingEntryIsAPreconditionFailure(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	_, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/a", IfVersion: ptr(v(1))})
	wantCode(t, err, manager.CodeFailedPrecondition)
	_, err = f.mgr.Delete(ctx, id("k"), manager.DeleteRequest{IfVersion: ptr(v(1))})
	wantCode(t, err, manager.CodeFailedPrecondition)
	if res, err := f.mgr.Delete(ctx, id("k"), manager.DeleteRequest{}); err != nil || res.Deleted {
		t.Fatalf("plain delete of nothing: %+v %v", res, err)
	}
}

// slowStore makes the store's answer to a reservation arrive after the
// lease it grants has run out: the clock moves while the request is out,
// as it would behind a DynamoDB that answers late. DynamoDB Local cannot be
// told to be slow for one request.
type slowStore struct {
	manager.Store
	clock *testenv.Clock
	delay time.Duration
}

func (s slowStore) AcquireReservation(ctx context.Context, a manager.Acquisition) (manager.AcquireOutcome, error) {
	out, err := s.Store.AcquireReservation(ctx, a)
	s.clock.Advance(s.delay)
	return out, err
}

func TestALeaseIsNeverGrantedAlreadyExpired(t *testing.T) {
	store, _ := testenv.Store(t)
	clock := testenv.NewClock(epoch)
	ctx := context.Background()
	for _, tt := range []struct {
		delay time.Duration
		want  string
	}{
		{time.Second, ""},
		{30 * time.Second, manager.CodeUnavailable},
		{time.Minute, manager.CodeUnavailable},
	} {
		mgr, _ := manager.New(slowStore{Store: store, clock: clock, delay: tt.delay}, manager.Config{Clock: clock.Now})
		res, err := mgr.Reserve(ctx, id("k"), manager.ReserveRequest{OwnerID: "w"})
		if got := manager.ErrorCode(err); got != tt.want {
			t.Fatalf("answered after %s: %+v %v, want code %q", tt.delay, res, err, tt.want)
		}
		if err == nil && !res.Reservation.ExpiresAt.After(clock.Now()) {
			t.Fatalf("granted a lease already expired: %+v at %s", res, clock.Now())
		}
	}
}

func TestInspectChangesNothing(t *testing.T) {
	ctx := context.Background()
	f := newRawFixture(t, manager.Config{})
	_, err := f.mgr.Inspect(ctx, id("k"))
	wantCode(t, err, manager.CodeNotFound)
	held, err := f.mgr.Reserve(ctx, id("k"), manager.ReserveRequest{OwnerID: "w"})
	if err != nil {
		t.Fatal(err)
	}
	before := f.rawItem(t, id("k"))
	f.counter.Reset()
	got, err := f.mgr.Inspect(ctx, id("k"))
	if err != nil || got != held.Reservation || f.counter.Total() != 1 {
		t.Fatalf("inspect: %+v %v in %d requests, want %+v in 1", got, err, f.counter.Total(), held.Reservation)
	}
	if after := f.rawItem(t, id("k")); !bytes.Equal(after, before) {
		t.Fatalf("inspect changed the item:\n%s\n%s", before, after)
	}
	f.clock.Advance(time.Minute)
	_, err = f.mgr.Inspect(ctx, id("k"))
	wantCode(t, err, manager.CodeNotFound)
}

func TestScopedOutputs(t *testing.T) {
	ctx := context.Background()
	f := newBlobFixture(t)
	theirs := f.putObject(t, managed, "other/dev/model")
	mine := f.putObject(t, managed, "proj/dev/model")
	if _, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: theirs}); err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"overwrite with delete_blob": func() error {
			_, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: mine, Overwrite: true, DeleteBlob: true})
			return err
		},
		"delete with delete_blob": func() error {
			_, err := f.mgr.Delete(ctx, id("k"), manager.DeleteRequest{DeleteBlob: true})
			return err
		},
		"verify": func() error {
			_, err := f.mgr.Get(ctx, id("k"), manager.GetOptions{Verify: true})
			return err
		},
		"verify_output": func() error {
			_, err := f.mgr.Put(ctx, id("k2"), manager.PutRequest{OutputURI: theirs, VerifyOutput: true})
			return err
		},
	} {
		if e := wantCode(t, call(), manager.CodeInvalidArgument); !strings.Contains(e.Message, "outside this scope") {
			t.Errorf("%s: %v", name, e)
		}
	}
	if !f.exists(t, theirs) {
		t.Fatal("another scope's object was deleted")
	}
	if res, err := f.mgr.Put(ctx, id("k3"), manager.PutRequest{OutputURI: mine, VerifyOutput: true}); err != nil || !res.Created {
		t.Fatalf("own scope: %+v %v", res, err)
	}
}

func TestOutputExpirationCapsEntryLifetime(t *testing.T) {
	ctx := context.Background()
	store, _ := testenv.Store(t)
	clock := testenv.NewClock(epoch)
	mgr, err := manager.New(store, manager.Config{Clock: clock.Now, ManagedBuckets: []string{managed}, OutputExpiration: 30 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		uri  string
		ttl  *int64
		want time.Duration
	}{
		{"s3://outputs/proj/dev/a", nil, 30 * 24 * time.Hour},
		{"s3://outputs/proj/dev/b", ptr[int64](3600), time.Hour},
		{"s3://outputs/proj/dev/c", ptr[int64](90 * 24 * 3600), 30 * 24 * time.Hour},
		{"s3://elsewhere/d", nil, 0},
	} {
		res, err := mgr.Put(ctx, id(tt.uri), manager.PutRequest{OutputURI: tt.uri, TTLSeconds: tt.ttl})
		if err != nil {
			t.Fatal(err)
		}
		var got time.Duration
		if e := res.Entry.ExpiresAt; e != nil {
			got = e.Sub(epoch)
		}
		if got != tt.want {
			t.Errorf("%s ttl %v: lives %s, want %s", tt.uri, tt.ttl, got, tt.want)
		}
	}
}

func sprint(vals ...any) string { return fmt.Sprintln(vals...) }
