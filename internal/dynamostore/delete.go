package dynamostore

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/stampede-cache/stampede/internal/manager"
)

// DeleteEntry removes the entry's attributes with one conditional
// UpdateItem, leaving the reservation, the fence and the version counter in
// place.
func (s *Store) DeleteEntry(ctx context.Context, d manager.EntryDelete) (manager.DeleteOutcome, error) {
	now := millis(d.Now)
	u := expression.Set(name(attrTTL), value(ttlSeconds(d.KeepUntil))).Remove(name(attrPin))
	for _, a := range entryAttrs() {
		u = u.Remove(name(a))
	}
	cond := expression.AttributeExists(name(attrOutputURI))
	if d.Token != "" {
		u = recordWrite(u, d.Token, now, name(attrVersion).IfNotExists(value(nil)), len(d.OutputUnder) > 0)
		cond = cond.And(notSeen(d.Token))
	}
	if d.IfVersion != nil {
		cond = cond.And(liveEntry(now)).And(name(attrVersion).Equal(value(*d.IfVersion)))
	}
	if d.OnlyVersion != nil {
		cond = cond.And(name(attrVersion).Equal(value(*d.OnlyVersion)))
	}
	if len(d.OutputUnder) > 0 {
		cond = cond.And(outputUnder(d.OutputUnder))
	}
	expr, err := expression.NewBuilder().WithCondition(cond).WithUpdate(u).Build()
	if err != nil {
		return manager.DeleteOutcome{}, fmt.Errorf("build delete expression: %w", err)
	}
	rec, failed, err := s.update(ctx, d.ID, expr, types.ReturnValueAllOld)
	if err != nil || rec == nil {
		return manager.DeleteOutcome{}, err
	}
	if failed {
		if prior := rec.find(d.Token); prior != nil {
			return manager.DeleteOutcome{Removed: true, Replay: prior}, nil
		}
	}
	return manager.DeleteOutcome{Removed: !failed, Previous: rec.entry()}, nil
}
