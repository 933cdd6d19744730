// Package dynamostore implements manager.Store on one DynamoDB table. It is
// the only package that imports the DynamoDB SDK. Every method is a single
// DynamoDB request whose outcome is decided by a condition expression (one
// documented exception: reserve.go's pin hand-over).
package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

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
//
// The store retries by itself (the SDK sends one attempt), because it must
// know what each attempt may have done. An attempt refused for certain
// (throttled, or never sent) is simply sent again. After an attempt that
// may have landed (a timeout, a reset, a 5xx), a write with a token is sent
// again only guarded: it may apply only while the item's register of recent
// writes has room, because only then does a token not found prove the
// first attempt did not land. A full register answers unavailable: the
// outcome is unknown, and the caller's re-send (same idempotency key) is
// judged afresh.
func (s *Store) update(ctx context.Context, id manager.ID, expr bound, rv types.ReturnValue) (item *record, failed bool, err error) {
	in := func(b bound) *dynamodb.UpdateItemInput {
		return &dynamodb.UpdateItemInput{
			TableName:                           &s.table,
			Key:                                 s.itemKey(id),
			UpdateExpression:                    b.update,
			ConditionExpression:                 b.condition,
			ExpressionAttributeNames:            b.names,
			ExpressionAttributeValues:           b.values,
			ReturnValues:                        rv,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}
	}
	attempt := expr
	guarded := false
	var out *dynamodb.UpdateItemOutput
	err = s.attempts(ctx, "UpdateItem", func(ctx context.Context) error {
		var e error
		out, e = s.db.UpdateItem(ctx, in(attempt), oneAttempt)
		return e
	}, func(mayHaveLanded bool) {
		if mayHaveLanded && expr.token() != "" && !guarded {
			attempt, guarded = expr.guarded(), true
		}
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		rec, derr := decode(ccf.Item)
		if derr == nil && guarded && rec != nil && rec.find(manager.Token(expr.token())) == nil && rec.registerFull() {
			return nil, false, &manager.Error{Code: manager.CodeUnavailable,
				Message: "the outcome of the write is unknown (its answer was lost); re-send it with the same Idempotency-Key",
				Err:     fmt.Errorf("update %s: a retry after an ambiguous attempt found the register full", partitionKey(id))}
		}
		return rec, true, derr
	}
	if err != nil {
		return nil, false, err
	}
	rec, err := decode(out.Attributes)
	return rec, false, err
}

// oneAttempt makes the SDK send a single attempt: the store retries.
func oneAttempt(o *dynamodb.Options) { o.RetryMaxAttempts = 1 }

// Retries of one request: at most maxAttempts, with full-jitter backoff
// from retryBase doubling up to retryCap, within the request's deadline.
const (
	maxAttempts = 3
	retryBase   = 50 * time.Millisecond
	retryCap    = time.Second
)

// attempts runs call until it succeeds, fails for good, or the attempts or
// the deadline run out. Before each retry, before(mayHaveLanded) learns
// whether the failed attempt may have taken effect. The error is the last
// attempt's, classified: a throttle stays a throttle even when the deadline
// ends the backoff.
func (s *Store) attempts(ctx context.Context, op string, call func(context.Context) error, before func(mayHaveLanded bool)) error {
	var last error
	for n := range maxAttempts {
		err := call(ctx)
		var ccf *types.ConditionalCheckFailedException
		if err == nil || errors.As(err, &ccf) {
			return err
		}
		last = err
		throttled, notSent := isThrottle(err), isNotSent(err)
		if ctx.Err() != nil || (!throttled && !notSent && !Unreachable(err)) || n == maxAttempts-1 {
			break
		}
		wait := time.Duration(rand.Int64N(int64(min(retryCap, retryBase<<n)) + 1))
		if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
			break
		}
		select {
		case <-ctx.Done():
			return classify(op, last)
		case <-time.After(wait):
		}
		before(!throttled && !notSent)
	}
	return classify(op, last)
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
