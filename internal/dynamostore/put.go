package dynamostore

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/stampede-cache/stampede/internal/manager"
)

// putShape is what changes the text of a put's expressions.
type putShape struct {
	ifVersion, create, maxAge bool
	holder, fence, release    bool
	prefixes                  int
	expires, recordOutput     bool
	org, token                bool
}

func shapeOfPut(w manager.EntryWrite) putShape {
	s := putShape{
		ifVersion:    w.IfVersion != nil,
		create:       w.IfVersion == nil && !w.Overwrite,
		prefixes:     len(w.PreviousUnder),
		expires:      w.ExpiresAt != nil,
		recordOutput: w.RecordPriorOutput,
		org:          w.Org != "",
		token:        w.Token != "",
	}
	s.maxAge = s.create && w.ReplaceUpdatedBefore != nil
	if h := w.Holder; h != nil {
		s.holder, s.fence, s.release = true, h.Fence != nil, h.Release
	}
	return s
}

// PutEntry writes an entry with one conditional UpdateItem. created_at is
// kept from the item when present and version counts every write of the
// key, so a version number is never reused.
func (s *Store) PutEntry(ctx context.Context, w manager.EntryWrite) (manager.PutOutcome, error) {
	t, err := s.puts.get(shapeOfPut(w))
	if err != nil {
		return manager.PutOutcome{}, err
	}
	expr, err := t.bind(putValues(w), nil)
	if err != nil {
		return manager.PutOutcome{}, err
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

// putValues are the request's values for its shape's slots.
func putValues(w manager.EntryWrite) map[string]types.AttributeValue {
	keep := int64(neverTTL)
	if w.KeepUntil != nil {
		keep = ttlSeconds(*w.KeepUntil)
	}
	v := map[string]types.AttributeValue{
		"project":  str(w.Project),
		"domain":   str(w.Domain),
		"key":      str(w.Key),
		"uri":      str(w.OutputURI),
		"metadata": metadataValue(w.Metadata),
		"now":      num(millis(w.Now)),
		"vbase":    num(w.VersionBase),
		"keep":     num(keep),
	}
	if w.Org != "" {
		v["org"] = str(w.Org)
	}
	if w.Token != "" {
		v["token"] = str(string(w.Token))
	}
	if w.ExpiresAt != nil {
		v["exp"] = num(millis(*w.ExpiresAt))
	}
	if w.IfVersion != nil {
		v["ifVersion"] = num(*w.IfVersion)
	}
	if w.ReplaceUpdatedBefore != nil {
		v["before"] = num(millis(*w.ReplaceUpdatedBefore))
	}
	if h := w.Holder; h != nil {
		v["owner"] = str(h.OwnerID)
		if h.Fence != nil {
			v["fence"] = num(*h.Fence)
		}
	}
	for i, p := range w.PreviousUnder {
		v[prefixSlot(i)] = str(p)
	}
	return v
}

// nextVersion is the key's version after a write: one more than the
// counter, which is seeded from the clock (slot "vbase") when the key has
// none.
func nextVersion() expression.OperandBuilder {
	return expression.Plus(name(attrVersion).IfNotExists(slot("vbase")), value(1))
}

// buildPut is the expression of a put shape: the update, and every
// requirement (not already applied, the entry condition — create,
// compare-and-set or max age —, the fence, the replaced output's scope).
func buildPut(s putShape) expression.Builder {
	u := expression.
		Set(name(attrProject), slot("project")).
		Set(name(attrDomain), slot("domain")).
		Set(name(attrKey), slot("key")).
		Set(name(attrOutputURI), slot("uri")).
		Set(name(attrMetadata), slot("metadata")).
		Set(name(attrLastUpdatedAt), slot("now")).
		Set(name(attrCreatedAt), name(attrCreatedAt).IfNotExists(slot("now"))).
		Set(name(attrVersion), nextVersion()).
		Set(name(attrTTL), slot("keep")).
		Set(name(attrPin), slot("keep"))
	if s.org {
		u = u.Set(name(attrOrg), slot("org"))
	}
	if s.expires {
		u = u.Set(name(attrExpiresAt), slot("exp"))
	} else {
		u = u.Remove(name(attrExpiresAt))
	}
	if s.release {
		for _, a := range reservationAttrs() {
			u = u.Remove(name(a))
		}
	}
	if s.token {
		u = recordWrite(u, nextVersion(), s.recordOutput)
	}

	var seen, entry, holder, scope *expression.ConditionBuilder
	if s.token {
		seen = ptr(notSeen())
	}
	switch {
	case s.ifVersion:
		entry = ptr(liveEntry().And(name(attrVersion).Equal(slot("ifVersion"))))
	case s.create && s.maxAge:
		entry = ptr(noLiveEntry().Or(name(attrLastUpdatedAt).LessThan(slot("before"))))
	case s.create:
		entry = ptr(noLiveEntry())
	}
	if s.holder {
		c := heldBy()
		if s.fence {
			c = c.And(name(attrFence).Equal(slot("fence")))
		}
		holder = &c
	}
	if s.prefixes > 0 {
		scope = ptr(expression.AttributeNotExists(name(attrOutputURI)).Or(outputUnder(s.prefixes)))
	}
	b := expression.NewBuilder().WithUpdate(u)
	if cond, ok := allOf(seen, entry, holder, scope); ok {
		b = b.WithCondition(cond)
	}
	return b
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
