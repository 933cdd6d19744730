package manager

import (
	"context"
	"fmt"
)

// ReleaseRequest ends a reservation.
type ReleaseRequest struct {
	OwnerID string
	// IdempotencyKey, when set, identifies the request across re-sends.
	IdempotencyKey string `json:"-"`
}

// Release ends the caller's reservation of id. A missing reservation or one
// held by someone else is not an error: released is false and another
// owner's reservation is left alone. A retry of a release that landed
// answers true.
func (m *Manager) Release(ctx context.Context, id ID, req ReleaseRequest) (bool, error) {
	if err := id.Validate(); err != nil {
		return false, err
	}
	if err := validateText("owner_id", req.OwnerID, MaxOwnerIDBytes, true); err != nil {
		return false, err
	}
	if err := validateIdempotencyKey("idempotency_key", req.IdempotencyKey); err != nil {
		return false, err
	}
	token, err := newToken("release", id, req.IdempotencyKey, req)
	if err != nil {
		return false, err
	}
	now := m.clock()
	out, err := m.store.ReleaseReservation(ctx, ReservationRelease{
		ID:        id,
		Token:     token,
		OwnerID:   req.OwnerID,
		Now:       now,
		KeepUntil: now.Add(ReservationRetention),
	})
	if err != nil {
		return false, fmt.Errorf("release reservation: %w", err)
	}
	return out.Released, nil
}
