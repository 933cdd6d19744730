package manager

import (
	"context"
	"fmt"
	"time"
)

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
	// TookOver is true when the caller replaced an owner whose reservation
	// had expired.
	TookOver bool
	// Entry is the key's live entry when the reservation was decided, nil
	// when there was none: a caller about to compute finds a result that
	// landed since it last looked without another read.
	Entry *Entry
}

// Reserve gets or extends the reservation of id for req.OwnerID in one
// conditional write, or none when it shares a concurrent caller's
// (contention.go). It is acquired when the key has no live reservation or
// the caller already holds it; each new acquisition gets a larger fence than
// any earlier holder, an extension keeps its fence. Retrying it is safe: a
// retry by the same owner is an extension.
//
// The lease is measured from a clock read just before the write, and a
// lease that has already run out when the answer is ready is not granted:
// the answer is CodeUnavailable instead (the key is free again; retry).
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
	out, a, err := m.acquire(ctx, id, req.OwnerID, func() Acquisition {
		now := m.clock()
		exp := now.Add(hb * time.Duration(m.multiplier))
		return Acquisition{
			ID:                id,
			OwnerID:           req.OwnerID,
			HeartbeatInterval: hb,
			Now:               now,
			ExpiresAt:         exp,
			FenceBase:         now.UnixMilli(),
			KeepUntil:         exp.Add(ReservationRetention),
		}
	})
	if err != nil {
		return ReserveResult{}, fmt.Errorf("acquire reservation: %w", err)
	}
	now := m.clock()
	if out.Acquired && !a.ExpiresAt.After(now) {
		return ReserveResult{}, Errorf(CodeUnavailable, "the reservation was granted too late to be of use (the store answered after the lease ran out); retry")
	}
	if out.Entry != nil && !out.Entry.LiveAt(now) {
		out.Entry = nil
	}
	return ReserveResult(out), nil
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
