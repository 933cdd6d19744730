package manager

import (
	"context"
	"time"
)

// Store is the persistence the manager needs. Each method is exactly one
// request to the database and is decided there, atomically, by a condition:
// the manager supplies the policy (instants, thresholds, owners), the store
// turns it into conditions and reports what happened.
//
// Stores report facts, not application errors, except for faults of their
// own (throttling, unavailability, oversized items), which they return as
// *Error so the transport can answer with the right status.
type Store interface {
	// GetEntry returns the stored entry, expired or not, or nil when there is
	// none. The read is strongly consistent.
	GetEntry(ctx context.Context, id ID) (*Entry, error)

	// PutEntry writes w if the item is absent, expired at w.Now, or w allows
	// replacing what is there. Written is false when the condition failed;
	// Previous is then the blocking entry.
	PutEntry(ctx context.Context, w EntryWrite) (PutOutcome, error)

	// DeleteEntry removes the entry and returns what was there, or nil.
	DeleteEntry(ctx context.Context, id ID) (*Entry, error)

	// AcquireReservation takes or extends the reservation for a.OwnerID if it
	// is free, expired at a.Now, or already a.OwnerID's. When acquired is
	// false the returned reservation is the current holder's.
	AcquireReservation(ctx context.Context, a Acquisition) (r Reservation, acquired bool, err error)

	// ReleaseReservation ends the reservation if ownerID holds it. The record
	// is kept until keepUntil (so fences keep growing) and then collected.
	ReleaseReservation(ctx context.Context, id ID, ownerID string, keepUntil time.Time) (released bool, err error)
}

// EntryWrite is one put, with the policy already decided by the manager.
type EntryWrite struct {
	ID
	OutputURI string
	Metadata  Metadata
	Now       time.Time
	ExpiresAt *time.Time
	// Overwrite allows replacing a live entry unconditionally.
	Overwrite bool
	// ReplaceUpdatedBefore, when set, allows replacing a live entry whose
	// last write happened strictly before it.
	ReplaceUpdatedBefore *time.Time
}

// PutOutcome is what a put did.
type PutOutcome struct {
	Written bool
	// Entry is the entry as stored after a successful write.
	Entry Entry
	// Previous is what the item held before the write (possibly expired), or
	// the entry that blocked it; nil when the item was absent.
	Previous *Entry
}

// Acquisition is one get-or-extend request, with the policy decided.
type Acquisition struct {
	ID
	OwnerID           string
	HeartbeatInterval time.Duration
	Now               time.Time
	ExpiresAt         time.Time
	// FenceBase seeds the fence counter when the key has no reservation
	// record; the first holder gets FenceBase+1.
	FenceBase int64
	// KeepUntil is when the record may be garbage-collected.
	KeepUntil time.Time
}
