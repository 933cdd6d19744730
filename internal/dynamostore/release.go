package dynamostore

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/stampede-cache/stampede/internal/manager"
)

// ReleaseReservation removes the holder if r.OwnerID holds the key, keeping
// the fence, with one conditional UpdateItem.
func (s *Store) ReleaseReservation(ctx context.Context, r manager.ReservationRelease) (manager.ReleaseOutcome, error) {
	t, err := s.releases.get(r.Token != "")
	if err != nil {
		return manager.ReleaseOutcome{}, err
	}
	v := map[string]types.AttributeValue{
		"owner": str(r.OwnerID),
		"now":   num(millis(r.Now)),
		"keep":  num(ttlSeconds(r.KeepUntil)),
	}
	if r.Token != "" {
		v["token"] = str(string(r.Token))
	}
	expr, err := t.bind(v, nil)
	if err != nil {
		return manager.ReleaseOutcome{}, err
	}
	rec, failed, err := s.update(ctx, r.ID, expr, types.ReturnValueNone)
	if err != nil {
		return manager.ReleaseOutcome{}, err
	}
	if failed {
		replayed := rec != nil && rec.find(r.Token) != nil
		return manager.ReleaseOutcome{Released: replayed, Replayed: replayed}, nil
	}
	return manager.ReleaseOutcome{Released: true}, nil
}

// buildRelease is the expression of a release, with a token or without.
func buildRelease(token bool) expression.Builder {
	cond := name(attrOwnerID).Equal(slot("owner"))
	u := expression.Set(name(attrTTL), name(attrPin).IfNotExists(slot("keep")))
	for _, a := range reservationAttrs() {
		u = u.Remove(name(a))
	}
	if token {
		u = recordWrite(u, name(attrVersion).IfNotExists(value(nil)), false)
		cond = cond.And(notSeen())
	}
	return expression.NewBuilder().WithCondition(cond).WithUpdate(u)
}
