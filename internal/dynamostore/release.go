package dynamostore

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/stampede-cache/stampede/internal/manager"
)

// ReleaseReservation removes the holder if r.OwnerID holds the key, keeping
// the fence, with one conditional UpdateItem.
func (s *Store) ReleaseReservation(ctx context.Context, r manager.ReservationRelease) (manager.ReleaseOutcome, error) {
	cond := name(attrOwnerID).Equal(value(r.OwnerID))
	u := expression.Set(name(attrTTL), name(attrPin).IfNotExists(value(ttlSeconds(r.KeepUntil))))
	for _, a := range reservationAttrs() {
		u = u.Remove(name(a))
	}
	if r.Token != "" {
		u = recordWrite(u, r.Token, millis(r.Now), name(attrVersion).IfNotExists(value(nil)), false)
		cond = cond.And(notSeen(r.Token))
	}
	expr, err := expression.NewBuilder().WithCondition(cond).WithUpdate(u).Build()
	if err != nil {
		return manager.ReleaseOutcome{}, fmt.Errorf("build release expression: %w", err)
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
