package transport

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stampede-cache/stampede/client"
	"github.com/stampede-cache/stampede/internal/manager"
)

// TestClientSpeaksTheWireFormat keeps the Go client's types and the
// transport's JSON bodies equal: every field the service writes, fully
// populated, survives a round trip through the client's type byte for byte
// (a field missing on either side, renamed or retyped, fails).
func TestClientSpeaksTheWireFormat(t *testing.T) {
	at := time.Date(2026, 11, 21, 12, 0, 0, 123e6, time.UTC)
	exp := at.Add(time.Hour)
	entry := toEntryJSON(&manager.Entry{
		ID:        manager.ID{Project: "ml", Domain: "dev", Key: "a/b"},
		OutputURI: "s3://bucket/k",
		Metadata: manager.Metadata{
			Source: &manager.Source{Project: "p", Domain: "d", Name: "n", Version: "v"},
			Labels: map[string]string{"team": "ml"},
		},
		CreatedAt: at, LastUpdatedAt: at, Version: 1763726700002, ExpiresAt: &exp,
	})
	reservation := toReservationJSON(&manager.Reservation{
		ID: manager.ID{Project: "ml", Domain: "dev", Key: "a/b"}, OwnerID: "w", HeartbeatInterval: 10 * time.Second,
		ExpiresAt: exp, Fence: 1763726700001,
	})
	for _, tt := range []struct {
		name  string
		wire  any
		typed any
	}{
		{"entry", entry, new(client.Entry)},
		{"reservation", reservation, new(client.Reservation)},
		{"reserve result", reserveResultJSON{Acquired: true, Reservation: *reservation, Entry: entry}, new(client.ReserveResult)},
		{"reserve result without an entry", reserveResultJSON{Reservation: *reservation}, new(client.ReserveResult)},
	} {
		want, err := json.Marshal(tt.wire)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(want, tt.typed); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		got, err := json.Marshal(tt.typed)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s: the service writes\n%s\nthe client's type holds\n%s", tt.name, want, got)
		}
	}
}

// TestClientKnowsTheWaitsHeader ties the header by which the local server
// says its waits are shared to the client's name for it.
func TestClientKnowsTheWaitsHeader(t *testing.T) {
	if WaitsHeader != client.WaitsHeader || WaitsShared != client.WaitsShared {
		t.Fatalf("transport sends %s: %s, the client reads %s: %s", WaitsHeader, WaitsShared, client.WaitsHeader, client.WaitsShared)
	}
}
