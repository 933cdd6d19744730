package client

import (
	"encoding/json"
	"fmt"
	"time"
)

// Scope is the project and domain a key lives in.
type Scope struct {
	Project string
	Domain  string
}

// Entry records where a task's output lives. Stampede stores only its URI
// and metadata, never the output itself.
type Entry struct {
	Project   string
	Domain    string
	Key       string
	OutputURI string
	Metadata  Metadata
	CreatedAt time.Time
	// LastUpdatedAt is the instant of the last write (a put that created or
	// overwrote the entry).
	LastUpdatedAt time.Time
	// Version grows by one on every write of the key, across deletes too,
	// from a large clock-derived first value: treat it as an opaque,
	// ordered number (the ETag is its quoted decimal form).
	Version int64
	// ExpiresAt is the instant the entry stops being served; zero when the
	// entry does not expire.
	ExpiresAt time.Time
}

// Metadata describes an output: what produced it and free-form labels.
type Metadata struct {
	Source *Source           `json:"source,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
}

// Source identifies the task that produced an output.
type Source struct {
	Project string `json:"project,omitempty"`
	Domain  string `json:"domain,omitempty"`
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"`
}

// Reservation is a heartbeat lease on a key: while it is live its owner is
// computing the entry and everyone else waits.
type Reservation struct {
	Project string
	Domain  string
	Key     string
	OwnerID string
	// HeartbeatInterval is how often the owner must extend the reservation
	// (the server clamps what callers ask for). The reservation expires
	// after a few missed heartbeats (the server's multiplier, 3 by default).
	HeartbeatInterval time.Duration
	ExpiresAt         time.Time
	// Fence is larger for every new acquisition of the key than for any
	// earlier holder; an extension keeps it. Downstream systems can refuse
	// writes carrying a smaller fence.
	Fence int64
}

// timeLayout is the wire format of instants: RFC 3339 in UTC with
// milliseconds.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// wireTime is a time.Time in timeLayout.
type wireTime time.Time

func (t wireTime) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Format(timeLayout) + `"`), nil
}

func (t *wireTime) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("invalid time %q: %w", s, err)
	}
	*t = wireTime(v.UTC())
	return nil
}

// entryJSON is an entry on the wire.
type entryJSON struct {
	Project       string    `json:"project"`
	Domain        string    `json:"domain"`
	Key           string    `json:"key"`
	OutputURI     string    `json:"output_uri"`
	Metadata      Metadata  `json:"metadata"`
	CreatedAt     wireTime  `json:"created_at"`
	LastUpdatedAt wireTime  `json:"last_updated_at"`
	Version       int64     `json:"version"`
	ExpiresAt     *wireTime `json:"expires_at,omitempty"`
}

// MarshalJSON renders the entry as the service does.
func (e Entry) MarshalJSON() ([]byte, error) {
	w := entryJSON{
		Project:       e.Project,
		Domain:        e.Domain,
		Key:           e.Key,
		OutputURI:     e.OutputURI,
		Metadata:      e.Metadata,
		CreatedAt:     wireTime(e.CreatedAt),
		LastUpdatedAt: wireTime(e.LastUpdatedAt),
		Version:       e.Version,
	}
	if !e.ExpiresAt.IsZero() {
		t := wireTime(e.ExpiresAt)
		w.ExpiresAt = &t
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads the service's rendering of an entry.
func (e *Entry) UnmarshalJSON(b []byte) error {
	var w entryJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*e = Entry{
		Project:       w.Project,
		Domain:        w.Domain,
		Key:           w.Key,
		OutputURI:     w.OutputURI,
		Metadata:      w.Metadata,
		CreatedAt:     time.Time(w.CreatedAt),
		LastUpdatedAt: time.Time(w.LastUpdatedAt),
		Version:       w.Version,
	}
	if w.ExpiresAt != nil {
		e.ExpiresAt = time.Time(*w.ExpiresAt)
	}
	return nil
}

// reservationJSON is a reservation on the wire.
type reservationJSON struct {
	Project          string   `json:"project"`
	Domain           string   `json:"domain"`
	Key              string   `json:"key"`
	OwnerID          string   `json:"owner_id"`
	HeartbeatSeconds int64    `json:"heartbeat_interval_seconds"`
	ExpiresAt        wireTime `json:"expires_at"`
	Fence            int64    `json:"fence"`
}

// MarshalJSON renders the reservation as the service does.
func (r Reservation) MarshalJSON() ([]byte, error) {
	return json.Marshal(reservationJSON{
		Project:          r.Project,
		Domain:           r.Domain,
		Key:              r.Key,
		OwnerID:          r.OwnerID,
		HeartbeatSeconds: int64(r.HeartbeatInterval / time.Second),
		ExpiresAt:        wireTime(r.ExpiresAt),
		Fence:            r.Fence,
	})
}

// UnmarshalJSON reads the service's rendering of a reservation.
func (r *Reservation) UnmarshalJSON(b []byte) error {
	var w reservationJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*r = Reservation{
		Project:           w.Project,
		Domain:            w.Domain,
		Key:               w.Key,
		OwnerID:           w.OwnerID,
		HeartbeatInterval: time.Duration(w.HeartbeatSeconds) * time.Second,
		ExpiresAt:         time.Time(w.ExpiresAt),
		Fence:             w.Fence,
	}
	return nil
}

// PutResult is what a put did.
type PutResult struct {
	Entry Entry `json:"entry"`
	// Created is true when no live entry existed before the put (HTTP 201),
	// false when the put replaced one (HTTP 200).
	Created bool `json:"created"`
	// OutputDeleteFailed, with DeleteBlob, reports that the replaced output
	// object could not be deleted (the put succeeded; the object is
	// orphaned).
	OutputDeleteFailed bool `json:"output_delete_failed,omitempty"`
}

// ReserveResult says whether the caller holds the reservation.
type ReserveResult struct {
	// Acquired is true when the caller holds the reservation: it was free,
	// expired, or already the caller's (then this call extended it).
	Acquired bool `json:"acquired"`
	// Reservation is the caller's when Acquired, else the current holder's.
	Reservation Reservation `json:"reservation"`
	// Entry is the key's live entry when the reservation was decided (from
	// the same write: no extra request), nil when there was none or the
	// service is older than the field (EntryKnown).
	Entry *Entry `json:"entry"`
	// EntryKnown is true when the service reported the entry (nil
	// included); an older service does not, and then a nil Entry says
	// nothing.
	EntryKnown bool `json:"-"`
	// LeaseDeadline, when Acquired, is the instant (this client's clock)
	// until which the caller can count on holding the reservation: counted
	// from when the request was sent, never from when the answer arrived
	// (see docs/client.md, Leases). Extend well before it. Zero when not
	// acquired.
	LeaseDeadline time.Time `json:"-"`
	// sent is when the reserve was sent.
	sent time.Time
}
