package transport

import (
	"bytes"
	"context"
	"net/http"
	"net/url"

	"github.com/stampede-cache/stampede/internal/manager"
)

// result is what one operation produced, before it is shaped for API
// Gateway or a direct invocation.
type result struct {
	status int
	// body is the HTTP response body.
	body any
	// direct, when set, is the direct-invocation response instead of body.
	direct any
	// outcome names what happened, for logs and metrics.
	outcome string
	// err, when set, is the failure; status and body derive from it.
	err error
}

func failure(err error) result { return result{err: err} }

func (h *Handler) get(ctx context.Context, id manager.ID) result {
	e, err := h.mgr.Get(ctx, id)
	if manager.ErrorCode(err) == manager.CodeNotFound {
		// A Step Functions Choice state branches on found; no Catch needed.
		return result{status: http.StatusNotFound, body: toErrorJSON(err), direct: getResultJSON{Found: false}, outcome: "miss"}
	}
	if err != nil {
		return failure(err)
	}
	entry := toEntryJSON(e)
	return result{status: http.StatusOK, body: entry, direct: getResultJSON{Found: true, Entry: entry}, outcome: "hit"}
}

func (h *Handler) put(ctx context.Context, id manager.ID, b putBody) result {
	if b.OutputURI == nil {
		return failure(manager.Errorf(manager.CodeInvalidArgument, "output_uri: required"))
	}
	req := manager.PutRequest{
		OutputURI:     *b.OutputURI,
		Metadata:      b.Metadata.toManager(),
		Overwrite:     b.Overwrite != nil && *b.Overwrite,
		MaxAgeSeconds: b.MaxAgeSeconds,
		TTLSeconds:    b.TTLSeconds,
	}
	res, err := h.mgr.Put(ctx, id, req)
	if err != nil {
		r := failure(err)
		if manager.ErrorCode(err) == manager.CodeAlreadyExists {
			r.outcome = "conflict"
		}
		return r
	}
	if res.Created {
		return result{status: http.StatusCreated, body: toEntryJSON(&res.Entry), outcome: "created"}
	}
	return result{status: http.StatusOK, body: toEntryJSON(&res.Entry), outcome: "overwritten"}
}

func (h *Handler) delete(ctx context.Context, id manager.ID) result {
	deleted, err := h.mgr.Delete(ctx, id)
	if err != nil {
		return failure(err)
	}
	outcome := "absent"
	if deleted {
		outcome = "deleted"
	}
	return result{status: http.StatusOK, body: deleteResultJSON{Deleted: deleted}, outcome: outcome}
}

func (h *Handler) reserve(ctx context.Context, id manager.ID, b reserveBody) result {
	if b.OwnerID == nil {
		return failure(manager.Errorf(manager.CodeInvalidArgument, "owner_id: required"))
	}
	res, err := h.mgr.Reserve(ctx, id, manager.ReserveRequest{OwnerID: *b.OwnerID, HeartbeatSeconds: b.HeartbeatSeconds})
	if err != nil {
		return failure(err)
	}
	outcome := "contended"
	if res.Acquired {
		outcome = "acquired"
	}
	return result{
		status:  http.StatusOK,
		body:    reserveResultJSON{Acquired: res.Acquired, Reservation: *toReservationJSON(&res.Reservation)},
		outcome: outcome,
	}
}

func (h *Handler) release(ctx context.Context, id manager.ID, ownerID *string) result {
	if ownerID == nil {
		return failure(manager.Errorf(manager.CodeInvalidArgument, "owner_id: required"))
	}
	released, err := h.mgr.Release(ctx, id, *ownerID)
	if err != nil {
		return failure(err)
	}
	outcome := "not_held"
	if released {
		outcome = "released"
	}
	return result{status: http.StatusOK, body: releaseResultJSON{Released: released}, outcome: outcome}
}

// httpCall runs op for an HTTP request: it reads the query and body the
// operation takes and refuses anything else.
func (h *Handler) httpCall(ctx context.Context, op Op, id manager.ID, query url.Values, body []byte) result {
	if err := checkQuery(query, queryParams(op)...); err != nil {
		return failure(err)
	}
	if len(bytes.TrimSpace(body)) > 0 && (op == OpGet || op == OpDelete || op == OpRelease) {
		return failure(manager.Errorf(manager.CodeInvalidArgument, "body: %s takes no body", op))
	}
	switch op {
	case OpGet:
		return h.get(ctx, id)
	case OpPut:
		var b putBody
		if err := decodeStrict(body, &b); err != nil {
			return failure(err)
		}
		return h.put(ctx, id, b)
	case OpDelete:
		return h.delete(ctx, id)
	case OpReserve:
		var b reserveBody
		if err := decodeStrict(body, &b); err != nil {
			return failure(err)
		}
		return h.reserve(ctx, id, b)
	case OpRelease:
		var owner *string
		if query.Has("owner_id") {
			v := query.Get("owner_id")
			owner = &v
		}
		return h.release(ctx, id, owner)
	}
	return failure(errNoRoute())
}

// queryParams lists the query parameters op takes.
func queryParams(op Op) []string {
	if op == OpRelease {
		return []string{"owner_id"}
	}
	return nil
}

// checkQuery refuses unknown or repeated query parameters.
func checkQuery(q url.Values, allowed ...string) error {
	for name, values := range q {
		known := false
		for _, a := range allowed {
			known = known || a == name
		}
		if !known {
			return manager.Errorf(manager.CodeInvalidArgument, "%s: unknown query parameter", name)
		}
		if len(values) > 1 {
			return manager.Errorf(manager.CodeInvalidArgument, "%s: given more than once", name)
		}
	}
	return nil
}
