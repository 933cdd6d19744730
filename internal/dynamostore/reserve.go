package dynamostore

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/stampede-cache/stampede/internal/manager"
)

// maxPinHandOvers bounds the pin hand-over retries of one reservation.
const maxPinHandOvers = 2

// AcquireReservation gets or extends a reservation with one conditional
// UpdateItem; on contention the holder comes back with the failed
// condition, not from a second read.
//
// The item's TTL must cover both the entry and the reservation. A
// reservation write sets ttl = if_not_exists(pin, its own keep) on
// condition that the pin, when there is one, covers its own keep: puts set
// the pin far enough past the entry's expiry that this holds for every
// reservation taken while the entry lives (manager: entry keep-until). Only
// a reservation taken long after the entry expired finds a pin too short;
// then, and only then, a second conditional write hands the TTL over to the
// reservation (pin removed, or raised if the entry still lives), on
// condition that nothing changed in between.
func (s *Store) AcquireReservation(ctx context.Context, a manager.Acquisition) (manager.AcquireOutcome, error) {
	keep := ttlSeconds(a.KeepUntil)
	pinCovers := expression.AttributeNotExists(name(attrPin)).Or(name(attrPin).GreaterThanEqual(value(keep)))
	u := reserveUpdate(a).Set(name(attrTTL), name(attrPin).IfNotExists(value(keep)))
	for range maxPinHandOvers + 1 {
		expr, err := expression.NewBuilder().WithCondition(free(a).And(pinCovers)).WithUpdate(u).Build()
		if err != nil {
			return manager.AcquireOutcome{}, fmt.Errorf("build reserve expression: %w", err)
		}
		before, failed, err := s.update(ctx, a.ID, expr, types.ReturnValueAllOld)
		if err != nil {
			return manager.AcquireOutcome{}, err
		}
		if !failed {
			return acquired(a, before), nil
		}
		if before == nil || !freeFor(before, a) {
			return contended(a, before)
		}
		// Free for the caller, so the pin failed: hand the TTL over.
		pinCovers = expression.AttributeNotExists(name(attrPin))
		if before.Pin != nil {
			pinCovers = name(attrPin).Equal(value(*before.Pin))
		}
		u = reserveUpdate(a).Set(name(attrTTL), value(keep))
		if e := before.entry(); e != nil && e.LiveAt(a.Now) {
			u = u.Set(name(attrPin), value(keep))
		} else {
			u = u.Remove(name(attrPin))
		}
	}
	return manager.AcquireOutcome{}, &manager.Error{Code: manager.CodeUnavailable,
		Message: "the key changed during the reservation; retry with backoff",
		Err:     fmt.Errorf("reserve %s: the pin kept changing", partitionKey(a.ID))}
}

// free holds when the key has no live reservation or the caller holds it.
func free(a manager.Acquisition) expression.ConditionBuilder {
	owner := name(attrOwnerID)
	return expression.AttributeNotExists(owner).
		Or(owner.Equal(value(a.OwnerID))).
		Or(name(attrReservedUntil).LessThanEqual(value(millis(a.Now))))
}

// freeFor evaluates free on an item.
func freeFor(r *record, a manager.Acquisition) bool {
	return r.OwnerID == nil || *r.OwnerID == a.OwnerID || r.ReservedUntil <= millis(a.Now)
}

// reserveUpdate makes the caller the holder. fence = (fence, or the
// clock-based seed) + (0 if the caller already holds the key, else 1);
// holder is then reset to the caller alone.
func reserveUpdate(a manager.Acquisition) expression.UpdateBuilder {
	holderEntry := name(attrHolder).AppendName(expression.NameNoDotSplit(holderKey(a.OwnerID)))
	fence := expression.Plus(
		name(attrFence).IfNotExists(value(a.FenceBase)),
		holderEntry.IfNotExists(value(1)),
	)
	u := expression.
		Set(name(attrProject), value(a.Project)).
		Set(name(attrDomain), value(a.Domain)).
		Set(name(attrKey), value(a.Key)).
		Set(name(attrOwnerID), value(a.OwnerID)).
		Set(name(attrHeartbeatMS), value(a.HeartbeatInterval.Milliseconds())).
		Set(name(attrReservedUntil), value(millis(a.ExpiresAt))).
		Set(name(attrFence), fence).
		Set(name(attrHolder), value(map[string]int{holderKey(a.OwnerID): 0}))
	if a.Org != "" {
		u = u.Set(name(attrOrg), value(a.Org))
	}
	return u
}

// acquired rebuilds the caller's reservation from the item before the
// write, exactly as reserveUpdate computed it.
func acquired(a manager.Acquisition, before *record) manager.AcquireOutcome {
	fence := a.FenceBase + 1
	if before != nil && before.Fence != nil {
		fence = *before.Fence + 1
		if before.holds(a.OwnerID) {
			fence = *before.Fence
		}
	}
	return manager.AcquireOutcome{
		Acquired: true,
		TookOver: before != nil && before.OwnerID != nil && *before.OwnerID != a.OwnerID,
		Reservation: manager.Reservation{
			ID:                a.ID,
			OwnerID:           a.OwnerID,
			HeartbeatInterval: a.HeartbeatInterval,
			ExpiresAt:         a.ExpiresAt,
			Fence:             fence,
		},
	}
}

// contended reports the holder that blocked the caller.
func contended(a manager.Acquisition, item *record) (manager.AcquireOutcome, error) {
	if item == nil || item.reservation() == nil {
		return manager.AcquireOutcome{}, fmt.Errorf("reserve %s: no reservation in the returned item", partitionKey(a.ID))
	}
	return manager.AcquireOutcome{Reservation: *item.reservation()}, nil
}
