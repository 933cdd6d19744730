package rawdynamo

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
)

// Counter counts the DynamoDB requests a client sends, each attempt
// (retries included) once, and, while asked to, records when each GetItem
// was sent.
type Counter struct {
	getItem    atomic.Int64
	updateItem atomic.Int64
	other      atomic.Int64

	mu        sync.Mutex
	recording bool
	reads     []time.Time
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

// RecordReads starts recording when each GetItem is sent, forgetting
// earlier ones.
func (c *Counter) RecordReads() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recording, c.reads = true, nil
}

// RecordedReads stops recording and returns the instants recorded.
func (c *Counter) RecordedReads() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	reads := c.reads
	c.recording, c.reads = false, nil
	return reads
}

// Install is the counting middleware, for NewClient: at finalize, after
// the retry middleware, where each attempt passes.
func (c *Counter) Install(stack *middleware.Stack) error {
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("BenchCountRequests",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			switch awsmiddleware.GetOperationName(ctx) {
			case "GetItem":
				c.getItem.Add(1)
				c.recordRead()
			case "UpdateItem":
				c.updateItem.Add(1)
			default:
				c.other.Add(1)
			}
			return next.HandleFinalize(ctx, in)
		}), middleware.After)
}

func (c *Counter) recordRead() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.recording {
		c.reads = append(c.reads, time.Now())
	}
}
