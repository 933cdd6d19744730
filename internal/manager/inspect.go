package manager

import (
	"context"
	"fmt"
)

// Inspect returns the key's live reservation without changing anything, or
// a CodeNotFound error when nobody holds it.
func (m *Manager) Inspect(ctx context.Context, id ID) (Reservation, error) {
	if err := id.Validate(); err != nil {
		return Reservation{}, err
	}
	now := m.clock()
	r, err := m.store.GetReservation(ctx, id)
	if err != nil {
		return Reservation{}, fmt.Errorf("get reservation: %w", err)
	}
	if r == nil || !r.LiveAt(now) {
		return Reservation{}, Errorf(CodeNotFound, "key: not reserved")
	}
	return *r, nil
}
