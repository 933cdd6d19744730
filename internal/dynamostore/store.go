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
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
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

func (s *Store) itemKey(id manager.ID, sortKey string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrPK: &types.AttributeValueMemberS{Value: partitionKey(id)},
		attrSK: &types.AttributeValueMemberS{Value: sortKey},
	}
}

// GetEntry reads the entry with a strongly consistent GetItem.
func (s *Store) GetEntry(ctx context.Context, id manager.ID) (*manager.Entry, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.table,
		Key:            s.itemKey(id, sortKeyEntry),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, classify("GetItem", err)
	}
	return decodeEntry(out.Item)
}

// PutEntry writes an entry with one conditional UpdateItem. created_at is
// kept from the item when present and version counts every write, so a
// version number is never reused while the item exists.
func (s *Store) PutEntry(ctx context.Context, w manager.EntryWrite) (manager.PutOutcome, error) {
	now := w.Now.UnixMilli()
	update := expression.
		Set(expression.Name(attrProject), expression.Value(w.Project)).
		Set(expression.Name(attrDomain), expression.Value(w.Domain)).
		Set(expression.Name(attrKey), expression.Value(w.Key)).
		Set(expression.Name(attrOutputURI), expression.Value(w.OutputURI)).
		Set(expression.Name(attrMetadata), expression.Value(metadataToItem(w.Metadata))).
		Set(expression.Name(attrLastUpdatedAt), expression.Value(now)).
		Set(expression.Name(attrCreatedAt), expression.Name(attrCreatedAt).IfNotExists(expression.Value(now))).
		Set(expression.Name(attrVersion), expression.Plus(expression.Name(attrVersion).IfNotExists(expression.Value(0)), expression.Value(1)))
	if w.ExpiresAt != nil {
		update = update.
			Set(expression.Name(attrExpiresAt), expression.Value(w.ExpiresAt.UnixMilli())).
			Set(expression.Name(attrTTL), expression.Value(ttlSeconds(*w.ExpiresAt)))
	} else {
		update = update.Remove(expression.Name(attrExpiresAt)).Remove(expression.Name(attrTTL))
	}
	b := expression.NewBuilder().WithUpdate(update)
	if !w.Overwrite {
		// Absent or expired items may always be written.
		cond := expression.AttributeNotExists(expression.Name(attrPK)).
			Or(expression.Name(attrExpiresAt).LessThanEqual(expression.Value(now)))
		if w.ReplaceUpdatedBefore != nil {
			cond = cond.Or(expression.Name(attrLastUpdatedAt).LessThan(expression.Value(w.ReplaceUpdatedBefore.UnixMilli())))
		}
		b = b.WithCondition(cond)
	}
	expr, err := b.Build()
	if err != nil {
		return manager.PutOutcome{}, fmt.Errorf("build put expression: %w", err)
	}
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           &s.table,
		Key:                                 s.itemKey(w.ID, sortKeyEntry),
		UpdateExpression:                    expr.Update(),
		ConditionExpression:                 expr.Condition(),
		ExpressionAttributeNames:            expr.Names(),
		ExpressionAttributeValues:           expr.Values(),
		ReturnValues:                        types.ReturnValueAllOld,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if item, failed := conditionFailed(err); failed {
		prev, derr := decodeEntry(item)
		return manager.PutOutcome{Previous: prev}, derr
	}
	if err != nil {
		return manager.PutOutcome{}, classify("UpdateItem", err)
	}
	prev, err := decodeEntry(out.Attributes)
	if err != nil {
		return manager.PutOutcome{}, err
	}
	// The new state follows from the previous one exactly as the update
	// expression computes it; rebuilding it here saves a second read.
	entry := manager.Entry{
		ID:            w.ID,
		OutputURI:     w.OutputURI,
		Metadata:      w.Metadata,
		CreatedAt:     w.Now,
		LastUpdatedAt: w.Now,
		Version:       1,
		ExpiresAt:     w.ExpiresAt,
	}
	if prev != nil {
		entry.CreatedAt = prev.CreatedAt
		entry.Version = prev.Version + 1
	}
	return manager.PutOutcome{Written: true, Entry: entry, Previous: prev}, nil
}

// DeleteEntry removes the entry with one DeleteItem and returns what it held.
func (s *Store) DeleteEntry(ctx context.Context, id manager.ID) (*manager.Entry, error) {
	out, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:    &s.table,
		Key:          s.itemKey(id, sortKeyEntry),
		ReturnValues: types.ReturnValueAllOld,
	})
	if err != nil {
		return nil, classify("DeleteItem", err)
	}
	return decodeEntry(out.Attributes)
}

// AcquireReservation gets or extends a reservation with one conditional
// UpdateItem; on contention the holder comes back with the failed
// condition, not from a second read.
func (s *Store) AcquireReservation(ctx context.Context, a manager.Acquisition) (manager.Reservation, bool, error) {
	now := a.Now.UnixMilli()
	owner := expression.Name(attrOwnerID)
	cond := expression.AttributeNotExists(owner).
		Or(owner.Equal(expression.Value(a.OwnerID))).
		Or(expression.Name(attrExpiresAt).LessThanEqual(expression.Value(now)))
	// fence = (fence, or the clock-based seed) + (0 if the caller already
	// holds the key, else 1); holder is then reset to the caller alone.
	holderEntry := expression.Name(attrHolder).AppendName(expression.NameNoDotSplit(holderKey(a.OwnerID)))
	fence := expression.Plus(
		expression.Name(attrFence).IfNotExists(expression.Value(a.FenceBase)),
		holderEntry.IfNotExists(expression.Value(1)),
	)
	update := expression.
		Set(expression.Name(attrProject), expression.Value(a.Project)).
		Set(expression.Name(attrDomain), expression.Value(a.Domain)).
		Set(expression.Name(attrKey), expression.Value(a.Key)).
		Set(owner, expression.Value(a.OwnerID)).
		Set(expression.Name(attrHeartbeatMS), expression.Value(a.HeartbeatInterval.Milliseconds())).
		Set(expression.Name(attrExpiresAt), expression.Value(a.ExpiresAt.UnixMilli())).
		Set(expression.Name(attrTTL), expression.Value(ttlSeconds(a.KeepUntil))).
		Set(expression.Name(attrFence), fence).
		Set(expression.Name(attrHolder), expression.Value(map[string]int{holderKey(a.OwnerID): 0}))
	expr, err := expression.NewBuilder().WithCondition(cond).WithUpdate(update).Build()
	if err != nil {
		return manager.Reservation{}, false, fmt.Errorf("build reserve expression: %w", err)
	}
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           &s.table,
		Key:                                 s.itemKey(a.ID, sortKeyReservation),
		UpdateExpression:                    expr.Update(),
		ConditionExpression:                 expr.Condition(),
		ExpressionAttributeNames:            expr.Names(),
		ExpressionAttributeValues:           expr.Values(),
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if item, failed := conditionFailed(err); failed {
		holder, derr := decodeReservation(item)
		return holder, false, derr
	}
	if err != nil {
		return manager.Reservation{}, false, classify("UpdateItem", err)
	}
	r, err := decodeReservation(out.Attributes)
	return r, true, err
}

// ReleaseReservation clears the holder if ownerID holds the key, keeping the
// record (and its fence) until keepUntil.
func (s *Store) ReleaseReservation(ctx context.Context, id manager.ID, ownerID string, keepUntil time.Time) (bool, error) {
	cond := expression.Name(attrOwnerID).Equal(expression.Value(ownerID))
	update := expression.
		Remove(expression.Name(attrOwnerID)).
		Remove(expression.Name(attrHolder)).
		Remove(expression.Name(attrHeartbeatMS)).
		Remove(expression.Name(attrExpiresAt)).
		Set(expression.Name(attrTTL), expression.Value(ttlSeconds(keepUntil)))
	expr, err := expression.NewBuilder().WithCondition(cond).WithUpdate(update).Build()
	if err != nil {
		return false, fmt.Errorf("build release expression: %w", err)
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       s.itemKey(id, sortKeyReservation),
		UpdateExpression:          expr.Update(),
		ConditionExpression:       expr.Condition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
	})
	if _, failed := conditionFailed(err); failed {
		return false, nil
	}
	if err != nil {
		return false, classify("UpdateItem", err)
	}
	return true, nil
}

func decodeEntry(item map[string]types.AttributeValue) (*manager.Entry, error) {
	if len(item) == 0 {
		return nil, nil
	}
	var it entryItem
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return nil, fmt.Errorf("decode entry item: %w", err)
	}
	return it.entry(), nil
}

func decodeReservation(item map[string]types.AttributeValue) (manager.Reservation, error) {
	var it reservationItem
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return manager.Reservation{}, fmt.Errorf("decode reservation item: %w", err)
	}
	return it.reservation(), nil
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
