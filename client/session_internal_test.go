package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"
)

// versionAPI is a scripted API for session tests: it answers gets and puts
// with entries at the version it is set to, records each get's query, and
// says which read served a get as the service does. It stands in for an
// eventually consistent replica, which DynamoDB Local (always strongly
// consistent) cannot play.
type versionAPI struct {
	mu      sync.Mutex
	version int64
	missing bool
	queries []url.Values
}

func (a *versionAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	entry := func() string {
		return `{"project":"p","domain":"d","key":"k","output_uri":"s3://bucket/k","metadata":{},"created_at":"2026-01-02T03:04:05.000Z","last_updated_at":"2026-01-02T03:04:05.000Z","version":` + strconv.FormatInt(a.version, 10) + `}`
	}
	switch r.Method {
	case http.MethodGet:
		q := r.URL.Query()
		a.queries = append(a.queries, q)
		read := "strong"
		if q.Get("consistency") == "eventual" {
			read = "eventual"
		}
		w.Header().Set("Stampede-Read", read)
		if a.missing {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":{"code":"not_found","message":"key: no cached entry"}}`))
			return
		}
		_, _ = w.Write([]byte(entry()))
	case http.MethodPut:
		a.missing = false
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(entry()))
	case http.MethodDelete:
		a.missing = true
		_, _ = w.Write([]byte(`{"deleted":true}`))
	}
}

func (a *versionAPI) set(version int64) {
	a.mu.Lock()
	a.version = version
	a.mu.Unlock()
}

// lastQuery returns the last get's query.
func (a *versionAPI) lastQuery() url.Values {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.queries[len(a.queries)-1]
}

func TestSessionGuarantees(t *testing.T) {
	a := &versionAPI{}
	srv := httptest.NewServer(a)
	defer srv.Close()
	c, err := New(srv.URL, WithSessionKeys(2))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	eventual := &GetOptions{Consistency: ConsistencyEventual}
	read := func(key string, o *GetOptions) url.Values {
		t.Helper()
		_, _ = c.Get(ctx, scope, key, o)
		return a.lastQuery()
	}
	// Clock-derived versions are large.
	const v = 1763773200124

	if q := read("k", eventual); q.Get("min_version") != "" {
		t.Fatalf("nothing seen yet, but min_version=%s", q.Get("min_version"))
	}
	// Read your writes.
	a.set(v)
	if _, err := c.Put(ctx, scope, "k", PutRequest{OutputURI: "s3://bucket/k"}); err != nil {
		t.Fatal(err)
	}
	if q := read("k", eventual); q.Get("min_version") != strconv.FormatInt(v, 10) || q.Get("consistency") != "eventual" {
		t.Fatalf("after writing %d: %v", v, q)
	}
	// Monotonic reads: a strong read saw a newer version.
	a.set(v + 5)
	read("k", nil)
	if q := read("k", eventual); q.Get("min_version") != strconv.FormatInt(v+5, 10) {
		t.Fatalf("after reading %d: %v", v+5, q)
	}
	// A stale answer does not lower what was seen.
	a.set(v + 1)
	read("k", eventual)
	if q := read("k", &GetOptions{MaxStaleness: time.Second}); q.Get("min_version") != strconv.FormatInt(v+5, 10) || q.Get("max_staleness_ms") != "1000" {
		t.Fatalf("after a stale read: %v", q)
	}
	// A caller's larger min_version is kept.
	if q := read("k", &GetOptions{Consistency: ConsistencyEventual, MinVersion: v + 9}); q.Get("min_version") != strconv.FormatInt(v+9, 10) {
		t.Fatalf("caller's min_version: %v", q)
	}
	// Read your deletes: no response names the deletion's version, so the
	// key is read strongly until a newer entry is seen.
	if _, err := c.Delete(ctx, scope, "k", nil); err != nil {
		t.Fatal(err)
	}
	if q := read("k", eventual); len(q) != 0 {
		t.Fatalf("after a delete: %v, want a plain strong read", q)
	}
	a.set(v + 7)
	if _, err := c.Put(ctx, scope, "k", PutRequest{OutputURI: "s3://bucket/k"}); err != nil {
		t.Fatal(err)
	}
	if q := read("k", eventual); q.Get("min_version") != strconv.FormatInt(v+7, 10) {
		t.Fatalf("after a new write: %v", q)
	}
	// A strong miss is news; an eventual one is not.
	a.mu.Lock()
	a.missing = true
	a.mu.Unlock()
	read("k", eventual)
	if q := read("k", eventual); q.Get("consistency") != "eventual" {
		t.Fatalf("an eventual miss was taken for a deletion: %v", q)
	}
	read("k", nil)
	if q := read("k", eventual); len(q) != 0 {
		t.Fatalf("after a strong miss: %v, want a strong read", q)
	}
	a.mu.Lock()
	a.missing = false
	a.mu.Unlock()

	// Bounded: with room for two keys, the least recently used goes.
	for _, k := range []string{"a", "b"} {
		if _, err := c.Put(ctx, scope, k, PutRequest{OutputURI: "s3://bucket/k"}); err != nil {
			t.Fatal(err)
		}
	}
	if q := read("k", eventual); q.Get("min_version") != "" {
		t.Fatalf("an evicted key still has min_version: %v", q)
	}
	if q := read("b", eventual); q.Get("min_version") == "" {
		t.Fatalf("a remembered key lost its version: %v", q)
	}

	// Off.
	off, err := New(srv.URL, WithSessionKeys(0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := off.Put(ctx, scope, "k", PutRequest{OutputURI: "s3://bucket/k"}); err != nil {
		t.Fatal(err)
	}
	_, _ = off.Get(ctx, scope, "k", eventual)
	if q := a.lastQuery(); q.Get("min_version") != "" {
		t.Fatalf("session off, but min_version sent: %v", q)
	}
}
