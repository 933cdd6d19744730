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

// pinRule is how a reservation write treats the item's pin.
type pinRule int

const (
	// pinCovers: ttl = if_not_exists(pin, keep), on condition that the pin,
	// if any, covers keep.
	pinCovers pinRule = iota
	// pinRaised: the entry still lives but its pin is short (the lease
	// limit grew): ttl = pin = keep, on condition that the pin is unchanged.
	pinRaised
	// pinDropped: the entry expired long ago: ttl = keep, pin removed, on
	// condition that the pin is unchanged.
	pinDropped
)

// reserveShape is what changes the text of a reservation write.
type reserveShape struct {
	pin pinRule
	org bool
}

// AcquireReservation gets or extends a reservation with one conditional
// UpdateItem; on contention the holder comes back with the failed
// condition, not from a second read.
//
// The item's TTL must cover both the entry and the reservation. A
// reservation write sets ttl = if_not_exists(pin, its own keep) on
// condition that the pin, when there is one, covers its own keep: puts set
// the pin far enough past the entry's expiry that this holds for every
// reservation taken while the entry lives, and for a day after (manager:
// keepEntryUntil). Only a reservation taken later than that finds a pin too
// short; then, and only then, a second conditional write hands the TTL over
// to the reservation, on condition that nothing changed in between.
func (s *Store) AcquireReservation(ctx context.Context, a manager.Acquisition) (manager.AcquireOutcome, error) {
	hk := holderKey(a.OwnerID)
	v := map[string]types.AttributeValue{
		"project": str(a.Project),
		"domain":  str(a.Domain),
		"key":     str(a.Key),
		"owner":   str(a.OwnerID),
		"hb":      num(a.HeartbeatInterval.Milliseconds()),
		"until":   num(millis(a.ExpiresAt)),
		"now":     num(millis(a.Now)),
		"base":    num(a.FenceBase),
		"keep":    num(ttlSeconds(a.KeepUntil)),
		"holder":  &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{hk: num(0)}},
	}
	if a.Org != "" {
		v["org"] = str(a.Org)
	}
	names := map[string]string{"holderKey": hk}
	shape := reserveShape{pin: pinCovers, org: a.Org != ""}
	for range maxPinHandOvers + 1 {
		t, err := s.reserves.get(shape)
		if err != nil {
			return manager.AcquireOutcome{}, err
		}
		expr, err := t.bind(v, names)
		if err != nil {
			return manager.AcquireOutcome{}, err
		}
		before, failed, err := s.update(ctx, a.ID, expr, types.ReturnValueAllOld)
		if err != nil {
			return manager.AcquireOutcome{}, err
		}
		if !failed {
			return acquired(a, before), nil
		}
		if before == nil || !freeFor(before, a) || before.Pin == nil {
			return contended(a, before)
		}
		// Free for the caller, so the pin was too short: hand the TTL over.
		v["seenPin"] = num(*before.Pin)
		shape.pin = pinDropped
		if e := before.entry(); e != nil && e.LiveAt(a.Now) {
			shape.pin = pinRaised
		}
	}
	return manager.AcquireOutcome{}, &manager.Error{Code: manager.CodeUnavailable,
		Message: "the key changed during the reservation; retry with backoff",
		Err:     fmt.Errorf("reserve %s: the pin kept changing", partitionKey(a.ID))}
}

// buildReserve makes the caller the holder if the key is free for it.
// fence = (fence, or the clock-based seed) + (0 if the caller already
// holds the key, else 1); holder is then reset to the caller alone.
func buildReserve(s reserveShape) expression.Builder {
	holderEntry := name(attrHolder).AppendName(nameSlot("holderKey"))
	fence := expression.Plus(
		name(attrFence).IfNotExists(slot("base")),
		holderEntry.IfNotExists(value(1)),
	)
	u := expression.
		Set(name(attrProject), slot("project")).
		Set(name(attrDomain), slot("domain")).
		Set(name(attrKey), slot("key")).
		Set(name(attrOwnerID), slot("owner")).
		Set(name(attrHeartbeatMS), slot("hb")).
		Set(name(attrReservedUntil), slot("until")).
		Set(name(attrFence), fence).
		Set(name(attrHolder), slot("holder"))
	if s.org {
		u = u.Set(name(attrOrg), slot("org"))
	}
	owner := name(attrOwnerID)
	cond := expression.AttributeNotExists(owner).
		Or(owner.Equal(slot("owner"))).
		Or(name(attrReservedUntil).LessThanEqual(slot("now")))
	switch s.pin {
	case pinCovers:
		u = u.Set(name(attrTTL), name(attrPin).IfNotExists(slot("keep")))
		cond = cond.And(expression.AttributeNotExists(name(attrPin)).Or(name(attrPin).GreaterThanEqual(slot("keep"))))
	case pinRaised:
		u = u.Set(name(attrTTL), slot("keep")).Set(name(attrPin), slot("keep"))
		cond = cond.And(name(attrPin).Equal(slot("seenPin")))
	case pinDropped:
		u = u.Set(name(attrTTL), slot("keep")).Remove(name(attrPin))
		cond = cond.And(name(attrPin).Equal(slot("seenPin")))
	}
	return expression.NewBuilder().WithCondition(cond).WithUpdate(u)
}

// freeFor evaluates the free-for-the-caller part of the condition on an
// item.
func freeFor(r *record, a manager.Acquisition) bool {
	return r.OwnerID == nil || *r.OwnerID == a.OwnerID || r.ReservedUntil <= millis(a.Now)
}

// acquired rebuilds the caller's reservation from the item before the
// write, exactly as the update computed it. A reservation leaves the entry
// alone, so the item's entry before the write is its entry after.
func acquired(a manager.Acquisition, before *record) manager.AcquireOutcome {
	fence := a.FenceBase + 1
	if before != nil && before.Fence != nil {
		fence = *before.Fence + 1
		if before.holds(a.OwnerID) {
			fence = *before.Fence
		}
	}
	var entry *manager.Entry
	if before != nil {
		entry = before.entry()
	}
	return manager.AcquireOutcome{
		Acquired: true,
		TookOver: before != nil && before.OwnerID != nil && *before.OwnerID != a.OwnerID,
		Entry:    entry,
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
	return manager.AcquireOutcome{Reservation: *item.reservation(), Entry: item.entry()}, nil
}
