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
	// none. consistent selects a strongly consistent read.
	GetEntry(ctx context.Context, id ID, consistent bool) (*Entry, error)

	// PutEntry writes w if every condition w carries holds. Written is false
	// when one failed; the outcome then holds the item's state so the
	// manager can say which.
	PutEntry(ctx context.Context, w EntryWrite) (PutOutcome, error)

	// DeleteEntry removes the entry if there is one and d's conditions hold,
	// leaving the key's reservation alone.
	DeleteEntry(ctx context.Context, d EntryDelete) (DeleteOutcome, error)

	// AcquireReservation takes or extends the reservation for a.OwnerID if it
	// is free, expired at a.Now, or already a.OwnerID's. When acquired is
	// false the returned reservation is the current holder's.
	AcquireReservation(ctx context.Context, a Acquisition) (r Reservation, acquired bool, err error)

	// ReleaseReservation ends the reservation if ownerID holds it. The key's
	// fence is kept so later holders still get larger ones.
	ReleaseReservation(ctx context.Context, id ID, ownerID string, keepUntil time.Time) (released bool, err error)
}

// EntryWrite is one put, with the policy already decided by the manager.
// All of its conditions must hold for the write to happen.
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
	// IfVersion, when set, requires a live entry with exactly this version
	// (compare-and-set); it allows replacing it.
	IfVersion *int64
	// Holder, when set, requires that Holder.OwnerID holds the key's live
	// reservation (fencing).
	Holder *HolderCondition
	// PreviousInBuckets, when set, requires that a live entry being replaced
	// points into one of these buckets (its object will be deleted).
	PreviousInBuckets []string
	// KeepUntil is when the item may be garbage-collected: after the entry
	// expires (plus a retention), or never (nil) for an entry that does not.
	KeepUntil *time.Time
}

// HolderCondition is a fenced write's requirement on the reservation.
type HolderCondition struct {
	OwnerID string
	// Fence, when set, must equal the reservation's fence.
	Fence *int64
	// Release ends the reservation in the same write.
	Release bool
}

// PutOutcome is what a put did or why it did not.
type PutOutcome struct {
	Written bool
	// Entry is the entry as stored after a successful write.
	Entry Entry
	// Previous is the entry the item held before (possibly expired), or nil.
	Previous *Entry
	// Reservation is the item's reservation before the write, or nil.
	Reservation *Reservation
}

// EntryDelete is one delete, with the policy decided.
type EntryDelete struct {
	ID
	Now time.Time
	// IfVersion, when set, requires a live entry with this version.
	IfVersion *int64
	// OnlyVersion, when set, requires the entry (live or not) to have this
	// version: the removal of a dangling entry must not remove a newer one.
	OnlyVersion *int64
	// OutputInBuckets, when set, requires the entry's output to be in one of
	// these buckets (its object will be deleted).
	OutputInBuckets []string
	// KeepUntil is when the item may be garbage-collected once the entry is
	// gone: late enough for any reservation on the key to end first.
	KeepUntil time.Time
}

// DeleteOutcome is what a delete did.
type DeleteOutcome struct {
	// Removed is true when an entry was removed.
	Removed bool
	// Previous is the entry before the delete (removed or blocking), or nil.
	Previous *Entry
}

// Acquisition is one get-or-extend request, with the policy decided.
type Acquisition struct {
	ID
	OwnerID           string
	HeartbeatInterval time.Duration
	Now               time.Time
	ExpiresAt         time.Time
	// FenceBase seeds the fence counter when the key has none; the first
	// holder gets FenceBase+1.
	FenceBase int64
	// KeepUntil is when the item may be garbage-collected if it holds no
	// entry that must outlive it.
	KeepUntil time.Time
}
