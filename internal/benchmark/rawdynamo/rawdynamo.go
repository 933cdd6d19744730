// Package rawdynamo is the benchmark's DynamoDB side: it builds DynamoDB
// clients as the server builds them (internal/awsclient and
// internal/dynamostore) with SDK middleware added, records the requests
// the server would make without sending them, sends such a request alone
// (the floor the server path is measured against), and counts the
// requests a client sends. Like every package but internal/dynamostore it
// never names a type of the DynamoDB SDK: requests travel as the SDK's
// own input values, opaque here.
package rawdynamo

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/stampede-cache/stampede/internal/awsclient"
	"github.com/stampede-cache/stampede/internal/dynamostore"
)

// NewClient builds a DynamoDB client for endpoint as the server builds its
// own (one AWS configuration load, so its own connection pool), with the
// middleware added to every request's stack.
func NewClient(ctx context.Context, endpoint string, middleware ...func(*middleware.Stack) error) (*dynamostore.Client, error) {
	awsCfg, err := awsclient.Load(ctx, true)
	if err != nil {
		return nil, err
	}
	return dynamostore.NewClient(awsCfg, endpoint, func(o *dynamostore.ClientOptions) {
		o.APIOptions = append(o.APIOptions, middleware...)
	}), nil
}

// Request is one recorded DynamoDB request: the operation and the SDK's
// input value for it.
type Request struct {
	Operation string
	input     any
}

// errRecorded stops a recorded request before it is sent.
var errRecorded = errors.New("rawdynamo: recorded, not sent")

// Recorder keeps the requests of the clients it is installed in, which
// send nothing: every request ends, before serialisation, with an error.
type Recorder struct {
	mu       sync.Mutex
	requests []Request
}

// Install is the recording middleware, for NewClient.
func (r *Recorder) Install(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("BenchRecord",
		func(ctx context.Context, in middleware.InitializeInput, _ middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			r.mu.Lock()
			r.requests = append(r.requests, Request{Operation: awsmiddleware.GetOperationName(ctx), input: in.Parameters})
			r.mu.Unlock()
			return middleware.InitializeOutput{}, middleware.Metadata{}, errRecorded
		}), middleware.Before)
}

// Take returns the requests recorded since the last Take.
func (r *Recorder) Take() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.requests
	r.requests = nil
	return out
}

// Send sends the request, alone, with db and returns the SDK's error. The
// client's method is looked up by the operation's name, so that this
// package needs none of the SDK's types; the lookup costs a microsecond
// and a few allocations, beside the SDK's hundreds.
func Send(ctx context.Context, db *dynamostore.Client, r Request) error {
	method := reflect.ValueOf(db).MethodByName(r.Operation)
	if !method.IsValid() || r.input == nil {
		return fmt.Errorf("rawdynamo: cannot send %q", r.Operation)
	}
	out := method.Call([]reflect.Value{reflect.ValueOf(ctx), reflect.ValueOf(r.input)})
	if err, ok := out[len(out)-1].Interface().(error); ok && err != nil {
		return err
	}
	return nil
}

// ConditionFailed reports whether err is DynamoDB refusing a write on its
// condition.
func ConditionFailed(err error) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == "ConditionalCheckFailedException"
}
