package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a scripted API that records each request's method and
// Idempotency-Key. It answers each logical call with failures first (503),
// then a success, so retries can be observed: the fault a real server does
// not produce on demand.
type recorder struct {
	mu       sync.Mutex
	requests []recorded
	// failFirst is how many attempts of each call fail before one succeeds.
	failFirst int
	seen      map[string]int
}

type recorded struct {
	method, path, key string
	hasKey            bool
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	key, hasKey := req.Header[IdempotencyKeyHeader]
	rec := recorded{method: req.Method, path: req.URL.Path, hasKey: hasKey}
	if hasKey {
		rec.key = key[0]
	}
	r.mu.Lock()
	r.requests = append(r.requests, rec)
	if r.seen == nil {
		r.seen = map[string]int{}
	}
	r.seen[rec.key]++
	fail := r.seen[rec.key] <= r.failFirst
	r.mu.Unlock()
	if fail {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":{"code":"unavailable","message":"try again"}}`))
		return
	}
	switch {
	case req.Method == http.MethodPut:
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(okEntry))
	case req.Method == http.MethodPost:
		_, _ = w.Write([]byte(`{"acquired":true,"reservation":{"project":"p","domain":"d","key":"k","owner_id":"o","heartbeat_interval_seconds":10,"expires_at":"` +
			time.Now().Add(30*time.Second).UTC().Format(timeLayout) + `","fence":1}}`))
	case req.Method == http.MethodDelete && strings.Contains(req.URL.Path, "/reservations/"):
		_, _ = w.Write([]byte(`{"released":true}`))
	case req.Method == http.MethodDelete:
		_, _ = w.Write([]byte(`{"deleted":true}`))
	default:
		_, _ = w.Write([]byte(okEntry))
	}
}

func recorderClient(t *testing.T, r *recorder) *Client {
	t.Helper()
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	c, err := New(srv.URL, WithRetry(4, time.Millisecond, 2*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var mutationNames = []string{"put", "delete", "reserve", "release"}

// mutations are the four mutating calls, with an optional caller key.
func mutations(c *Client, key string) map[string]func(context.Context) error {
	return map[string]func(context.Context) error{
		"put": func(ctx context.Context) error {
			_, err := c.Put(ctx, scope, "k", PutRequest{OutputURI: "s3://bucket/k", IdempotencyKey: key})
			return err
		},
		"delete": func(ctx context.Context) error {
			_, err := c.Delete(ctx, scope, "k", &DeleteOptions{IdempotencyKey: key})
			return err
		},
		"reserve": func(ctx context.Context) error {
			_, err := c.Reserve(ctx, scope, "k", ReserveRequest{OwnerID: "o", IdempotencyKey: key})
			return err
		},
		"release": func(ctx context.Context) error {
			_, err := c.Release(ctx, scope, "k", ReleaseRequest{OwnerID: "o", IdempotencyKey: key})
			return err
		},
	}
}

// TestIdempotencyKeyPerCall: every attempt of a mutating call carries the
// same valid key; two calls carry different keys; reads carry none.
func TestIdempotencyKeyPerCall(t *testing.T) {
	ctx := context.Background()
	for _, name := range mutationNames {
		t.Run(name, func(t *testing.T) {
			r := &recorder{failFirst: 2}
			c := recorderClient(t, r)
			call := mutations(c, "")[name]
			for range 2 {
				if err := call(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if len(r.requests) != 6 {
				t.Fatalf("%d requests, want 3 attempts × 2 calls: %+v", len(r.requests), r.requests)
			}
			first, second := r.requests[0].key, r.requests[3].key
			for i, rec := range r.requests {
				want := first
				if i >= 3 {
					want = second
				}
				if !rec.hasKey || rec.key != want {
					t.Errorf("attempt %d: key %q, want %q", i, rec.key, want)
				}
				if err := validIdempotencyKey(rec.key); err != nil {
					t.Errorf("attempt %d: %v", i, err)
				}
			}
			if first == second {
				t.Errorf("two calls shared the key %q", first)
			}
		})
	}
	r := &recorder{}
	c := recorderClient(t, r)
	if _, err := c.Get(ctx, scope, "k", nil); err != nil {
		t.Fatal(err)
	}
	if r.requests[0].hasKey {
		t.Errorf("a get carried an Idempotency-Key")
	}
}

// TestCallerIdempotencyKey: a caller's key is sent as given; an invalid one
// is refused before anything is sent, naming the header.
func TestCallerIdempotencyKey(t *testing.T) {
	ctx := context.Background()
	valid := "run-42/step:store!" + strings.Repeat("~", 200)
	for _, tc := range []struct {
		name, key string
		ok        bool
	}{
		{"visible ASCII", valid, true},
		{"one character", "!", true},
		{"255 characters", strings.Repeat("k", 255), true},
		{"256 characters", strings.Repeat("k", 256), false},
		{"space", "a b", false},
		{"tab", "a\tb", false},
		{"DEL", "a\x7fb", false},
		{"non-ASCII", "clé", false},
		{"newline", "a\nb", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, name := range mutationNames {
				r := &recorder{}
				c := recorderClient(t, r)
				err := mutations(c, tc.key)[name](ctx)
				if !tc.ok {
					var apiErr *APIError
					if !errors.Is(err, ErrInvalidArgument) || !errors.As(err, &apiErr) || !strings.HasPrefix(apiErr.Message, "Idempotency-Key: ") {
						t.Fatalf("%s: err = %v, want invalid_argument naming Idempotency-Key", name, err)
					}
					if len(r.requests) != 0 {
						t.Fatalf("%s: sent %d requests", name, len(r.requests))
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if len(r.requests) != 1 || r.requests[0].key != tc.key {
					t.Fatalf("%s: sent %+v", name, r.requests)
				}
			}
		})
	}
	if k := NewIdempotencyKey(); validIdempotencyKey(k) != nil || k == NewIdempotencyKey() {
		t.Fatalf("NewIdempotencyKey() = %q", k)
	}
}
