// Package manager decides Stampede's cache and reservation policy: what a
// valid request is, when entries and reservations expire, how puts merge
// into existing entries, and how reservations are fenced. It knows nothing
// of Lambda, HTTP or DynamoDB; storage sits behind the Store interface and
// time behind an injected clock.
package manager

import (
	"context"
	"fmt"
	"time"
)

// Defaults follow Flyte's cache service.
const (
	DefaultHeartbeatMultiplier = 3
	DefaultHeartbeatInterval   = 10 * time.Second
	DefaultMaxHeartbeat        = 10 * time.Second
	// ReservationRetention is how long a released or expired reservation
	// record is kept before TTL may collect it. While the record exists its
	// fence counter keeps growing; after collection the next fence is seeded
	// from the clock (milliseconds), which is larger still.
	ReservationRetention = 24 * time.Hour
)

// Config tunes a Manager. Zero values take the defaults.
type Config struct {
	// HeartbeatMultiplier is how many heartbeats a reservation survives
	// without an extension.
	HeartbeatMultiplier int
	// MaxHeartbeat clamps the heartbeat interval callers ask for.
	MaxHeartbeat time.Duration
	// Clock returns the current instant; time.Now when nil.
	Clock func() time.Time
}

// Manager applies the policy and delegates storage to a Store.
type Manager struct {
	store        Store
	now          func() time.Time
	multiplier   int
	maxHeartbeat time.Duration
}

// New returns a Manager over store.
func New(store Store, cfg Config) (*Manager, error) {
	m := &Manager{
		store:        store,
		now:          cfg.Clock,
		multiplier:   cfg.HeartbeatMultiplier,
		maxHeartbeat: cfg.MaxHeartbeat,
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.multiplier == 0 {
		m.multiplier = DefaultHeartbeatMultiplier
	}
	if m.maxHeartbeat == 0 {
		m.maxHeartbeat = DefaultMaxHeartbeat
	}
	if m.multiplier < 1 {
		return nil, fmt.Errorf("heartbeat multiplier must be at least 1, got %d", m.multiplier)
	}
	if m.maxHeartbeat < time.Second {
		return nil, fmt.Errorf("maximum heartbeat must be at least 1s, got %s", m.maxHeartbeat)
	}
	return m, nil
}

// clock returns the current instant in UTC at the millisecond precision
// Stampede stores and compares.
func (m *Manager) clock() time.Time {
	return m.now().UTC().Truncate(time.Millisecond)
}

// Get returns the live entry for id, or a CodeNotFound error.
func (m *Manager) Get(ctx context.Context, id ID) (*Entry, error) {
	if err := id.Validate(); err != nil {
		return nil, err
	}
	e, err := m.store.GetEntry(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("get entry: %w", err)
	}
	// TTL deletion is lazy (often days late): expiry is decided here.
	if e == nil || !e.LiveAt(m.clock()) {
		return nil, Errorf(CodeNotFound, "key: no cached entry")
	}
	return e, nil
}

// PutRequest is what a caller asks a put to store.
type PutRequest struct {
	OutputURI string
	Metadata  Metadata
	// Overwrite replaces a live entry.
	Overwrite bool
	// MaxAgeSeconds, when set, lets a put replace a live entry last written
	// more than that many seconds ago even without Overwrite.
	MaxAgeSeconds *int64
	// TTLSeconds, when set, is the new entry's lifetime.
	TTLSeconds *int64
}

// PutResult is what a put did.
type PutResult struct {
	Entry Entry
	// Created is true when no live entry existed before the put.
	Created bool
}

// Put stores an entry in one conditional write. Without Overwrite (or an
// exceeded MaxAge) it fails with CodeAlreadyExists, carrying the live entry,
// when one exists: of concurrent puts on a new key exactly one wins.
func (m *Manager) Put(ctx context.Context, id ID, req PutRequest) (PutResult, error) {
	if err := id.Validate(); err != nil {
		return PutResult{}, err
	}
	if err := validateOutputURI(req.OutputURI); err != nil {
		return PutResult{}, err
	}
	if err := validateMetadata(req.Metadata); err != nil {
		return PutResult{}, err
	}
	maxAge, err := lifetime("max_age_seconds", req.MaxAgeSeconds, 0)
	if err != nil {
		return PutResult{}, err
	}
	ttl, err := lifetime("ttl_seconds", req.TTLSeconds, 1)
	if err != nil {
		return PutResult{}, err
	}
	now := m.clock()
	w := EntryWrite{
		ID:        id,
		OutputURI: req.OutputURI,
		Metadata:  req.Metadata,
		Now:       now,
		Overwrite: req.Overwrite,
	}
	if maxAge != nil {
		before := now.Add(-*maxAge)
		w.ReplaceUpdatedBefore = &before
	}
	if ttl != nil {
		exp := now.Add(*ttl)
		w.ExpiresAt = &exp
	}
	out, err := m.store.PutEntry(ctx, w)
	if err != nil {
		return PutResult{}, fmt.Errorf("put entry: %w", err)
	}
	if !out.Written {
		return PutResult{}, &Error{
			Code:     CodeAlreadyExists,
			Message:  "key: an entry exists; set overwrite or max_age_seconds to replace it",
			Existing: out.Previous,
		}
	}
	created := out.Previous == nil || !out.Previous.LiveAt(now)
	return PutResult{Entry: out.Entry, Created: created}, nil
}

// lifetime checks an optional number of seconds against [min,
// MaxLifetimeSeconds] and converts it to a duration.
func lifetime(field string, seconds *int64, min int64) (*time.Duration, error) {
	if seconds == nil {
		return nil, nil
	}
	if *seconds < min {
		return nil, Errorf(CodeInvalidArgument, "%s: must be at least %d", field, min)
	}
	if *seconds > MaxLifetimeSeconds {
		return nil, Errorf(CodeInvalidArgument, "%s: must be at most %d", field, MaxLifetimeSeconds)
	}
	d := time.Duration(*seconds) * time.Second
	return &d, nil
}

// Delete removes the entry for id. It reports whether a live entry was
// removed; deleting nothing is not an error. It never touches the output.
func (m *Manager) Delete(ctx context.Context, id ID) (bool, error) {
	if err := id.Validate(); err != nil {
		return false, err
	}
	old, err := m.store.DeleteEntry(ctx, id)
	if err != nil {
		return false, fmt.Errorf("delete entry: %w", err)
	}
	return old != nil && old.LiveAt(m.clock()), nil
}

// ReserveRequest asks for (or extends) the reservation of a key.
type ReserveRequest struct {
	OwnerID string
	// HeartbeatSeconds is how often the owner promises to extend; nil means
	// the default. It is clamped to the configured maximum.
	HeartbeatSeconds *int64
}

// ReserveResult says whether the caller holds the reservation. When
// Acquired is false, Reservation is the current holder's.
type ReserveResult struct {
	Reservation Reservation
	Acquired    bool
}

// Reserve gets or extends the reservation of id for req.OwnerID in one
// conditional write. It is acquired when the key has no live reservation or
// the caller already holds it; each new acquisition gets a larger fence than
// any earlier holder, an extension keeps its fence.
func (m *Manager) Reserve(ctx context.Context, id ID, req ReserveRequest) (ReserveResult, error) {
	if err := id.Validate(); err != nil {
		return ReserveResult{}, err
	}
	if err := validateText("owner_id", req.OwnerID, MaxOwnerIDBytes, true); err != nil {
		return ReserveResult{}, err
	}
	hb, err := m.effectiveHeartbeat(req.HeartbeatSeconds)
	if err != nil {
		return ReserveResult{}, err
	}
	now := m.clock()
	exp := now.Add(hb * time.Duration(m.multiplier))
	res, acquired, err := m.store.AcquireReservation(ctx, Acquisition{
		ID:                id,
		OwnerID:           req.OwnerID,
		HeartbeatInterval: hb,
		Now:               now,
		ExpiresAt:         exp,
		FenceBase:         now.UnixMilli(),
		KeepUntil:         exp.Add(ReservationRetention),
	})
	if err != nil {
		return ReserveResult{}, fmt.Errorf("acquire reservation: %w", err)
	}
	return ReserveResult{Reservation: res, Acquired: acquired}, nil
}

// effectiveHeartbeat applies the default and the clamp.
func (m *Manager) effectiveHeartbeat(seconds *int64) (time.Duration, error) {
	hb := DefaultHeartbeatInterval
	if seconds != nil {
		if *seconds < 1 {
			return 0, Errorf(CodeInvalidArgument, "heartbeat_interval_seconds: must be at least 1")
		}
		// Compare in seconds first: a huge value would overflow a Duration.
		if *seconds >= int64(m.maxHeartbeat/time.Second) {
			return m.maxHeartbeat, nil
		}
		hb = time.Duration(*seconds) * time.Second
	}
	return min(hb, m.maxHeartbeat), nil
}

// Release ends the caller's reservation of id. A missing reservation or one
// held by someone else is not an error: released is false and another
// owner's reservation is left alone.
func (m *Manager) Release(ctx context.Context, id ID, ownerID string) (bool, error) {
	if err := id.Validate(); err != nil {
		return false, err
	}
	if err := validateText("owner_id", ownerID, MaxOwnerIDBytes, true); err != nil {
		return false, err
	}
	released, err := m.store.ReleaseReservation(ctx, id, ownerID, m.clock().Add(ReservationRetention))
	if err != nil {
		return false, fmt.Errorf("release reservation: %w", err)
	}
	return released, nil
}
