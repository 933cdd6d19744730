// Package rawdynamo is the benchmark's DynamoDB SDK side: it records the
// DynamoDB requests the server would make without sending them, sends such
// a request alone with an SDK client (the floor the server path is
// measured against), and counts the requests a client sends. The rest of
// internal/benchmark speaks HTTP and never names an SDK type.
package rawdynamo

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/stampede-cache/stampede/internal/dynamostore"
)

// Request is one recorded DynamoDB request (its input).
type Request struct {
	input any
}

// Operation names the request's DynamoDB operation.
func (r Request) Operation() string {
	switch r.input.(type) {
	case *dynamodb.GetItemInput:
		return "GetItem"
	case *dynamodb.UpdateItemInput:
		return "UpdateItem"
	}
	return fmt.Sprintf("%T", r.input)
}

// Recorder is a dynamostore.API that sends nothing: it keeps the inputs
// it is given and answers with empty outputs (no item; a write that met
// its condition). A store over it yields exactly the requests its callers
// make.
type Recorder struct {
	mu       sync.Mutex
	requests []Request
}

var _ dynamostore.API = (*Recorder)(nil)

// GetItem records in.
func (r *Recorder) GetItem(_ context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	r.add(in)
	return &dynamodb.GetItemOutput{}, nil
}

// UpdateItem records in.
func (r *Recorder) UpdateItem(_ context.Context, in *dynamodb.UpdateItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	r.add(in)
	return &dynamodb.UpdateItemOutput{}, nil
}

func (r *Recorder) add(in any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, Request{in})
}

// Take returns the requests recorded since the last Take.
func (r *Recorder) Take() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.requests
	r.requests = nil
	return out
}

// Client sends recorded requests with an SDK client, counting them.
type Client struct {
	db *dynamodb.Client
}

// NewClient returns a Client over a copy of db that counts in c.
func NewClient(db *dynamodb.Client, c *Counter) *Client {
	return &Client{db: Counted(db, c)}
}

// Send sends the request, alone, and returns the SDK's error.
func (c *Client) Send(ctx context.Context, r Request) error {
	var err error
	switch in := r.input.(type) {
	case *dynamodb.GetItemInput:
		_, err = c.db.GetItem(ctx, in)
	case *dynamodb.UpdateItemInput:
		_, err = c.db.UpdateItem(ctx, in)
	default:
		err = fmt.Errorf("cannot send a %s", r.Operation())
	}
	return err
}

// ConditionFailed reports whether err is DynamoDB refusing a write on its
// condition.
func ConditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}
