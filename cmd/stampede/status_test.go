package main

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stampede-cache/stampede/client"
)

func TestRunStatusTerminal(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 30, 0, time.UTC)
	var buf bytes.Buffer
	s := &runStatus{w: &buf, tty: true, key: "k", now: func() time.Time { return now }}
	holder := &client.Reservation{OwnerID: "w1", Fence: 7, ExpiresAt: now.Add(25 * time.Second)}
	s.observe(client.Event{Kind: client.EventWaiting, Reservation: holder, HeldSince: now.Add(-12 * time.Second)})
	now = now.Add(time.Second)
	s.mu.Lock()
	s.renderLocked() // what the ticker does every second
	s.mu.Unlock()
	s.observe(client.Event{Kind: client.EventAcquired, Reservation: &client.Reservation{OwnerID: "me", Fence: 8}, Waited: true})
	s.close()
	want := "\r\033[2Kstampede run: waiting for \"k\": held by w1 (fence 7) for 12s, expires in 25s" +
		"\r\033[2Kstampede run: waiting for \"k\": held by w1 (fence 7) for 13s, expires in 24s" +
		"\r\033[2Kstampede run: took over \"k\" from w1 (fence 7); running the command as me (fence 8)\n"
	if buf.String() != want {
		t.Fatalf("got  %q\nwant %q", buf.String(), want)
	}
}

func TestRunStatusPlain(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	s := &runStatus{w: &buf, key: "k", now: func() time.Time { return now }}
	h1 := &client.Reservation{OwnerID: "w1", Fence: 7, ExpiresAt: now.Add(30 * time.Second)}
	for range 3 { // the same holder: one line
		s.observe(client.Event{Kind: client.EventWaiting, Reservation: h1, HeldSince: now})
		now = now.Add(time.Second)
	}
	now = now.Add(plainRepeat) // a reminder after a while
	s.observe(client.Event{Kind: client.EventWaiting, Reservation: h1, HeldSince: now.Add(-plainRepeat - 3*time.Second)})
	h2 := &client.Reservation{OwnerID: "w2", Fence: 8, ExpiresAt: now.Add(30 * time.Second)}
	s.observe(client.Event{Kind: client.EventWaiting, Reservation: h2, HeldSince: now})
	s.observe(client.Event{Kind: client.EventHit, Entry: &client.Entry{Version: 1}, Waited: true})
	s.close()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	want := []string{
		`stampede run: waiting for "k": held by w1 (fence 7) for 0s, expires at 2026-11-21T12:00:30.000Z`,
		`stampede run: waiting for "k": held by w1 (fence 7) for 33s, expires at 2026-11-21T12:00:30.000Z`,
		`stampede run: waiting for "k": held by w2 (fence 8) for 0s, expires at 2026-11-21T12:01:03.000Z`,
		`stampede run: "k" was computed by another owner (version 1)`,
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", buf.String(), strings.Join(want, "\n"))
	}
}

// TestRunStatusHeartbeatFailures: a failing heartbeat is reported once per
// reason, again after plainRepeat, and names the endpoint.
func TestRunStatusHeartbeatFailures(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	s := &runStatus{w: &buf, key: "k", endpoint: "http://127.0.0.1:8080", now: func() time.Time { return now }}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	for range 3 {
		s.observe(client.Event{Kind: client.EventHeartbeat, Err: refused})
		now = now.Add(time.Second)
	}
	now = now.Add(plainRepeat)
	s.observe(client.Event{Kind: client.EventHeartbeat, Err: refused})
	s.observe(client.Event{Kind: client.EventHeartbeat, Reservation: &client.Reservation{}})
	s.observe(client.Event{Kind: client.EventHeartbeat, Err: refused})
	s.observe(client.Event{Kind: client.EventLost})
	s.close()
	line := "stampede run: heartbeat failed (retrying): cannot reach http://127.0.0.1:8080: connect: connection refused\n"
	want := line + line + line + "stampede run: lost the reservation of \"k\" (it expired); stopping the command\n"
	if buf.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", buf.String(), want)
	}
}
