// Package dynamostore implements manager.Store on one DynamoDB table. It is
// the only package that imports the DynamoDB SDK. Every method is a single
// DynamoDB request whose outcome is decided by a condition expression.
package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/stampede-cache/stampede/internal/manager"
)

// API is the subset of the DynamoDB client the store uses.
type API interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

// Store is a manager.Store backed by a DynamoDB table.
type Store struct {
	db    API
	table string
}

var _ manager.Store = (*Store)(nil)

// New returns a Store over the named table.
func New(db API, table string) *Store {
	return &Store{db: db, table: table}
}

func (s *Store) itemKey(id manager.ID) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrPK: &types.AttributeValueMemberS{Value: partitionKey(id)},
		attrSK: &types.AttributeValueMemberS{Value: sortKeyItem},
	}
}

func name(n string) expression.NameBuilder { return expression.Name(n) }

func value(v any) expression.ValueBuilder { return expression.Value(v) }

// liveEntry holds when the item has an entry that has not expired at now.
func liveEntry(now int64) expression.ConditionBuilder {
	return expression.AttributeExists(name(attrOutputURI)).And(
		expression.AttributeNotExists(name(attrExpiresAt)).Or(name(attrExpiresAt).GreaterThan(value(now))))
}

// noLiveEntry holds when the item has no entry or an expired one.
func noLiveEntry(now int64) expression.ConditionBuilder {
	return expression.AttributeNotExists(name(attrOutputURI)).Or(name(attrExpiresAt).LessThanEqual(value(now)))
}

// outputIn holds when the entry's output is in one of the buckets.
func outputIn(buckets []string) expression.ConditionBuilder {
	cond := expression.BeginsWith(name(attrOutputURI), "s3://"+buckets[0]+"/")
	for _, b := range buckets[1:] {
		cond = cond.Or(expression.BeginsWith(name(attrOutputURI), "s3://"+b+"/"))
	}
	return cond
}

// and joins optional conditions; ok is false when there are none.
func and(conds ...*expression.ConditionBuilder) (expression.ConditionBuilder, bool) {
	var out expression.ConditionBuilder
	ok := false
	for _, c := range conds {
		switch {
		case c == nil:
		case !ok:
			out, ok = *c, true
		default:
			out = out.And(*c)
		}
	}
	return out, ok
}

func ptr[T any](v T) *T { return &v }

// GetEntry reads the entry's attributes with one GetItem.
func (s *Store) GetEntry(ctx context.Context, id manager.ID, consistent bool) (*manager.Entry, error) {
	proj := expression.NamesList(name(attrProject), name(attrDomain), name(attrKey))
	for _, a := range entryAttrs() {
		proj = proj.AddNames(name(a))
	}
	expr, err := expression.NewBuilder().WithProjection(proj).Build()
	if err != nil {
		return nil, fmt.Errorf("build get expression: %w", err)
	}
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:                &s.table,
		Key:                      s.itemKey(id),
		ConsistentRead:           aws.Bool(consistent),
		ProjectionExpression:     expr.Projection(),
		ExpressionAttributeNames: expr.Names(),
	})
	if err != nil {
		return nil, classify("GetItem", err)
	}
	rec, err := decode(out.Item)
	if err != nil || rec == nil {
		return nil, err
	}
	return rec.entry(), nil
}

// PutEntry writes an entry with one conditional UpdateItem. created_at is
// kept from the item when present and version counts every write, so a
// version number is never reused while the entry exists.
func (s *Store) PutEntry(ctx context.Context, w manager.EntryWrite) (manager.PutOutcome, error) {
	now := w.Now.UnixMilli()
	update := expression.
		Set(name(attrProject), value(w.Project)).
		Set(name(attrDomain), value(w.Domain)).
		Set(name(attrKey), value(w.Key)).
		Set(name(attrOutputURI), value(w.OutputURI)).
		Set(name(attrMetadata), value(metadataToItem(w.Metadata))).
		Set(name(attrLastUpdatedAt), value(now)).
		Set(name(attrCreatedAt), name(attrCreatedAt).IfNotExists(value(now))).
		Set(name(attrVersion), expression.Plus(name(attrVersion).IfNotExists(value(0)), value(1)))
	if w.ExpiresAt != nil {
		update = update.Set(name(attrExpiresAt), value(w.ExpiresAt.UnixMilli()))
	} else {
		update = update.Remove(name(attrExpiresAt))
	}
	if w.KeepUntil != nil {
		update = update.Set(name(attrTTL), value(ttlSeconds(*w.KeepUntil))).Remove(name(attrPin))
	} else {
		update = update.Set(name(attrTTL), value(neverTTL)).Set(name(attrPin), value(neverTTL))
	}

	var entryCond, holderCond, bucketCond *expression.ConditionBuilder
	switch {
	case w.IfVersion != nil:
		entryCond = ptr(liveEntry(now).And(name(attrVersion).Equal(value(*w.IfVersion))))
	case !w.Overwrite:
		c := noLiveEntry(now)
		if w.ReplaceUpdatedBefore != nil {
			c = c.Or(name(attrLastUpdatedAt).LessThan(value(w.ReplaceUpdatedBefore.UnixMilli())))
		}
		entryCond = &c
	}
	if h := w.Holder; h != nil {
		c := name(attrOwnerID).Equal(value(h.OwnerID)).And(name(attrReservedUntil).GreaterThan(value(now)))
		if h.Fence != nil {
			c = c.And(name(attrFence).Equal(value(*h.Fence)))
		}
		holderCond = &c
		if h.Release {
			for _, a := range reservationAttrs() {
				update = update.Remove(name(a))
			}
		}
	}
	if len(w.PreviousInBuckets) > 0 {
		bucketCond = ptr(expression.AttributeNotExists(name(attrOutputURI)).Or(outputIn(w.PreviousInBuckets)))
	}
	b := expression.NewBuilder().WithUpdate(update)
	if cond, ok := and(entryCond, holderCond, bucketCond); ok {
		b = b.WithCondition(cond)
	}
	expr, err := b.Build()
	if err != nil {
		return manager.PutOutcome{}, fmt.Errorf("build put expression: %w", err)
	}
	out, err := s.update(ctx, w.ID, expr, types.ReturnValueAllOld)
	if item, failed := conditionFailed(err); failed {
		rec, derr := decode(item)
		if derr != nil || rec == nil {
			return manager.PutOutcome{}, derr
		}
		return manager.PutOutcome{Previous: rec.entry(), Reservation: rec.reservation()}, nil
	}
	if err != nil {
		return manager.PutOutcome{}, classify("UpdateItem", err)
	}
	rec, err := decode(out.Attributes)
	if err != nil {
		return manager.PutOutcome{}, err
	}
	// The new state follows from the previous one exactly as the update
	// expression computes it; rebuilding it here saves a second read.
	outcome := manager.PutOutcome{
		Written: true,
		Entry: manager.Entry{
			ID:            w.ID,
			OutputURI:     w.OutputURI,
			Metadata:      w.Metadata,
			CreatedAt:     w.Now,
			LastUpdatedAt: w.Now,
			Version:       1,
			ExpiresAt:     w.ExpiresAt,
		},
	}
	if rec != nil {
		outcome.Previous, outcome.Reservation = rec.entry(), rec.reservation()
	}
	if outcome.Previous != nil {
		outcome.Entry.CreatedAt = outcome.Previous.CreatedAt
		outcome.Entry.Version = outcome.Previous.Version + 1
	}
	return outcome, nil
}

// DeleteEntry removes the entry's attributes with one conditional
// UpdateItem, leaving the reservation and its fence in place.
func (s *Store) DeleteEntry(ctx context.Context, d manager.EntryDelete) (manager.DeleteOutcome, error) {
	now := d.Now.UnixMilli()
	update := expression.Set(name(attrTTL), value(ttlSeconds(d.KeepUntil))).Remove(name(attrPin))
	for _, a := range entryAttrs() {
		update = update.Remove(name(a))
	}
	cond := expression.AttributeExists(name(attrOutputURI))
	if d.IfVersion != nil {
		cond = cond.And(liveEntry(now)).And(name(attrVersion).Equal(value(*d.IfVersion)))
	}
	if d.OnlyVersion != nil {
		cond = cond.And(name(attrVersion).Equal(value(*d.OnlyVersion)))
	}
	if len(d.OutputInBuckets) > 0 {
		cond = cond.And(outputIn(d.OutputInBuckets))
	}
	expr, err := expression.NewBuilder().WithCondition(cond).WithUpdate(update).Build()
	if err != nil {
		return manager.DeleteOutcome{}, fmt.Errorf("build delete expression: %w", err)
	}
	out, err := s.update(ctx, d.ID, expr, types.ReturnValueAllOld)
	item, failed := conditionFailed(err)
	if err != nil && !failed {
		return manager.DeleteOutcome{}, classify("UpdateItem", err)
	}
	if !failed {
		item = out.Attributes
	}
	rec, err := decode(item)
	if err != nil {
		return manager.DeleteOutcome{}, err
	}
	outcome := manager.DeleteOutcome{Removed: !failed}
	if rec != nil {
		outcome.Previous = rec.entry()
	}
	return outcome, nil
}

// AcquireReservation gets or extends a reservation with one conditional
// UpdateItem; on contention the holder comes back with the failed
// condition, not from a second read.
func (s *Store) AcquireReservation(ctx context.Context, a manager.Acquisition) (manager.Reservation, bool, error) {
	now := a.Now.UnixMilli()
	owner := name(attrOwnerID)
	cond := expression.AttributeNotExists(owner).
		Or(owner.Equal(value(a.OwnerID))).
		Or(name(attrReservedUntil).LessThanEqual(value(now)))
	// fence = (fence, or the clock-based seed) + (0 if the caller already
	// holds the key, else 1); holder is then reset to the caller alone.
	holderEntry := name(attrHolder).AppendName(expression.NameNoDotSplit(holderKey(a.OwnerID)))
	fence := expression.Plus(
		name(attrFence).IfNotExists(value(a.FenceBase)),
		holderEntry.IfNotExists(value(1)),
	)
	update := expression.
		Set(name(attrProject), value(a.Project)).
		Set(name(attrDomain), value(a.Domain)).
		Set(name(attrKey), value(a.Key)).
		Set(owner, value(a.OwnerID)).
		Set(name(attrHeartbeatMS), value(a.HeartbeatInterval.Milliseconds())).
		Set(name(attrReservedUntil), value(a.ExpiresAt.UnixMilli())).
		Set(name(attrTTL), name(attrPin).IfNotExists(value(ttlSeconds(a.KeepUntil)))).
		Set(name(attrFence), fence).
		Set(name(attrHolder), value(map[string]int{holderKey(a.OwnerID): 0}))
	expr, err := expression.NewBuilder().WithCondition(cond).WithUpdate(update).Build()
	if err != nil {
		return manager.Reservation{}, false, fmt.Errorf("build reserve expression: %w", err)
	}
	out, err := s.update(ctx, a.ID, expr, types.ReturnValueUpdatedNew)
	item, failed := conditionFailed(err)
	if err != nil && !failed {
		return manager.Reservation{}, false, classify("UpdateItem", err)
	}
	if !failed {
		item = out.Attributes
	}
	rec, err := decode(item)
	if err != nil {
		return manager.Reservation{}, false, err
	}
	if rec == nil || rec.reservation() == nil {
		return manager.Reservation{}, false, fmt.Errorf("reserve %s: no reservation in the returned item", partitionKey(a.ID))
	}
	return *rec.reservation(), !failed, nil
}

// ReleaseReservation removes the holder if ownerID holds the key, keeping
// the fence.
func (s *Store) ReleaseReservation(ctx context.Context, id manager.ID, ownerID string, keepUntil time.Time) (bool, error) {
	cond := name(attrOwnerID).Equal(value(ownerID))
	update := expression.Set(name(attrTTL), name(attrPin).IfNotExists(value(ttlSeconds(keepUntil))))
	for _, a := range reservationAttrs() {
		update = update.Remove(name(a))
	}
	expr, err := expression.NewBuilder().WithCondition(cond).WithUpdate(update).Build()
	if err != nil {
		return false, fmt.Errorf("build release expression: %w", err)
	}
	_, err = s.update(ctx, id, expr, types.ReturnValueNone)
	if _, failed := conditionFailed(err); failed {
		return false, nil
	}
	if err != nil {
		return false, classify("UpdateItem", err)
	}
	return true, nil
}

// update sends one conditional UpdateItem. When the condition fails the
// item comes back with the error (ReturnValuesOnConditionCheckFailure), so
// callers learn why without a second read.
func (s *Store) update(ctx context.Context, id manager.ID, expr expression.Expression, rv types.ReturnValue) (*dynamodb.UpdateItemOutput, error) {
	return s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           &s.table,
		Key:                                 s.itemKey(id),
		UpdateExpression:                    expr.Update(),
		ConditionExpression:                 expr.Condition(),
		ExpressionAttributeNames:            expr.Names(),
		ExpressionAttributeValues:           expr.Values(),
		ReturnValues:                        rv,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
}

// decode unmarshals an item; nil for none.
func decode(item map[string]types.AttributeValue) (*record, error) {
	if len(item) == 0 {
		return nil, nil
	}
	var rec record
	if err := attributevalue.UnmarshalMap(item, &rec); err != nil {
		return nil, fmt.Errorf("decode item: %w", err)
	}
	return &rec, nil
}

// conditionFailed reports whether err is a failed condition and returns the
// item DynamoDB sent back with it.
func conditionFailed(err error) (map[string]types.AttributeValue, bool) {
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return ccf.Item, true
	}
	return nil, false
}
