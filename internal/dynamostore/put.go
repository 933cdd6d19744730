package dynamostore

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/stampede-cache/stampede/internal/manager"
)

// PutEntry writes an entry with one conditional UpdateItem. created_at is
// kept from the item when present and version counts every write of the
// key, so a version number is never reused.
func (s *Store) PutEntry(ctx context.Context, w manager.EntryWrite) (manager.PutOutcome, error) {
	b := expression.NewBuilder().WithUpdate(putUpdate(w))
	if cond, ok := putCondition(w); ok {
		b = b.WithCondition(cond)
	}
	expr, err := b.Build()
	if err != nil {
		return manager.PutOutcome{}, fmt.Errorf("build put expression: %w", err)
	}
	rec, failed, err := s.update(ctx, w.ID, expr, types.ReturnValueAllOld)
	if err != nil {
		return manager.PutOutcome{}, err
	}
	if failed {
		return putRefused(w, rec), nil
	}
	return putWritten(w, rec), nil
}

// nextVersion is the key's version after a write: one more than the
// counter, which is seeded from base when the key has none.
func nextVersion(base int64) expression.OperandBuilder {
	return expression.Plus(name(attrVersion).IfNotExists(value(base)), value(1))
}

// putUpdate sets the entry, bumps the version, sets the item's TTL, ends
// the reservation for a put-and-release, and records the token.
func putUpdate(w manager.EntryWrite) expression.UpdateBuilder {
	now := millis(w.Now)
	u := expression.
		Set(name(attrProject), value(w.Project)).
		Set(name(attrDomain), value(w.Domain)).
		Set(name(attrKey), value(w.Key)).
		Set(name(attrOutputURI), value(w.OutputURI)).
		Set(name(attrMetadata), value(metadataToItem(w.Metadata))).
		Set(name(attrLastUpdatedAt), value(now)).
		Set(name(attrCreatedAt), name(attrCreatedAt).IfNotExists(value(now))).
		Set(name(attrVersion), nextVersion(w.VersionBase))
	if w.Org != "" {
		u = u.Set(name(attrOrg), value(w.Org))
	}
	if w.ExpiresAt != nil {
		u = u.Set(name(attrExpiresAt), value(millis(*w.ExpiresAt)))
	} else {
		u = u.Remove(name(attrExpiresAt))
	}
	keep := int64(neverTTL)
	if w.KeepUntil != nil {
		keep = ttlSeconds(*w.KeepUntil)
	}
	u = u.Set(name(attrTTL), value(keep)).Set(name(attrPin), value(keep))
	if h := w.Holder; h != nil && h.Release {
		for _, a := range reservationAttrs() {
			u = u.Remove(name(a))
		}
	}
	if w.Token != "" {
		u = recordWrite(u, w.Token, now, nextVersion(w.VersionBase), w.RecordPriorOutput)
	}
	return u
}

// putCondition is every requirement of w: not already applied, the entry
// condition (create, compare-and-set or max age), the fence, and the
// replaced output's scope.
func putCondition(w manager.EntryWrite) (expression.ConditionBuilder, bool) {
	now := millis(w.Now)
	var seen, entry, holder, scope *expression.ConditionBuilder
	if w.Token != "" {
		seen = ptr(notSeen(w.Token))
	}
	switch {
	case w.IfVersion != nil:
		entry = ptr(liveEntry(now).And(name(attrVersion).Equal(value(*w.IfVersion))))
	case !w.Overwrite:
		c := noLiveEntry(now)
		if w.ReplaceUpdatedBefore != nil {
			c = c.Or(name(attrLastUpdatedAt).LessThan(value(millis(*w.ReplaceUpdatedBefore))))
		}
		entry = &c
	}
	if h := w.Holder; h != nil {
		c := heldBy(h.OwnerID, now)
		if h.Fence != nil {
			c = c.And(name(attrFence).Equal(value(*h.Fence)))
		}
		holder = &c
	}
	if len(w.PreviousUnder) > 0 {
		scope = ptr(expression.AttributeNotExists(name(attrOutputURI)).Or(outputUnder(w.PreviousUnder)))
	}
	return allOf(seen, entry, holder, scope)
}

// putRefused reports a failed condition: a replay of an applied write, or
// the item's state for the manager to explain.
func putRefused(w manager.EntryWrite, rec *record) manager.PutOutcome {
	if rec == nil {
		return manager.PutOutcome{}
	}
	if prior := rec.find(w.Token); prior != nil {
		return manager.PutOutcome{Written: true, Replay: prior}
	}
	return manager.PutOutcome{Previous: rec.entry(), Reservation: rec.reservation()}
}

// putWritten rebuilds the stored entry from the item before the write,
// exactly as the update expression computed it: no second read.
func putWritten(w manager.EntryWrite, before *record) manager.PutOutcome {
	out := manager.PutOutcome{
		Written: true,
		Entry: manager.Entry{
			ID:            w.ID,
			OutputURI:     w.OutputURI,
			Metadata:      w.Metadata,
			CreatedAt:     w.Now,
			LastUpdatedAt: w.Now,
			Version:       w.VersionBase + 1,
			ExpiresAt:     w.ExpiresAt,
		},
	}
	if before == nil {
		return out
	}
	out.Previous, out.Reservation = before.entry(), before.reservation()
	if before.Version != nil {
		out.Entry.Version = *before.Version + 1
	}
	if out.Previous != nil {
		out.Entry.CreatedAt = out.Previous.CreatedAt
	}
	return out
}
