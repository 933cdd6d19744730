package manager_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/stampede-cache/stampede/internal/manager"
	"github.com/stampede-cache/stampede/internal/s3blobs"
	"github.com/stampede-cache/stampede/internal/testenv"
)

const managed = "outputs"

// blobFixture is a manager over DynamoDB Local and an in-process S3 with a
// managed bucket and an unmanaged one.
type blobFixture struct {
	*fixture
	s3 *s3.Client
}

func newBlobFixture(t *testing.T, s3Opts ...func(*s3.Options)) *blobFixture {
	t.Helper()
	store, counter := testenv.Store(t)
	clock := testenv.NewClock(epoch)
	client := testenv.S3(t, []string{managed, "elsewhere"}, s3Opts...)
	mgr, err := manager.New(store, manager.Config{
		Clock:          clock.Now,
		Blobs:          s3blobs.New(client),
		ManagedBuckets: []string{managed},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &blobFixture{fixture: &fixture{mgr: mgr, clock: clock, counter: counter}, s3: client}
}

func (f *blobFixture) putObject(t *testing.T, bucket, key string) string {
	t.Helper()
	if _, err := f.s3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: strings.NewReader("data")}); err != nil {
		t.Fatal(err)
	}
	return "s3://" + bucket + "/" + key
}

func (f *blobFixture) exists(t *testing.T, uri string) bool {
	t.Helper()
	bucket, key, _ := manager.SplitS3URI(uri)
	ok, err := s3blobs.New(f.s3).Exists(context.Background(), bucket, key)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// failDeletes makes every S3 DeleteObject fail, as an outage would.
func failDeletes(o *s3.Options) {
	o.RetryMaxAttempts = 1
	o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
		return s.Finalize.Add(middleware.FinalizeMiddlewareFunc("FailDeletes",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				if middleware.GetOperationName(ctx) == "DeleteObject" {
					return middleware.FinalizeOutput{}, middleware.Metadata{}, &smithy.GenericAPIError{Code: "InternalError", Message: "injected"}
				}
				return next.HandleFinalize(ctx, in)
			}), middleware.After)
	})
}

func TestFencedPutRefusedAfterTakeover(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a, err := f.mgr.Reserve(ctx, id("k"), manager.ReserveRequest{OwnerID: "a", HeartbeatSeconds: ptr[int64](1)})
	if err != nil || !a.Acquired {
		t.Fatal(err)
	}
	f.clock.Advance(3 * time.Second) // a stopped heartbeating
	b, err := f.mgr.Reserve(ctx, id("k"), manager.ReserveRequest{OwnerID: "b"})
	if err != nil || !b.Acquired || b.Reservation.Fence <= a.Reservation.Fence {
		t.Fatalf("takeover: %+v %v", b, err)
	}

	// The zombie's write is refused and told who holds the key.
	_, err = f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/zombie", OwnerID: "a", Fence: &a.Reservation.Fence})
	e := wantCode(t, err, manager.CodeFailedPrecondition)
	if e.Holder == nil || e.Holder.OwnerID != "b" || !strings.HasPrefix(e.Message, "owner_id") {
		t.Fatalf("refusal: %+v", e)
	}
	// The right owner with a stale fence is refused too.
	stale := b.Reservation.Fence - 1
	_, err = f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/b", OwnerID: "b", Fence: &stale})
	if e := wantCode(t, err, manager.CodeFailedPrecondition); !strings.HasPrefix(e.Message, "fence") {
		t.Fatalf("stale fence: %+v", e)
	}
	if _, err := f.mgr.Get(ctx, id("k"), manager.GetOptions{}); manager.ErrorCode(err) != manager.CodeNotFound {
		t.Fatalf("a refused put wrote something: %v", err)
	}

	// The holder's fenced put-and-release is one request and does both.
	f.counter.Reset()
	res, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/b", OwnerID: "b", Fence: &b.Reservation.Fence, Release: true})
	if err != nil || !res.Created || res.Entry.Version != f.clock.Now().UnixMilli()+1 {
		t.Fatalf("fenced put: %+v %v", res, err)
	}
	if n := f.counter.Total(); n != 1 {
		t.Fatalf("fenced put-and-release sent %d requests", n)
	}
	c, err := f.mgr.Reserve(ctx, id("k"), manager.ReserveRequest{OwnerID: "c"})
	if err != nil || !c.Acquired || c.Reservation.Fence <= b.Reservation.Fence {
		t.Fatalf("after release: %+v %v", c, err)
	}
	// Released means no longer held: a second fenced put by b is refused.
	_, err = f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/b2", OwnerID: "b", Overwrite: true})
	wantCode(t, err, manager.CodeFailedPrecondition)
}

func TestPutAndReleaseIsAtomic(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/first"}); err != nil {
		t.Fatal(err)
	}
	if r, err := f.mgr.Reserve(ctx, id("k"), manager.ReserveRequest{OwnerID: "w"}); err != nil || !r.Acquired {
		t.Fatal(err)
	}
	// The entry condition fails (no overwrite): the reservation must stay.
	_, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/second", OwnerID: "w", Release: true})
	if e := wantCode(t, err, manager.CodeAlreadyExists); e.Existing == nil || e.Existing.OutputURI != "s3://bucket/first" {
		t.Fatalf("conflict: %+v", e)
	}
	if r, _ := f.mgr.Reserve(ctx, id("other"), manager.ReserveRequest{OwnerID: "x"}); !r.Acquired {
		t.Fatal("unrelated key")
	}
	if r, err := f.mgr.Reserve(ctx, id("k"), manager.ReserveRequest{OwnerID: "x"}); err != nil || r.Acquired || r.Reservation.OwnerID != "w" {
		t.Fatalf("the failed put released the reservation: %+v %v", r, err)
	}
	// With overwrite both happen.
	res, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/second", OwnerID: "w", Release: true, Overwrite: true})
	if err != nil || res.Created || res.Entry.Version != v(2) {
		t.Fatalf("overwrite and release: %+v %v", res, err)
	}
	if r, err := f.mgr.Reserve(ctx, id("k"), manager.ReserveRequest{OwnerID: "x"}); err != nil || !r.Acquired {
		t.Fatalf("not released: %+v %v", r, err)
	}
}

func TestCompareAndSet(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/1", IfVersion: ptr(v(1))})
	if e := wantCode(t, err, manager.CodeFailedPrecondition); !strings.HasPrefix(e.Message, "if_version") {
		t.Fatalf("if_version on nothing: %+v", e)
	}
	if _, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/1"}); err != nil {
		t.Fatal(err)
	}
	res, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/2", IfVersion: ptr(v(1))})
	if err != nil || res.Entry.Version != v(2) {
		t.Fatalf("cas: %+v %v", res, err)
	}
	_, err = f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/3", IfVersion: ptr(v(1))})
	if e := wantCode(t, err, manager.CodeFailedPrecondition); e.Existing == nil || e.Existing.Version != v(2) {
		t.Fatalf("stale cas: %+v", e)
	}
	_, err = f.mgr.Delete(ctx, id("k"), manager.DeleteRequest{IfVersion: ptr(v(1))})
	wantCode(t, err, manager.CodeFailedPrecondition)
	if d, err := f.mgr.Delete(ctx, id("k"), manager.DeleteRequest{IfVersion: ptr(v(2))}); err != nil || !d.Deleted {
		t.Fatalf("delete if version: %+v %v", d, err)
	}
}

// staleReads serves eventually consistent reads from an older snapshot, as
// a lagging replica would. DynamoDB Local's reads are always strongly
// consistent, so this one test needs a double for that single fault.
type staleReads struct {
	manager.Store
	old *manager.Entry
}

func (s staleReads) GetEntry(ctx context.Context, id manager.ID, consistent bool) (*manager.Entry, error) {
	if !consistent {
		return s.old, nil
	}
	return s.Store.GetEntry(ctx, id, true)
}

func TestMinVersionFallsBackToAStrongRead(t *testing.T) {
	store, counter := testenv.Store(t)
	clock := testenv.NewClock(epoch)
	real, _ := manager.New(store, manager.Config{Clock: clock.Now})
	ctx := context.Background()
	first, _ := real.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/1"})
	if _, err := real.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/2", Overwrite: true}); err != nil {
		t.Fatal(err)
	}
	mgr, _ := manager.New(staleReads{Store: store, old: &first.Entry}, manager.Config{Clock: clock.Now})

	tests := []struct {
		name     string
		opts     manager.GetOptions
		version  int64
		read     manager.Read
		requests int64
	}{
		{"strong by default", manager.GetOptions{}, v(2), manager.ReadStrong, 1},
		{"eventual may be stale", manager.GetOptions{Eventual: true}, v(1), manager.ReadEventual, 0},
		{"eventual, old enough", manager.GetOptions{Eventual: true, MinVersion: v(1)}, v(1), manager.ReadEventual, 0},
		{"eventual, too old: strong", manager.GetOptions{Eventual: true, MinVersion: v(2)}, v(2), manager.ReadStrong, 1},
	}
	for _, tt := range tests {
		counter.Reset()
		res, err := mgr.Get(ctx, id("k"), tt.opts)
		if err != nil || res.Entry.Version != tt.version || res.Read != tt.read || counter.Total() != tt.requests {
			t.Errorf("%s: %+v %v, %d requests", tt.name, res, err, counter.Total())
		}
	}
	// A stale miss falls back too.
	missing, _ := manager.New(staleReads{Store: store}, manager.Config{Clock: clock.Now})
	if res, err := missing.Get(ctx, id("k"), manager.GetOptions{Eventual: true, MinVersion: v(1)}); err != nil || res.Read != manager.ReadStrong {
		t.Fatalf("stale miss: %+v %v", res, err)
	}
}

func TestBoundedStalenessCache(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/1"}); err != nil {
		t.Fatal(err)
	}
	read := func(staleness time.Duration, minVersion int64) (manager.GetResult, int64) {
		f.counter.Reset()
		res, err := f.mgr.Get(ctx, id("k"), manager.GetOptions{MaxStaleness: staleness, MinVersion: minVersion})
		if err != nil {
			t.Fatal(err)
		}
		return res, f.counter.Total()
	}
	if res, n := read(time.Second, 0); res.Read != manager.ReadStrong || n != 1 {
		t.Fatalf("first read: %+v %d", res, n)
	}
	f.clock.Advance(time.Second)
	if res, n := read(time.Second, 0); res.Read != manager.ReadCache || n != 0 || res.Entry.Version != v(1) {
		t.Fatalf("within bound: %+v %d", res, n)
	}
	if res, n := read(999*time.Millisecond, 0); res.Read != manager.ReadStrong || n != 1 {
		t.Fatalf("past bound: %+v %d", res, n)
	}
	// A write through this instance is seen at once.
	if _, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://bucket/2", Overwrite: true}); err != nil {
		t.Fatal(err)
	}
	if res, _ := read(time.Minute, 0); res.Entry.Version != v(2) {
		t.Fatalf("own write not seen: %+v", res)
	}
	// min_version beyond the cached version goes to the table.
	if res, n := read(time.Minute, v(3)); res.Read != manager.ReadStrong || n != 1 {
		t.Fatalf("min_version: %+v %d", res, n)
	}
}

func TestDeleteBlobOrdering(t *testing.T) {
	ctx := context.Background()
	t.Run("put deletes the replaced object after the write", func(t *testing.T) {
		f := newBlobFixture(t)
		a, b := f.putObject(t, managed, "proj/dev/a"), f.putObject(t, managed, "proj/dev/b")
		if _, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: a}); err != nil {
			t.Fatal(err)
		}
		res, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: b, Overwrite: true, DeleteBlob: true})
		if err != nil || res.BlobErr != nil || res.DeletedOutput != a {
			t.Fatalf("put: %+v %v", res, err)
		}
		if f.exists(t, a) || !f.exists(t, b) {
			t.Fatal("wrong objects deleted")
		}
		// Re-putting the same URI never deletes the live output.
		if res, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: b, Overwrite: true, DeleteBlob: true}); err != nil || res.DeletedOutput != "" || !f.exists(t, b) {
			t.Fatalf("same URI: %+v %v", res, err)
		}
	})
	t.Run("a refused put deletes nothing", func(t *testing.T) {
		f := newBlobFixture(t)
		a, b := f.putObject(t, managed, "proj/dev/a"), f.putObject(t, managed, "proj/dev/b")
		if _, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: a}); err != nil {
			t.Fatal(err)
		}
		_, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: b, DeleteBlob: true})
		wantCode(t, err, manager.CodeAlreadyExists)
		if !f.exists(t, a) {
			t.Fatal("the live entry's object was deleted")
		}
	})
	t.Run("S3 failure after the put leaves no dangling entry", func(t *testing.T) {
		f := newBlobFixture(t, failDeletes)
		a, b := f.putObject(t, managed, "proj/dev/a"), f.putObject(t, managed, "proj/dev/b")
		if _, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: a}); err != nil {
			t.Fatal(err)
		}
		res, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: b, Overwrite: true, DeleteBlob: true})
		if err != nil || res.BlobErr == nil || res.DeletedOutput != "" {
			t.Fatalf("put: %+v %v", res, err)
		}
		got, err := f.mgr.Get(ctx, id("k"), manager.GetOptions{Verify: true})
		if err != nil || got.Entry.OutputURI != b {
			t.Fatalf("entry points at %+v, %v", got, err)
		}
	})
	t.Run("delete removes the entry before the object", func(t *testing.T) {
		f := newBlobFixture(t, failDeletes)
		a := f.putObject(t, managed, "proj/dev/a")
		if _, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: a}); err != nil {
			t.Fatal(err)
		}
		res, err := f.mgr.Delete(ctx, id("k"), manager.DeleteRequest{DeleteBlob: true})
		if err != nil || !res.Deleted || res.BlobErr == nil {
			t.Fatalf("delete: %+v %v", res, err)
		}
		if _, err := f.mgr.Get(ctx, id("k"), manager.GetOptions{}); manager.ErrorCode(err) != manager.CodeNotFound {
			t.Fatalf("entry survived: %v", err)
		}
	})
	t.Run("delete with delete_blob removes both", func(t *testing.T) {
		f := newBlobFixture(t)
		a := f.putObject(t, managed, "proj/dev/a")
		if _, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: a}); err != nil {
			t.Fatal(err)
		}
		res, err := f.mgr.Delete(ctx, id("k"), manager.DeleteRequest{DeleteBlob: true})
		if err != nil || !res.Deleted || res.DeletedOutput != a || f.exists(t, a) {
			t.Fatalf("delete: %+v %v", res, err)
		}
	})
	t.Run("unmanaged buckets are refused and left alone", func(t *testing.T) {
		f := newBlobFixture(t)
		x := f.putObject(t, "elsewhere", "x")
		if _, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: x}); err != nil {
			t.Fatal(err)
		}
		_, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://outputs/proj/dev/y", Overwrite: true, DeleteBlob: true})
		if e := wantCode(t, err, manager.CodeInvalidArgument); !strings.Contains(e.Message, x) {
			t.Fatalf("put: %+v", e)
		}
		_, err = f.mgr.Delete(ctx, id("k"), manager.DeleteRequest{DeleteBlob: true})
		if e := wantCode(t, err, manager.CodeInvalidArgument); !strings.Contains(e.Message, x) {
			t.Fatalf("delete: %+v", e)
		}
		if got, err := f.mgr.Get(ctx, id("k"), manager.GetOptions{}); err != nil || got.Entry.OutputURI != x || !f.exists(t, x) {
			t.Fatalf("changed: %+v %v", got, err)
		}
	})
}

func TestVerifyOutput(t *testing.T) {
	f := newBlobFixture(t)
	ctx := context.Background()
	_, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://outputs/proj/dev/missing", VerifyOutput: true})
	if e := wantCode(t, err, manager.CodeFailedPrecondition); !strings.HasPrefix(e.Message, "output_uri") {
		t.Fatalf("missing object: %+v", e)
	}
	_, err = f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://elsewhere/x", VerifyOutput: true})
	wantCode(t, err, manager.CodeInvalidArgument)
	uri := f.putObject(t, managed, "proj/dev/present")
	if _, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: uri, VerifyOutput: true}); err != nil {
		t.Fatal(err)
	}
}

func TestDanglingEntryIsRemoved(t *testing.T) {
	f := newBlobFixture(t)
	ctx := context.Background()
	uri := f.putObject(t, managed, "proj/dev/out")
	if _, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: uri}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.mgr.Get(ctx, id("k"), manager.GetOptions{Verify: true}); err != nil {
		t.Fatalf("present output: %v", err)
	}
	// A lifecycle rule (or a person) deletes the object behind our back.
	if err := s3blobs.New(f.s3).Delete(ctx, managed, "proj/dev/out"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.mgr.Get(ctx, id("k"), manager.GetOptions{}); err != nil {
		t.Fatalf("without verify the entry is served: %v", err)
	}
	_, err := f.mgr.Get(ctx, id("k"), manager.GetOptions{Verify: true})
	if e := wantCode(t, err, manager.CodeNotFound); !strings.Contains(e.Message, "gone") {
		t.Fatalf("dangling: %+v", e)
	}
	if _, err := f.mgr.Get(ctx, id("k"), manager.GetOptions{}); manager.ErrorCode(err) != manager.CodeNotFound {
		t.Fatalf("dangling entry not removed: %v", err)
	}
}

// racingBlobs runs a fresh put between the verify read and the removal, the
// window in which a careless removal would lose it.
type racingBlobs struct {
	manager.Blobs
	race func()
}

func (r racingBlobs) Exists(ctx context.Context, bucket, key string) (bool, error) {
	r.race()
	return false, nil
}

func TestDanglingRemovalNeverLosesAFreshPut(t *testing.T) {
	store, _ := testenv.Store(t)
	clock := testenv.NewClock(epoch)
	client := testenv.S3(t, []string{managed})
	writer, _ := manager.New(store, manager.Config{Clock: clock.Now})
	ctx := context.Background()
	if _, err := writer.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://outputs/proj/dev/old"}); err != nil {
		t.Fatal(err)
	}
	reader, _ := manager.New(store, manager.Config{
		Clock:          clock.Now,
		ManagedBuckets: []string{managed},
		Blobs: racingBlobs{Blobs: s3blobs.New(client), race: func() {
			if _, err := writer.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://outputs/proj/dev/fresh", Overwrite: true}); err != nil {
				t.Error(err)
			}
		}},
	})
	if _, err := reader.Get(ctx, id("k"), manager.GetOptions{Verify: true}); manager.ErrorCode(err) != manager.CodeNotFound {
		t.Fatalf("verify: %v", err)
	}
	got, err := writer.Get(ctx, id("k"), manager.GetOptions{})
	if err != nil || got.Entry.OutputURI != "s3://outputs/proj/dev/fresh" || got.Entry.Version != v(2) {
		t.Fatalf("the fresh put was lost: %+v %v", got, err)
	}
}

func TestBlobFeaturesNeedManagedBuckets(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://outputs/x", DeleteBlob: true})
	if e := wantCode(t, err, manager.CodeInvalidArgument); !strings.HasPrefix(e.Message, "delete_blob") {
		t.Fatal(e)
	}
	_, err = f.mgr.Delete(ctx, id("k"), manager.DeleteRequest{DeleteBlob: true})
	wantCode(t, err, manager.CodeInvalidArgument)
	_, err = f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://outputs/x", VerifyOutput: true})
	wantCode(t, err, manager.CodeInvalidArgument)
	if _, err := f.mgr.Put(ctx, id("k"), manager.PutRequest{OutputURI: "s3://outputs/x", Release: true}); !errors.As(err, new(*manager.Error)) {
		t.Fatal("release without owner_id accepted")
	}
}
