package dynamostore

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/stampede-cache/stampede/internal/manager"
)

// deleteShape is what changes the text of a delete's expressions.
type deleteShape struct {
	ifVersion, onlyVersion bool
	prefixes               int
	token                  bool
}

// DeleteEntry removes the entry's attributes with one conditional
// UpdateItem, leaving the reservation, the fence and the version counter in
// place.
func (s *Store) DeleteEntry(ctx context.Context, d manager.EntryDelete) (manager.DeleteOutcome, error) {
	t, err := s.deletes.get(deleteShape{
		ifVersion:   d.IfVersion != nil,
		onlyVersion: d.OnlyVersion != nil,
		prefixes:    len(d.OutputUnder),
		token:       d.Token != "",
	})
	if err != nil {
		return manager.DeleteOutcome{}, err
	}
	v := map[string]types.AttributeValue{
		"now":  num(millis(d.Now)),
		"keep": num(ttlSeconds(d.KeepUntil)),
	}
	if d.Token != "" {
		v["token"] = str(string(d.Token))
	}
	if d.IfVersion != nil {
		v["ifVersion"] = num(*d.IfVersion)
	}
	if d.OnlyVersion != nil {
		v["onlyVersion"] = num(*d.OnlyVersion)
	}
	for i, p := range d.OutputUnder {
		v[prefixSlot(i)] = str(p)
	}
	expr, err := t.bind(v, nil)
	if err != nil {
		return manager.DeleteOutcome{}, err
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

// buildDelete is the expression of a delete shape.
func buildDelete(s deleteShape) expression.Builder {
	u := expression.Set(name(attrTTL), slot("keep")).Remove(name(attrPin))
	for _, a := range entryAttrs() {
		u = u.Remove(name(a))
	}
	cond := expression.AttributeExists(name(attrOutputURI))
	if s.token {
		u = recordWrite(u, name(attrVersion).IfNotExists(value(nil)), s.prefixes > 0)
		cond = cond.And(notSeen())
	}
	if s.ifVersion {
		cond = cond.And(liveEntry()).And(name(attrVersion).Equal(slot("ifVersion")))
	}
	if s.onlyVersion {
		cond = cond.And(name(attrVersion).Equal(slot("onlyVersion")))
	}
	if s.prefixes > 0 {
		cond = cond.And(outputUnder(s.prefixes))
	}
	return expression.NewBuilder().WithCondition(cond).WithUpdate(u)
}
