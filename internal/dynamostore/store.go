// Package dynamostore implements manager.Store on one DynamoDB table. It is
// the only package that imports the DynamoDB SDK. Every method is a single
// DynamoDB request whose outcome is decided by a condition expression (one
// documented exception: reserve.go's pin hand-over).
package dynamostore

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
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

	// The expressions of each operation, compiled once per shape.
	puts     templates[putShape]
	deletes  templates[deleteShape]
	releases templates[bool]
	reserves templates[reserveShape]
	reads    templates[projection]
}

var _ manager.Store = (*Store)(nil)

// New returns a Store over the named table.
func New(db API, table string) *Store {
	s := &Store{db: db, table: table}
	s.puts.build = buildPut
	s.deletes.build = buildDelete
	s.releases.build = buildRelease
	s.reserves.build = buildReserve
	s.reads.build = buildProjection
	return s
}

func (s *Store) itemKey(id manager.ID) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrPK: &types.AttributeValueMemberS{Value: partitionKey(id)},
		attrSK: &types.AttributeValueMemberS{Value: sortKeyItem},
	}
}

// update sends one conditional UpdateItem. When the condition fails the
// item comes back with the error (ReturnValuesOnConditionCheckFailure), so
// callers learn why without a second read: failed reports that, with the
// item; err is any other failure, classified.
func (s *Store) update(ctx context.Context, id manager.ID, expr bound, rv types.ReturnValue) (item *record, failed bool, err error) {
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           &s.table,
		Key:                                 s.itemKey(id),
		UpdateExpression:                    expr.update,
		ConditionExpression:                 expr.condition,
		ExpressionAttributeNames:            expr.names,
		ExpressionAttributeValues:           expr.values,
		ReturnValues:                        rv,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		rec, derr := decode(ccf.Item)
		return rec, true, derr
	}
	if err != nil {
		return nil, false, classify("UpdateItem", err)
	}
	rec, err := decode(out.Attributes)
	return rec, false, err
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
