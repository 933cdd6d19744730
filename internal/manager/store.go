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
	AcquireReservation(ctx context.Context, a Acquisition) (AcquireOutcome, error)

	// ReleaseReservation ends the reservation if r.OwnerID holds it. The
	// key's fence is kept so later holders still get larger ones.
	ReleaseReservation(ctx context.Context, r ReservationRelease) (ReleaseOutcome, error)

	// GetReservation returns the key's reservation, live or expired, or nil
	// when there is none. It changes nothing.
	GetReservation(ctx context.Context, id ID) (*Reservation, error)
}

// Token identifies one logical write across all of its attempts: the SDK's
// retries inside a request and a caller's re-sends of it. The store records
// the tokens of the last RecentWrites successful writes of a key in the same
// conditional write, never applies a write whose token it holds, and hands
// back what it recorded so the manager answers a retry as the first attempt
// was answered.
type Token string

// RecentWrites is how many successful writes of a key the store remembers
// by token. A retry is recognised while fewer than this many other writes
// of the key have succeeded since its first attempt.
const RecentWrites = 4

// PriorWrite is what the store recorded of a successful write when a retry
// with the same token finds it.
type PriorWrite struct {
	// At is the instant the write was decided with.
	At time.Time
	// Version is the key's version after the write.
	Version int64
	// HadEntry is true when an entry (live or expired) existed before.
	HadEntry bool
	// PriorCreatedAt and PriorExpiresAt describe that entry.
	PriorCreatedAt time.Time
	PriorExpiresAt *time.Time
	// PriorOutputURI is the replaced or deleted entry's output, recorded only
	// when the write deletes it afterwards (delete_blob).
	PriorOutputURI string
}

// ReplacedLive reports whether the write replaced (or removed) an entry
// that was live when the write was decided.
func (p PriorWrite) ReplacedLive() bool {
	return p.HadEntry && (p.PriorExpiresAt == nil || p.PriorExpiresAt.After(p.At))
}

// EntryWrite is one put, with the policy already decided by the manager.
// All of its conditions must hold for the write to happen.
type EntryWrite struct {
	ID
	Token     Token
	OutputURI string
	Metadata  Metadata
	Now       time.Time
	ExpiresAt *time.Time
	// VersionBase seeds the key's version counter when the key has none (a
	// new or garbage-collected item): the first version is VersionBase+1.
	// Seeded from the clock, versions keep growing across collection.
	VersionBase int64
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
	// PreviousUnder, when set, requires that a live entry being replaced
	// has an output URI starting with one of these prefixes (its object will
	// be deleted).
	PreviousUnder []string
	// KeepUntil is when the item may be garbage-collected: after the entry
	// expires and any reservation taken while it lived has ended (plus a
	// retention), or never (nil) for an entry that does not expire.
	KeepUntil *time.Time
	// RecordPriorOutput records the replaced entry's output URI with the
	// token, so a retry can still delete it (delete_blob).
	RecordPriorOutput bool
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
	// Replay, when set, means the write had already been applied by an
	// earlier attempt with the same token; it holds what was recorded then.
	Replay *PriorWrite
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
	Token Token
	Now   time.Time
	// IfVersion, when set, requires a live entry with this version.
	IfVersion *int64
	// OnlyVersion, when set, requires the entry (live or not) to have this
	// version: the removal of a dangling entry must not remove a newer one.
	OnlyVersion *int64
	// OutputUnder, when set, requires the entry's output URI to start with
	// one of these prefixes (its object will be deleted).
	OutputUnder []string
	// KeepUntil is when the item may be garbage-collected once the entry is
	// gone: late enough for any reservation on the key to end first.
	KeepUntil time.Time
}

// DeleteOutcome is what a delete did.
type DeleteOutcome struct {
	// Removed is true when an entry was removed.
	Removed bool
	// Replay, when set, means an earlier attempt with the same token removed
	// it; it holds what was recorded then.
	Replay *PriorWrite
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

// AcquireOutcome is what a get-or-extend did.
type AcquireOutcome struct {
	// Reservation is the caller's when Acquired, else the current holder's.
	Reservation Reservation
	Acquired    bool
	// TookOver is true when the caller replaced another owner whose
	// reservation had expired.
	TookOver bool
	// Entry is the key's entry when the write was decided (the same
	// returned item: no extra request), live or not; nil when none.
	Entry *Entry
}

// ReservationRelease is one release, with the policy decided.
type ReservationRelease struct {
	ID
	Token   Token
	OwnerID string
	Now     time.Time
	// KeepUntil is when the item may be garbage-collected if it holds no
	// entry that must outlive it.
	KeepUntil time.Time
}

// ReleaseOutcome is what a release did.
type ReleaseOutcome struct {
	Released bool
	// Replayed is true when an earlier attempt with the same token released it.
	Replayed bool
}
