package transport

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/stampede-cache/stampede/internal/manager"
)

// ErrorTypePrefix starts the errorType of every Lambda error Stampede
// returns to direct invocations: Stampede.InvalidArgument, Stampede.NotFound,
// Stampede.AlreadyExists, Stampede.FailedPrecondition,
// Stampede.PayloadTooLarge, Stampede.Throttled, Stampede.Unavailable and
// Stampede.Internal. Step Functions' Catch and Retry match on them.
const ErrorTypePrefix = "Stampede."

// target names the entry in a direct invocation payload.
type target struct {
	Project *string `json:"project"`
	Domain  *string `json:"domain"`
	Key     *string `json:"key"`
}

func (t *target) id() (manager.ID, error) {
	for _, f := range []struct {
		name string
		v    *string
	}{{"project", t.Project}, {"domain", t.Domain}, {"key", t.Key}} {
		if f.v == nil {
			return manager.ID{}, manager.Errorf(manager.CodeInvalidArgument, "%s: required", f.name)
		}
	}
	return manager.ID{Project: *t.Project, Domain: *t.Domain, Key: *t.Key}, nil
}

// Direct serves a direct invocation (Step Functions LambdaInvoke, the SDK's
// Invoke): the payload is the operation's body plus project, domain and key;
// the result is the HTTP response body, except that a get answers
// {"found": false} on a miss. Failures are Lambda errors whose errorType is
// ErrorTypePrefix plus the code in CamelCase and whose errorMessage is the
// JSON error body.
func (h *Handler) Direct(ctx context.Context, payload json.RawMessage) (any, error) {
	op := h.opOr("")
	requestID := ""
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		requestID = lc.AwsRequestID
	}
	var extra time.Duration
	if op == OpGet {
		var probe struct {
			WaitMS json.Number `json:"wait_ms"`
		}
		_ = json.Unmarshal(payload, &probe)
		extra = waitOf(probe.WaitMS.String())
	}
	r := h.serveWithin(ctx, op, requestID, extra, func(ctx context.Context) result {
		if h.only == "" {
			return failure(manager.Errorf(manager.CodeInvalidArgument, "payload: direct invocations go to one operation's function"))
		}
		return h.direct(ctx, payload)
	})
	if r.err != nil {
		_, body := responseBody(r)
		return nil, messages.InvokeResponse_Error{Type: errorType(manager.ErrorCode(r.err)), Message: string(body)}
	}
	if r.direct != nil {
		return r.direct, nil
	}
	return r.body, nil
}

func (h *Handler) direct(ctx context.Context, payload json.RawMessage) result {
	switch h.only {
	case OpGet:
		var in struct {
			target
			getParams
		}
		return runDirect(payload, &in, in.id, func(id manager.ID) result { return h.get(ctx, id, in.getParams, "") })
	case OpPut:
		var in struct {
			target
			putBody
			IfVersion      *int64  `json:"if_version"`
			IdempotencyKey *string `json:"idempotency_key"`
		}
		return runDirect(payload, &in, in.id, func(id manager.ID) result {
			return h.put(ctx, id, in.putBody, in.IfVersion, deref(in.IdempotencyKey))
		})
	case OpDelete:
		var in struct {
			target
			IfVersion      *int64  `json:"if_version"`
			DeleteBlob     *bool   `json:"delete_blob"`
			IdempotencyKey *string `json:"idempotency_key"`
		}
		return runDirect(payload, &in, in.id, func(id manager.ID) result {
			return h.delete(ctx, id, manager.DeleteRequest{IfVersion: in.IfVersion, DeleteBlob: isTrue(in.DeleteBlob), IdempotencyKey: deref(in.IdempotencyKey)})
		})
	case OpReserve:
		var in struct {
			target
			reserveBody
			// Accepted for symmetry with the other writes; a reserve is
			// idempotent by itself (a retry by the same owner extends).
			IdempotencyKey *string `json:"idempotency_key"`
		}
		return runDirect(payload, &in, in.id, func(id manager.ID) result { return h.reserve(ctx, id, in.reserveBody) })
	case OpRelease:
		var in struct {
			target
			OwnerID        *string `json:"owner_id"`
			IdempotencyKey *string `json:"idempotency_key"`
		}
		return runDirect(payload, &in, in.id, func(id manager.ID) result { return h.release(ctx, id, in.OwnerID, deref(in.IdempotencyKey)) })
	}
	return failure(errNoRoute())
}

// runDirect decodes payload into in, takes the ID from it and runs call.
func runDirect(payload json.RawMessage, in any, id func() (manager.ID, error), call func(manager.ID) result) result {
	if err := decodeStrict(payload, in); err != nil {
		return failure(err)
	}
	target, err := id()
	if err != nil {
		return failure(err)
	}
	return call(target)
}

// errorType turns invalid_argument into Stampede.InvalidArgument.
func errorType(code string) string {
	var b strings.Builder
	b.WriteString(ErrorTypePrefix)
	for _, word := range strings.Split(code, "_") {
		if word != "" {
			b.WriteString(strings.ToUpper(word[:1]) + word[1:])
		}
	}
	return b.String()
}
