package client

import (
	"context"
	"net/http"
	"testing"
	"time"
)

func TestLeaseDeadline(t *testing.T) {
	sent := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	hb := 10 * time.Second
	for _, tc := range []struct {
		name string
		// rtt is the round trip; expiresIn is expires_at minus the instant
		// the answer arrived, by the client's clock.
		rtt, expiresIn time.Duration
		ownKey         bool
		want           time.Duration // after sent
	}{
		{"fast answer: the lifetime left, from when it was sent", 20 * time.Millisecond, 29980 * time.Millisecond, true, 29980 * time.Millisecond},
		{"slow answer: the round trip comes off", 5 * time.Second, 25 * time.Second, true, 25 * time.Second},
		{"client clock behind: never more than three heartbeats", time.Second, 90 * time.Second, true, 30 * time.Second},
		{"client clock ahead: at least one heartbeat with our own key", time.Second, -time.Minute, true, 10 * time.Second},
		{"client clock ahead, caller's key: the answer may be old", time.Second, -time.Minute, false, -time.Minute},
		{"replayed old acquisition with the caller's key", time.Second, 3 * time.Second, false, 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			received := sent.Add(tc.rtt)
			r := Reservation{HeartbeatInterval: hb, ExpiresAt: received.Add(tc.expiresIn)}
			if got := leaseDeadline(r, sent, received, tc.ownKey).Sub(sent); got != tc.want {
				t.Fatalf("lease = sent + %s, want sent + %s", got, tc.want)
			}
		})
	}
}

// TestReserveCountsLeaseFromSending: a reserve answered late by a server
// that decided at once gets a lease that ends before the server's
// expires_at by at least the delay.
func TestReserveCountsLeaseFromSending(t *testing.T) {
	const delay = 300 * time.Millisecond
	var expiresAt time.Time
	f := &fakeAPI{responses: []func(http.ResponseWriter, *http.Request){func(w http.ResponseWriter, _ *http.Request) {
		// The server decides on arrival, then its answer is slow to come.
		expiresAt = time.Now().Add(3 * time.Second).Truncate(time.Millisecond)
		time.Sleep(delay)
		_, _ = w.Write([]byte(`{"acquired":true,"reservation":{"project":"p","domain":"d","key":"k","owner_id":"o","heartbeat_interval_seconds":1,"expires_at":"` +
			expiresAt.UTC().Format(timeLayout) + `","fence":1}}`))
	}}}
	c := fakeClient(t, f)
	before := time.Now()
	res, err := c.Reserve(context.Background(), scope, "k", ReserveRequest{OwnerID: "o"})
	if err != nil {
		t.Fatal(err)
	}
	if res.LeaseDeadline.IsZero() || res.LeaseDeadline.Before(before) {
		t.Fatalf("lease deadline %s", res.LeaseDeadline)
	}
	if limit := expiresAt.Add(-delay); res.LeaseDeadline.After(limit) {
		t.Fatalf("lease deadline %s is later than expires_at − delay %s", res.LeaseDeadline.Format(time.RFC3339Nano), limit.Format(time.RFC3339Nano))
	}
	notAcquired := &fakeAPI{responses: []func(http.ResponseWriter, *http.Request){status(200,
		`{"acquired":false,"reservation":{"project":"p","domain":"d","key":"k","owner_id":"x","heartbeat_interval_seconds":1,"expires_at":"2030-01-01T00:00:00.000Z","fence":1}}`)}}
	res, err = fakeClient(t, notAcquired).Reserve(context.Background(), scope, "k", ReserveRequest{OwnerID: "o"})
	if err != nil || !res.LeaseDeadline.IsZero() {
		t.Fatalf("not acquired: lease deadline %s, %v", res.LeaseDeadline, err)
	}
}
