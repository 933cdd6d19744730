package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stampede-cache/stampede/client"
)

// losingTransport delivers the first attempt of every mutating call to the
// server, then drops its response and reports a reset connection: the
// lost answer a real network produces now and then, on demand.
type losingTransport struct {
	mu   sync.Mutex
	seen map[string]bool
	lost int
}

func (l *losingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	key := r.Header.Get(client.IdempotencyKeyHeader)
	if err != nil || key == "" {
		return resp, err
	}
	l.mu.Lock()
	first := !l.seen[key]
	l.seen[key] = true
	if first {
		l.lost++
	}
	l.mu.Unlock()
	if !first {
		return resp, nil
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return nil, errors.New("connection reset by peer (the test dropped the response)")
}

// TestRetriedMutationsAnswerTheFirstOutcome: a mutating call whose first
// attempt landed but whose answer was lost is retried with the same
// Idempotency-Key, and answers what the first attempt earned (CONTRACT.md,
// issue 8). Against a server that does not honour the key yet, the retry
// meets the first attempt's own effect; the test then says so and skips.
func TestRetriedMutationsAnswerTheFirstOutcome(t *testing.T) {
	url := newServer(t, nil)
	lossy := &losingTransport{seen: map[string]bool{}}
	c := newClient(t, url, client.WithHTTPClient(&http.Client{Transport: lossy}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	notYet := func(what string) {
		t.Skipf("the server does not honour Idempotency-Key yet: a retried %s met its own first attempt", what)
	}

	put, err := c.Put(ctx, scope, "k", client.PutRequest{OutputURI: "s3://bucket/first"})
	var apiErr *client.APIError
	if errors.As(err, &apiErr) && apiErr.Code == client.CodeAlreadyExists && apiErr.Existing != nil && apiErr.Existing.OutputURI == "s3://bucket/first" {
		notYet("create")
	}
	if err != nil || !put.Created || put.Entry.OutputURI != "s3://bucket/first" {
		t.Fatalf("create: %+v, %v; want created", put, err)
	}
	res, err := c.Reserve(ctx, scope, "k", client.ReserveRequest{OwnerID: "me"})
	if err != nil || !res.Acquired {
		t.Fatalf("reserve: %+v, %v", res, err)
	}
	fenced, err := c.Put(ctx, scope, "k", client.PutRequest{OutputURI: "s3://bucket/second", Overwrite: true, OwnerID: "me", Fence: res.Reservation.Fence, Release: true})
	if errors.Is(err, client.ErrFailedPrecondition) {
		notYet("fenced put-and-release")
	}
	if err != nil || fenced.Entry.OutputURI != "s3://bucket/second" {
		t.Fatalf("fenced put: %+v, %v", fenced, err)
	}
	if _, err := c.Reserve(ctx, scope, "k", client.ReserveRequest{OwnerID: "me"}); err != nil {
		t.Fatal(err)
	}
	released, err := c.Release(ctx, scope, "k", client.ReleaseRequest{OwnerID: "me"})
	if err == nil && !released {
		notYet("release")
	}
	if err != nil {
		t.Fatalf("release: %v", err)
	}
	del, err := c.Delete(ctx, scope, "k", nil)
	if err == nil && !del.Deleted {
		notYet("delete")
	}
	if err != nil {
		t.Fatalf("delete: %v", err)
	}
	if lossy.lost != 6 {
		t.Fatalf("%d responses dropped, want 6", lossy.lost)
	}
}

// TestCallerIdempotencyKeyAccepted: keys given by the caller reach the
// server, which accepts them.
func TestCallerIdempotencyKeyAccepted(t *testing.T) {
	c := newClient(t, newServer(t, nil))
	ctx := context.Background()
	key := func(step string) string { return "job-7f3a/" + step }
	if _, err := c.Put(ctx, scope, "k", client.PutRequest{OutputURI: "s3://bucket/k", IdempotencyKey: key("put")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Reserve(ctx, scope, "k", client.ReserveRequest{OwnerID: "me", IdempotencyKey: key("reserve")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Release(ctx, scope, "k", client.ReleaseRequest{OwnerID: "me", IdempotencyKey: key("release")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Delete(ctx, scope, "k", &client.DeleteOptions{IdempotencyKey: key("delete")}); err != nil {
		t.Fatal(err)
	}
}
