package e2e_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stampede-cache/stampede/client"
	"github.com/stampede-cache/stampede/internal/manager"
	"github.com/stampede-cache/stampede/internal/testenv"
	"github.com/stampede-cache/stampede/internal/transport"
)

// Environment of the suite.
const (
	envAPIURL  = "STAMPEDE_API_URL"
	envSigV4   = "STAMPEDE_SIGV4"
	envProject = "STAMPEDE_E2E_PROJECT"
)

func TestMain(m *testing.M) {
	if os.Getenv(envAPIURL) != "" {
		os.Exit(m.Run())
	}
	// No deployment given: each test starts the API in-process over
	// DynamoDB Local.
	os.Exit(testenv.Main(m))
}

// runDomain is this run's domain: unique, so runs never see each other's
// keys on a shared deployment.
var runDomain = func() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return "e2e-" + time.Now().UTC().Format("20060102t150405") + "-" + hex.EncodeToString(b[:])
}()

// env is one test's view of the API under test.
type env struct {
	t     *testing.T
	c     *client.Client
	scope client.Scope

	mu       sync.Mutex
	keys     map[string]bool
	reserved map[[2]string]bool
}

// newEnv returns a client of the API under test, and cleans up after the
// test what it recorded.
func newEnv(t *testing.T) *env {
	t.Helper()
	endpoint := os.Getenv(envAPIURL)
	if endpoint == "" {
		store, _ := testenv.Store(t)
		mgr, err := manager.New(store, manager.Config{})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(transport.NewRouter(mgr, transport.Options{Log: slog.New(slog.DiscardHandler)}))
		t.Cleanup(srv.Close)
		endpoint = srv.URL
	}
	opts, err := signing(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(endpoint, append(opts, client.WithUserAgent("stampede-e2e"))...)
	if err != nil {
		t.Fatal(err)
	}
	project := os.Getenv(envProject)
	if project == "" {
		project = "e2e"
	}
	e := &env{t: t, c: c, scope: client.Scope{Project: project, Domain: runDomain}, keys: map[string]bool{}, reserved: map[[2]string]bool{}}
	t.Cleanup(e.cleanup)
	return e
}

// signing decides whether requests to endpoint are signed.
func signing(endpoint string) ([]client.Option, error) {
	switch strings.ToLower(os.Getenv(envSigV4)) {
	case "1", "true", "on":
		return []client.Option{client.WithDefaultSigV4()}, nil
	case "0", "false", "off":
		return []client.Option{client.WithoutSigV4()}, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, err
	}
	if loopback(u.Hostname()) {
		return []client.Option{client.WithoutSigV4()}, nil
	}
	return []client.Option{client.WithDefaultSigV4()}, nil
}

// loopback reports whether host is this machine (LocalStack's
// *.localhost.localstack.cloud names included).
func loopback(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") ||
		host == "localhost.localstack.cloud" || strings.HasSuffix(host, ".localhost.localstack.cloud") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (e *env) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	e.t.Cleanup(cancel)
	return ctx
}

// key returns a key of this test, recorded for clean-up.
func (e *env) key(name string) string {
	k := e.t.Name() + "/" + name
	e.track(k)
	return k
}

// track records a key to delete after the test.
func (e *env) track(key string) {
	e.mu.Lock()
	e.keys[key] = true
	e.mu.Unlock()
}

// untrack forgets a key the API cannot address.
func (e *env) untrack(key string) {
	e.mu.Lock()
	delete(e.keys, key)
	e.mu.Unlock()
}

// reserve reserves key for owner, recording the reservation for clean-up.
func (e *env) reserve(ctx context.Context, key, owner string) *client.ReserveResult {
	e.t.Helper()
	e.mu.Lock()
	e.reserved[[2]string{key, owner}] = true
	e.mu.Unlock()
	r, err := e.c.Reserve(ctx, e.scope, key, client.ReserveRequest{OwnerID: owner, Heartbeat: time.Second})
	if err != nil {
		e.t.Fatalf("reserve %q as %s: %v", key, owner, err)
	}
	return r
}

func (e *env) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e.mu.Lock()
	defer e.mu.Unlock()
	for k := range e.keys {
		if _, err := e.c.Delete(ctx, e.scope, k, nil); err != nil {
			e.t.Errorf("clean up: delete %q: %v", k, err)
		}
	}
	for r := range e.reserved {
		if _, err := e.c.Release(ctx, e.scope, r[0], client.ReleaseRequest{OwnerID: r[1]}); err != nil {
			e.t.Errorf("clean up: release %q: %v", r[0], err)
		}
	}
}

func (e *env) put(ctx context.Context, key string, in client.PutRequest) *client.PutResult {
	e.t.Helper()
	res, err := e.c.Put(ctx, e.scope, key, in)
	if err != nil {
		e.t.Fatalf("put %q: %v", key, err)
	}
	return res
}

func (e *env) get(ctx context.Context, key string) *client.Entry {
	e.t.Helper()
	got, err := e.c.Get(ctx, e.scope, key, nil)
	if err != nil {
		e.t.Fatalf("get %q: %v", key, err)
	}
	return got
}

func TestCacheLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	key := e.key("models/resnet")

	if _, err := e.c.Get(ctx, e.scope, key, nil); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("get before put: %v, want not found", err)
	}
	md := client.Metadata{
		Source: &client.Source{Project: "ml", Domain: "dev", Name: "train", Version: "v1"},
		Labels: map[string]string{"team": "ml", "ünï": "cödé"},
	}
	start := time.Now()
	put := e.put(ctx, key, client.PutRequest{OutputURI: "s3://bucket/models/resnet/1", Metadata: md})
	if !put.Created || put.Entry.Version < 1 || put.Entry.Key != key || put.Entry.Project != e.scope.Project || put.Entry.Domain != e.scope.Domain {
		t.Fatalf("put = %+v", put)
	}
	if skew := put.Entry.CreatedAt.Sub(start); skew < -time.Minute || skew > time.Minute {
		t.Errorf("created_at %s is far from now (%s)", put.Entry.CreatedAt, start)
	}
	got := e.get(ctx, key)
	if got.OutputURI != "s3://bucket/models/resnet/1" || *got.Metadata.Source != *md.Source || got.Metadata.Labels["ünï"] != "cödé" ||
		!got.CreatedAt.Equal(put.Entry.CreatedAt) || !got.LastUpdatedAt.Equal(put.Entry.CreatedAt) || !got.ExpiresAt.IsZero() {
		t.Fatalf("get = %+v, put = %+v", got, put.Entry)
	}

	// A second put conflicts and carries the live entry.
	_, err := e.c.Put(ctx, e.scope, key, client.PutRequest{OutputURI: "s3://bucket/models/resnet/2"})
	var apiErr *client.APIError
	if !errors.Is(err, client.ErrAlreadyExists) || !errors.As(err, &apiErr) || apiErr.Status != 409 ||
		apiErr.Existing == nil || apiErr.Existing.OutputURI != "s3://bucket/models/resnet/1" {
		t.Fatalf("conflicting put: %v", err)
	}
	// A max age the entry has not reached does not allow replacing it.
	if _, err := e.c.Put(ctx, e.scope, key, client.PutRequest{OutputURI: "s3://bucket/x", MaxAge: time.Hour}); !errors.Is(err, client.ErrAlreadyExists) {
		t.Fatalf("put with max age: %v", err)
	}
	// Overwrite replaces it.
	over := e.put(ctx, key, client.PutRequest{OutputURI: "s3://bucket/models/resnet/2", Overwrite: true, TTL: time.Hour})
	if over.Created || over.Entry.Version != put.Entry.Version+1 || !over.Entry.CreatedAt.Equal(put.Entry.CreatedAt) || over.Entry.ExpiresAt.IsZero() {
		t.Fatalf("overwrite = %+v", over)
	}
	if ttl := over.Entry.ExpiresAt.Sub(over.Entry.LastUpdatedAt); ttl != time.Hour {
		t.Errorf("expires_at - last_updated_at = %s, want 1h", ttl)
	}
	if got := e.get(ctx, key); got.OutputURI != "s3://bucket/models/resnet/2" || got.Version != put.Entry.Version+1 {
		t.Fatalf("get after overwrite = %+v", got)
	}

	del, err := e.c.Delete(ctx, e.scope, key, nil)
	if err != nil || !del.Deleted || del.OutputDeleted != nil {
		t.Fatalf("delete = %+v, %v", del, err)
	}
	if del, err := e.c.Delete(ctx, e.scope, key, nil); err != nil || del.Deleted {
		t.Fatalf("second delete = %+v, %v", del, err)
	}
	if _, err := e.c.Get(ctx, e.scope, key, nil); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	// The key is free again.
	if again := e.put(ctx, key, client.PutRequest{OutputURI: "s3://bucket/models/resnet/3"}); !again.Created {
		t.Fatalf("put after delete = %+v", again)
	}
}

// weirdKeys exercise the path encoding: each must round-trip exactly.
var weirdKeys = []string{
	"plain",
	"with/slash",
	"a/b/c/d",
	"double//slash",
	"/leading-slash",
	"trailing-slash/",
	"dots/../up",
	"./dot",
	".",
	"..",
	"100%",
	"%2F",
	"%41",
	"A",
	"with space",
	"hash#fragment",
	"question?x=1&y=2",
	"plus+sign",
	"semi;colon,comma=equals",
	`quotes"'`,
	`back\slash`,
	"<>[]{}|^`",
	"tilde~under_score-dash.dot",
	"ünïcödé",
	"日本語/キー",
	"emoji🚀",
	strings.Repeat("k", 1024),
}

func TestWeirdKeys(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	// cut lists the keys a deployment cut at "?" (see cutAtQuery).
	var cut sync.Map
	for i, key := range weirdKeys {
		e.track(key)
		uri := fmt.Sprintf("s3://bucket/weird/%d", i)
		name := key
		if len(name) > 40 {
			name = name[:40] + "…"
		}
		t.Run(name, func(t *testing.T) {
			put, err := e.c.Put(ctx, e.scope, key, client.PutRequest{OutputURI: uri})
			if cutAtQuery(key, put, err) {
				cut.Store(key, true)
				e.untrack(key)
				e.track(key[:strings.IndexByte(key, '?')])
				t.Skipf("the API cut the key at '?': an API Gateway HTTP API does that (docs/api.md, Names and keys); use the REST API for such keys")
			}
			if err != nil {
				t.Fatalf("put: %v", err)
			}
			if put.Entry.Key != key || !put.Created {
				t.Fatalf("put stored key %q (created %v)", put.Entry.Key, put.Created)
			}
			got, err := e.c.Get(ctx, e.scope, key, nil)
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			if got.Key != key || got.OutputURI != uri {
				t.Fatalf("get returned key %q uri %s, want %q %s", got.Key, got.OutputURI, key, uri)
			}
			r := e.reserve(ctx, key, "owner-"+name)
			if !r.Acquired || r.Reservation.Key != key {
				t.Fatalf("reserve = %+v", r)
			}
			if ok, err := e.c.Release(ctx, e.scope, key, client.ReleaseRequest{OwnerID: "owner-" + name}); err != nil || !ok {
				t.Fatalf("release = %v, %v", ok, err)
			}
		})
	}
	// Distinct keys stayed distinct ("%41" is not "A", "%2F" is not "/").
	for i, key := range weirdKeys {
		if _, skipped := cut.Load(key); skipped {
			continue
		}
		got, err := e.c.Get(ctx, e.scope, key, nil)
		if err != nil {
			t.Fatalf("get %q: %v", key, err)
		}
		if want := fmt.Sprintf("s3://bucket/weird/%d", i); got.OutputURI != want {
			t.Errorf("key %q holds %s, want %s", key, got.OutputURI, want)
		}
	}
	for i, key := range weirdKeys {
		if _, skipped := cut.Load(key); skipped {
			continue
		}
		if del, err := e.c.Delete(ctx, e.scope, key, nil); err != nil || !del.Deleted {
			t.Errorf("delete %d %q: %+v, %v", i, key, del, err)
		}
	}
}

// cutAtQuery recognizes, on a deployment, the documented limitation of an
// API Gateway HTTP API: it decodes the path and cuts it at "?", so the rest
// of the key arrives as a query string (refused as unknown parameters) or
// is lost (the entry is stored under the key's start).
func cutAtQuery(key string, put *client.PutResult, err error) bool {
	i := strings.IndexByte(key, '?')
	if i < 0 || os.Getenv(envAPIURL) == "" {
		return false
	}
	var apiErr *client.APIError
	if errors.As(err, &apiErr) && apiErr.Code == client.CodeInvalidArgument && strings.Contains(apiErr.Message, "unknown query parameter") {
		return true
	}
	return err == nil && put.Entry.Key == key[:i]
}

func TestInvalidRequests(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	key := e.key("k")
	for name, call := range map[string]func() error{
		"bad output uri": func() error {
			_, err := e.c.Put(ctx, e.scope, key, client.PutRequest{OutputURI: "https://not-s3/x"})
			return err
		},
		"bad bucket": func() error {
			_, err := e.c.Put(ctx, e.scope, key, client.PutRequest{OutputURI: "s3://B/x"})
			return err
		},
		"bad project": func() error {
			_, err := e.c.Get(ctx, client.Scope{Project: "Upper", Domain: e.scope.Domain}, key, nil)
			return err
		},
		"control character in key": func() error {
			_, err := e.c.Get(ctx, e.scope, "tab\there", nil)
			return err
		},
		"key too long": func() error {
			_, err := e.c.Get(ctx, e.scope, strings.Repeat("k", 1025), nil)
			return err
		},
		"control character in owner": func() error {
			_, err := e.c.Reserve(ctx, e.scope, key, client.ReserveRequest{OwnerID: "a\nb"})
			return err
		},
	} {
		var apiErr *client.APIError
		if err := call(); !errors.Is(err, client.ErrInvalidArgument) || !errors.As(err, &apiErr) || apiErr.Status != 400 || apiErr.Message == "" {
			t.Errorf("%s: %v, want invalid_argument (HTTP 400)", name, err)
		}
	}
}

func TestReservationContention(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	key := e.key("job")

	first := e.reserve(ctx, key, "worker-1")
	if !first.Acquired || first.Reservation.OwnerID != "worker-1" || first.Reservation.Fence <= 0 {
		t.Fatalf("first reserve = %+v", first)
	}
	hb := first.Reservation.HeartbeatInterval
	if hb <= 0 || hb > time.Second {
		t.Errorf("heartbeat = %s, asked for 1s", hb)
	}
	if until := time.Until(first.Reservation.ExpiresAt); until <= 0 || until > time.Minute {
		t.Errorf("expires in %s", until)
	}
	second := e.reserve(ctx, key, "worker-2")
	if second.Acquired || second.Reservation.OwnerID != "worker-1" || second.Reservation.Fence != first.Reservation.Fence {
		t.Fatalf("contended reserve = %+v", second)
	}
	// The holder extends: same fence, later (or equal) expiry.
	ext := e.reserve(ctx, key, "worker-1")
	if !ext.Acquired || ext.Reservation.Fence != first.Reservation.Fence || ext.Reservation.ExpiresAt.Before(first.Reservation.ExpiresAt) {
		t.Fatalf("extension = %+v", ext)
	}
	// Only the holder can release.
	if ok, err := e.c.Release(ctx, e.scope, key, client.ReleaseRequest{OwnerID: "worker-2"}); err != nil || ok {
		t.Fatalf("release by a non-holder = %v, %v", ok, err)
	}
	if ok, err := e.c.Release(ctx, e.scope, key, client.ReleaseRequest{OwnerID: "worker-1"}); err != nil || !ok {
		t.Fatalf("release by the holder = %v, %v", ok, err)
	}
	if ok, err := e.c.Release(ctx, e.scope, key, client.ReleaseRequest{OwnerID: "worker-1"}); err != nil || ok {
		t.Fatalf("second release = %v, %v", ok, err)
	}
	// The next owner gets a larger fence.
	next := e.reserve(ctx, key, "worker-2")
	if !next.Acquired || next.Reservation.Fence <= first.Reservation.Fence {
		t.Fatalf("reserve after release = %+v (first fence %d)", next, first.Reservation.Fence)
	}
	// Reservations and entries are independent: a put needs no reservation.
	e.put(ctx, key, client.PutRequest{OutputURI: "s3://bucket/job"})
	if ok, err := e.c.Release(ctx, e.scope, key, client.ReleaseRequest{OwnerID: "worker-2"}); err != nil || !ok {
		t.Fatalf("release = %v, %v", ok, err)
	}
}

func TestConcurrentPutsOneWins(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	key := e.key("race")
	const writers = 8
	var created atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := e.c.Put(ctx, e.scope, key, client.PutRequest{OutputURI: fmt.Sprintf("s3://bucket/race/%d", i)})
			switch {
			case err == nil && res.Created:
				created.Add(1)
			case errors.Is(err, client.ErrAlreadyExists):
			default:
				errs <- fmt.Errorf("writer %d: %+v, %v", i, res, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if created.Load() != 1 {
		t.Fatalf("%d puts created the entry, want 1", created.Load())
	}
}

func TestGetOrCompute(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	key := e.key("computed")
	const callers = 6
	var computed atomic.Int32
	waiting := make(chan struct{}, callers)
	compute := func(ctx context.Context) (client.ComputeResult, error) {
		computed.Add(1)
		for range callers - 1 {
			select {
			case <-waiting:
			case <-ctx.Done():
				return client.ComputeResult{}, ctx.Err()
			}
		}
		return client.ComputeResult{OutputURI: "s3://bucket/computed", Metadata: client.Metadata{Labels: map[string]string{"by": "e2e"}}}, nil
	}
	var wg sync.WaitGroup
	entries := make([]*client.Entry, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var once sync.Once
			entries[i], errs[i] = e.c.GetOrCompute(ctx, e.scope, key, compute,
				client.WithHeartbeat(time.Second),
				client.WithObserver(func(ev client.Event) {
					if ev.Kind == client.EventWaiting {
						once.Do(func() { waiting <- struct{}{} })
					}
				}))
		}()
	}
	wg.Wait()
	if computed.Load() != 1 {
		t.Fatalf("compute ran %d times, want 1", computed.Load())
	}
	for i := range callers {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if entries[i].OutputURI != "s3://bucket/computed" || entries[i].Version != entries[0].Version || !entries[i].CreatedAt.Equal(entries[0].CreatedAt) {
			t.Fatalf("caller %d got %+v", i, entries[i])
		}
	}

	// A failing computation releases the key and reports its error.
	failing := e.key("failing")
	boom := errors.New("boom")
	if _, err := e.c.GetOrCompute(ctx, e.scope, failing, func(context.Context) (client.ComputeResult, error) {
		return client.ComputeResult{}, boom
	}, client.WithOwnerID("e2e-failing")); !errors.Is(err, boom) {
		t.Fatalf("failing compute: %v", err)
	}
	if r := e.reserve(ctx, failing, "e2e-after"); !r.Acquired {
		t.Fatalf("the failed computation kept the reservation: %+v", r)
	}
}

func TestConditionalRequests(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	key := e.key("etag")
	v1 := e.put(ctx, key, client.PutRequest{OutputURI: "s3://bucket/etag/1"}).Entry

	if _, err := e.c.Get(ctx, e.scope, key, &client.GetOptions{IfNoneMatch: v1.Version}); !errors.Is(err, client.ErrNotModified) {
		t.Fatalf("get If-None-Match current version: %v, want not modified", err)
	}
	if got, err := e.c.Get(ctx, e.scope, key, &client.GetOptions{IfNoneMatch: v1.Version + 7}); err != nil || got.Version != v1.Version {
		t.Fatalf("get If-None-Match other version: %+v, %v", got, err)
	}
	// Compare-and-set: If-Match replaces that version without overwrite.
	v2 := e.put(ctx, key, client.PutRequest{OutputURI: "s3://bucket/etag/2", IfMatch: v1.Version}).Entry
	if v2.Version != v1.Version+1 || v2.OutputURI != "s3://bucket/etag/2" {
		t.Fatalf("put If-Match = %+v", v2)
	}
	_, err := e.c.Put(ctx, e.scope, key, client.PutRequest{OutputURI: "s3://bucket/etag/3", IfMatch: v1.Version})
	var apiErr *client.APIError
	if !errors.Is(err, client.ErrFailedPrecondition) || !errors.As(err, &apiErr) || apiErr.Status != 412 || apiErr.Existing == nil || apiErr.Existing.Version != v2.Version {
		t.Fatalf("stale If-Match put: %v", err)
	}
	if _, err := e.c.Delete(ctx, e.scope, key, &client.DeleteOptions{IfMatch: v1.Version}); !errors.Is(err, client.ErrFailedPrecondition) {
		t.Fatalf("stale If-Match delete: %v", err)
	}
	if del, err := e.c.Delete(ctx, e.scope, key, &client.DeleteOptions{IfMatch: v2.Version}); err != nil || !del.Deleted {
		t.Fatalf("If-Match delete: %+v, %v", del, err)
	}
}

func TestReadConsistency(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	key := e.key("reads")
	put := e.put(ctx, key, client.PutRequest{OutputURI: "s3://bucket/reads"}).Entry
	for name, opts := range map[string]*client.GetOptions{
		"strong":                 {Consistency: client.ConsistencyStrong},
		"eventual, min version":  {Consistency: client.ConsistencyEventual, MinVersion: put.Version},
		"bounded staleness":      {MaxStaleness: time.Second},
		"eventual and staleness": {Consistency: client.ConsistencyEventual, MinVersion: put.Version, MaxStaleness: 50 * time.Millisecond},
	} {
		// Eventual reads may lag; min_version makes the service fall back
		// to a strong read, so they must see the put.
		got, err := e.c.Get(ctx, e.scope, key, opts)
		if err != nil || got.Version != put.Version || got.OutputURI != put.OutputURI {
			t.Errorf("%s: %+v, %v", name, got, err)
		}
	}
	if _, err := e.c.Get(ctx, e.scope, key, &client.GetOptions{Consistency: client.ConsistencyStrong, MaxStaleness: time.Second}); !errors.Is(err, client.ErrInvalidArgument) {
		t.Errorf("strong with max staleness: %v, want invalid argument", err)
	}
}

func TestFencedPut(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	key := e.key("fenced")

	// Nobody holds the key: a fenced put is refused, with no holder.
	_, err := e.c.Put(ctx, e.scope, key, client.PutRequest{OutputURI: "s3://bucket/f", OwnerID: "worker-1"})
	var apiErr *client.APIError
	if !errors.Is(err, client.ErrFailedPrecondition) || !errors.As(err, &apiErr) || apiErr.Holder != nil {
		t.Fatalf("fenced put on a free key: %v", err)
	}
	held := e.reserve(ctx, key, "worker-1").Reservation
	e.reserve(ctx, key, "worker-2") // recorded for clean-up; not acquired
	// Another owner, or a stale fence, is refused and told who holds it.
	for name, in := range map[string]client.PutRequest{
		"other owner": {OutputURI: "s3://bucket/f", OwnerID: "worker-2"},
		"stale fence": {OutputURI: "s3://bucket/f", OwnerID: "worker-1", Fence: held.Fence - 1},
	} {
		_, err := e.c.Put(ctx, e.scope, key, in)
		if !errors.Is(err, client.ErrFailedPrecondition) || !errors.As(err, &apiErr) || apiErr.Holder == nil || apiErr.Holder.OwnerID != "worker-1" || apiErr.Holder.Fence != held.Fence {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// The holder stores and releases in one write.
	put := e.put(ctx, key, client.PutRequest{OutputURI: "s3://bucket/f", OwnerID: "worker-1", Fence: held.Fence, Release: true})
	if !put.Created || put.Entry.OutputURI != "s3://bucket/f" {
		t.Fatalf("fenced put = %+v", put)
	}
	if r := e.reserve(ctx, key, "worker-2"); !r.Acquired || r.Reservation.Fence <= held.Fence {
		t.Fatalf("the fenced put did not release: %+v", r)
	}
}
