package rawdynamo

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/stampede-cache/stampede/internal/dynamostore"
)

// Counter counts the DynamoDB requests a client sends, each attempt
// (retries included) once, and records when GetItem reads a watched key.
type Counter struct {
	getItem    atomic.Int64
	updateItem atomic.Int64
	other      atomic.Int64

	mu      sync.Mutex
	watched string // the key whose reads are recorded; empty: none
	reads   []time.Time
}

// Counts is a snapshot of a Counter.
type Counts struct {
	GetItem, UpdateItem, Other int64
}

// Total is the number of requests of every kind.
func (c Counts) Total() int64 { return c.GetItem + c.UpdateItem + c.Other }

// Sub is c - o, kind by kind.
func (c Counts) Sub(o Counts) Counts {
	return Counts{c.GetItem - o.GetItem, c.UpdateItem - o.UpdateItem, c.Other - o.Other}
}

// Snapshot reads the counts.
func (c *Counter) Snapshot() Counts {
	return Counts{c.getItem.Load(), c.updateItem.Load(), c.other.Load()}
}

// Watch starts recording the GetItem requests of key (any project and
// domain), forgetting earlier ones.
func (c *Counter) Watch(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.watched, c.reads = key, nil
}

// WatchedReads stops watching and returns when each watched read was sent.
func (c *Counter) WatchedReads() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	reads := c.reads
	c.watched, c.reads = "", nil
	return reads
}

type partitionKeyValue struct{}

// install adds the counting middleware to a client's stack: the partition
// key is read at initialize (where the input is), the request counted at
// finalize after the retry middleware (where each attempt passes).
func (c *Counter) install(stack *middleware.Stack) error {
	err := stack.Initialize.Add(middleware.InitializeMiddlewareFunc("BenchPartitionKey",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			if get, ok := in.Parameters.(*dynamodb.GetItemInput); ok {
				if pk, ok := get.Key[dynamostore.PartitionKey].(*types.AttributeValueMemberS); ok {
					ctx = middleware.WithStackValue(ctx, partitionKeyValue{}, pk.Value)
				}
			}
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
	if err != nil {
		return err
	}
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("BenchCountRequests",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			switch awsmiddleware.GetOperationName(ctx) {
			case "GetItem":
				c.getItem.Add(1)
				pk, _ := middleware.GetStackValue(ctx, partitionKeyValue{}).(string)
				c.recordRead(pk)
			case "UpdateItem":
				c.updateItem.Add(1)
			default:
				c.other.Add(1)
			}
			return next.HandleFinalize(ctx, in)
		}), middleware.After)
}

func (c *Counter) recordRead(pk string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.watched != "" && strings.HasSuffix(pk, "/"+c.watched) {
		c.reads = append(c.reads, time.Now())
	}
}

// Counted returns a copy of db, configured identically, that counts its
// requests in c.
func Counted(db *dynamodb.Client, c *Counter) *dynamodb.Client {
	o := db.Options()
	o.APIOptions = append(slices.Clone(o.APIOptions), c.install)
	return dynamodb.New(o)
}
