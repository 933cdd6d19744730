package flyte

import (
	"context"

	"connectrpc.com/connect"

	"github.com/stampede-cache/stampede/internal/manager"
)

// Call is what one call of the service did, for the caller's log line and
// metrics: the transport puts an empty Call in the request's context
// (WithCall) and reads it once the handler has answered. Connect answers
// requests it cannot decode itself, without calling the service; Served
// then stays false.
type Call struct {
	// Served is true once the service received the decoded request.
	Served bool
	// ID and OwnerID name the key and owner, once known.
	ID      *manager.ID
	OwnerID string
	// Outcome names what happened, in the transport's terms (hit, miss,
	// created, conflict, acquired, contended, released, ...).
	Outcome string
	// Err is the failure, with its cause: for the log only; the client
	// gets the message of ConnectError(Err).
	Err error
	// Warning is a failure after the call succeeded (an output object that
	// could not be deleted): logged, not returned.
	Warning error
}

type callKey struct{}

// WithCall returns a context carrying c, which the service fills in.
func WithCall(ctx context.Context, c *Call) context.Context {
	return context.WithValue(ctx, callKey{}, c)
}

// begin marks the context's Call served, or returns a Call nobody reads.
func begin(ctx context.Context) *Call {
	c, _ := ctx.Value(callKey{}).(*Call)
	if c == nil {
		c = &Call{}
	}
	c.Served = true
	return c
}

func (c *Call) about(id manager.ID, ownerID string) {
	c.ID, c.OwnerID = &id, ownerID
}

// fail records err and returns the error the client gets.
func (c *Call) fail(err error) *connect.Error {
	c.Err = err
	return ConnectError(err)
}
