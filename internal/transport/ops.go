package transport

import (
	"bytes"
	"context"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/stampede-cache/stampede/internal/manager"
)

// result is what one operation produced, before it is shaped for API
// Gateway or a direct invocation.
type result struct {
	status int
	// body is the HTTP response body; nil with noBody (304).
	body   any
	noBody bool
	// header holds response headers beyond Content-Type.
	header map[string]string
	// direct, when set, is the direct-invocation response instead of body.
	direct any
	// outcome names what happened, for logs and metrics.
	outcome string
	// err, when set, is the failure; status and body derive from it.
	err error
	// warning is a failure after the operation succeeded (an output object
	// that could not be deleted): logged, not returned as an error.
	warning error
	// requestID, id and owner identify the request in its log line.
	requestID string
	id        *manager.ID
	owner     string
}

// about records which key and owner a result is about, for the log line.
func (r result) about(id manager.ID, owner string) result {
	r.id, r.owner = &id, owner
	return r
}

func failure(err error) result { return result{err: err} }

// options checks a get's read options and turns them into the manager's.
func (p getParams) options() (manager.GetOptions, error) {
	var opts manager.GetOptions
	strong := false
	if p.Consistency != nil {
		switch *p.Consistency {
		case "strong":
			strong = true
		case "eventual":
			opts.Eventual = true
		default:
			return opts, manager.Errorf(manager.CodeInvalidArgument, "consistency: must be strong or eventual")
		}
	}
	if p.MinVersion != nil {
		if *p.MinVersion < 1 {
			return opts, manager.Errorf(manager.CodeInvalidArgument, "min_version: must be at least 1")
		}
		opts.MinVersion = *p.MinVersion
	}
	if p.MaxStalenessMS != nil {
		if strong {
			return opts, manager.Errorf(manager.CodeInvalidArgument, "max_staleness_ms: not allowed with consistency=strong")
		}
		if *p.MaxStalenessMS < 1 || *p.MaxStalenessMS > manager.MaxStaleness.Milliseconds() {
			return opts, manager.Errorf(manager.CodeInvalidArgument, "max_staleness_ms: must be from 1 to %d", manager.MaxStaleness.Milliseconds())
		}
		opts.MaxStaleness = time.Duration(*p.MaxStalenessMS) * time.Millisecond
	}
	opts.Verify = p.Verify != nil && *p.Verify
	if p.WaitMS != nil {
		if *p.WaitMS < 0 || *p.WaitMS > manager.MaxWait.Milliseconds() {
			return opts, manager.Errorf(manager.CodeInvalidArgument, "wait_ms: must be from 0 to %d", manager.MaxWait.Milliseconds())
		}
		opts.Wait = time.Duration(*p.WaitMS) * time.Millisecond
	}
	return opts, nil
}

func (h *Handler) get(ctx context.Context, id manager.ID, p getParams, ifNoneMatch string) result {
	return h.doGet(ctx, id, p, ifNoneMatch).about(id, "")
}

func (h *Handler) doGet(ctx context.Context, id manager.ID, p getParams, ifNoneMatch string) result {
	tags, err := parseIfNoneMatch(ifNoneMatch)
	if err != nil {
		return failure(err)
	}
	opts, err := p.options()
	if err != nil {
		return failure(err)
	}
	res, err := h.mgr.Get(ctx, id, opts)
	header := map[string]string{"Stampede-Read": string(res.Read)}
	if manager.ErrorCode(err) == manager.CodeNotFound {
		// A Step Functions Choice state branches on found; no Catch needed.
		return result{status: http.StatusNotFound, body: toErrorJSON(err), header: header,
			direct: getResultJSON{Found: false, Read: string(res.Read)}, outcome: "miss"}
	}
	if err != nil {
		return failure(err)
	}
	header["ETag"] = etag(res.Entry.Version)
	if tags.matches(res.Entry.Version) {
		return result{status: http.StatusNotModified, noBody: true, header: header, outcome: "hit"}
	}
	entry := toEntryJSON(res.Entry)
	return result{status: http.StatusOK, body: entry, header: header,
		direct: getResultJSON{Found: true, Entry: entry, Read: string(res.Read)}, outcome: "hit"}
}

func (h *Handler) put(ctx context.Context, id manager.ID, b putBody, ifVersion *int64, idempotencyKey string) result {
	return h.doPut(ctx, id, b, ifVersion, idempotencyKey).about(id, deref(b.OwnerID))
}

func (h *Handler) doPut(ctx context.Context, id manager.ID, b putBody, ifVersion *int64, idempotencyKey string) result {
	if b.OutputURI == nil {
		return failure(manager.Errorf(manager.CodeInvalidArgument, "output_uri: required"))
	}
	req := manager.PutRequest{
		OutputURI:      *b.OutputURI,
		Metadata:       b.Metadata.toManager(),
		Overwrite:      isTrue(b.Overwrite),
		MaxAgeSeconds:  b.MaxAgeSeconds,
		TTLSeconds:     b.TTLSeconds,
		IfVersion:      ifVersion,
		Fence:          b.Fence,
		Release:        isTrue(b.Release),
		DeleteBlob:     isTrue(b.DeleteBlob),
		VerifyOutput:   isTrue(b.VerifyOutput),
		IdempotencyKey: idempotencyKey,
	}
	if b.OwnerID != nil {
		if *b.OwnerID == "" {
			return failure(manager.Errorf(manager.CodeInvalidArgument, "owner_id: must not be empty"))
		}
		req.OwnerID = *b.OwnerID
	}
	res, err := h.mgr.Put(ctx, id, req)
	if err != nil {
		r := failure(err)
		switch manager.ErrorCode(err) {
		case manager.CodeAlreadyExists:
			r.outcome = "conflict"
		case manager.CodeFailedPrecondition:
			r.outcome = "precondition_failed"
			if req.OwnerID != "" {
				r.outcome = "fence_refused"
			}
		}
		return r
	}
	r := result{status: http.StatusOK, body: toEntryJSON(&res.Entry), outcome: "overwritten",
		header: map[string]string{"ETag": etag(res.Entry.Version)}, warning: res.BlobErr}
	if res.Created {
		r.status, r.outcome = http.StatusCreated, "created"
	}
	if req.DeleteBlob {
		r.header["Stampede-Output-Deleted"] = strconv.FormatBool(res.BlobErr == nil)
	}
	return r
}

func isTrue(b *bool) bool { return b != nil && *b }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (h *Handler) delete(ctx context.Context, id manager.ID, req manager.DeleteRequest) result {
	res, err := h.mgr.Delete(ctx, id, req)
	if err != nil {
		return failure(err).about(id, "")
	}
	body := deleteResultJSON{Deleted: res.Deleted}
	if req.DeleteBlob {
		ok := res.BlobErr == nil
		body.OutputDeleted = &ok
	}
	outcome := "absent"
	if res.Deleted {
		outcome = "deleted"
	}
	return result{status: http.StatusOK, body: body, outcome: outcome, warning: res.BlobErr}.about(id, "")
}

func (h *Handler) reserve(ctx context.Context, id manager.ID, b reserveBody) result {
	if b.OwnerID == nil {
		return failure(manager.Errorf(manager.CodeInvalidArgument, "owner_id: required")).about(id, "")
	}
	res, err := h.mgr.Reserve(ctx, id, manager.ReserveRequest{OwnerID: *b.OwnerID, HeartbeatSeconds: b.HeartbeatSeconds})
	if err != nil {
		return failure(err).about(id, *b.OwnerID)
	}
	outcome := "contended"
	switch {
	case res.TookOver:
		outcome = "taken_over"
	case res.Acquired:
		outcome = "acquired"
	}
	return result{
		status:  http.StatusOK,
		body:    reserveResultJSON{Acquired: res.Acquired, Reservation: *toReservationJSON(&res.Reservation), Entry: toEntryJSON(res.Entry)},
		outcome: outcome,
	}.about(id, *b.OwnerID)
}

func (h *Handler) release(ctx context.Context, id manager.ID, ownerID *string, idempotencyKey string) result {
	if ownerID == nil {
		return failure(manager.Errorf(manager.CodeInvalidArgument, "owner_id: required")).about(id, "")
	}
	released, err := h.mgr.Release(ctx, id, manager.ReleaseRequest{OwnerID: *ownerID, IdempotencyKey: idempotencyKey})
	if err != nil {
		return failure(err).about(id, *ownerID)
	}
	outcome := "not_held"
	if released {
		outcome = "released"
	}
	return result{status: http.StatusOK, body: releaseResultJSON{Released: released}, outcome: outcome}.about(id, *ownerID)
}

func (h *Handler) inspect(ctx context.Context, id manager.ID) result {
	res, err := h.mgr.Inspect(ctx, id)
	if manager.ErrorCode(err) == manager.CodeNotFound {
		return result{status: http.StatusNotFound, body: toErrorJSON(err), direct: inspectResultJSON{Reserved: false}, outcome: "free"}.about(id, "")
	}
	if err != nil {
		return failure(err).about(id, "")
	}
	r := toReservationJSON(&res)
	return result{status: http.StatusOK, body: inspectResultJSON{Reserved: true, Reservation: r},
		direct: inspectResultJSON{Reserved: true, Reservation: r}, outcome: "held"}.about(id, res.OwnerID)
}

// IdempotencyKeyHeader names the request header carrying a caller's
// idempotency key.
const IdempotencyKeyHeader = "Idempotency-Key"

// idempotencyKey reads the Idempotency-Key header of a write.
func idempotencyKey(header http.Header) (string, error) {
	values := header.Values(IdempotencyKeyHeader)
	switch {
	case len(values) == 0:
		return "", nil
	case len(values) > 1 || values[0] == "":
		return "", manager.Errorf(manager.CodeInvalidArgument, "Idempotency-Key: must be one value of 1 to %d visible ASCII characters", manager.MaxIdempotencyKeyBytes)
	}
	v := values[0]
	if len(v) > manager.MaxIdempotencyKeyBytes || strings.IndexFunc(v, func(r rune) bool { return r < 0x21 || r > 0x7e }) >= 0 {
		return "", manager.Errorf(manager.CodeInvalidArgument, "Idempotency-Key: must be 1 to %d visible ASCII characters", manager.MaxIdempotencyKeyBytes)
	}
	return v, nil
}

// httpCall runs op for an HTTP request: it reads the query parameters,
// headers and body the operation takes and refuses anything else.
func (h *Handler) httpCall(ctx context.Context, op Op, id manager.ID, query url.Values, header http.Header, body []byte) result {
	if err := checkQuery(query, queryParams(op)...); err != nil {
		return failure(err)
	}
	if len(bytes.TrimSpace(body)) > 0 && (op == OpGet || op == OpDelete || op == OpRelease || op == OpInspect) {
		return failure(manager.Errorf(manager.CodeInvalidArgument, "body: %s takes no body", op))
	}
	key, err := idempotencyKey(header)
	if err != nil {
		return failure(err)
	}
	switch op {
	case OpGet:
		var p getParams
		if err := parseQuery(query, &p); err != nil {
			return failure(err)
		}
		return h.get(ctx, id, p, header.Get("If-None-Match"))
	case OpInspect:
		return h.inspect(ctx, id)
	case OpPut:
		ifVersion, err := parseIfMatch(header.Get("If-Match"))
		if err != nil {
			return failure(err)
		}
		var b putBody
		if err := decodeStrict(body, &b); err != nil {
			return failure(err)
		}
		return h.put(ctx, id, b, ifVersion, key)
	case OpDelete:
		ifVersion, err := parseIfMatch(header.Get("If-Match"))
		if err != nil {
			return failure(err)
		}
		deleteBlob, err := boolParam(query, "delete_blob")
		if err != nil {
			return failure(err)
		}
		return h.delete(ctx, id, manager.DeleteRequest{IfVersion: ifVersion, DeleteBlob: isTrue(deleteBlob), IdempotencyKey: key})
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
		return h.release(ctx, id, owner, key)
	}
	return failure(errNoRoute())
}

// parseQuery reads a get's query parameters.
func parseQuery(q url.Values, p *getParams) error {
	if q.Has("consistency") {
		v := q.Get("consistency")
		p.Consistency = &v
	}
	var err error
	if p.MinVersion, err = intParam(q, "min_version"); err != nil {
		return err
	}
	if p.MaxStalenessMS, err = intParam(q, "max_staleness_ms"); err != nil {
		return err
	}
	if p.Verify, err = boolParam(q, "verify"); err != nil {
		return err
	}
	p.WaitMS, err = intParam(q, "wait_ms")
	return err
}

func intParam(q url.Values, name string) (*int64, error) {
	if !q.Has(name) {
		return nil, nil
	}
	n, err := strconv.ParseInt(q.Get(name), 10, 64)
	if err != nil {
		return nil, manager.Errorf(manager.CodeInvalidArgument, "%s: must be an integer from %d to %d", name, math.MinInt64, int64(math.MaxInt64))
	}
	return &n, nil
}

func boolParam(q url.Values, name string) (*bool, error) {
	if !q.Has(name) {
		return nil, nil
	}
	b, err := strconv.ParseBool(q.Get(name))
	if err != nil {
		return nil, manager.Errorf(manager.CodeInvalidArgument, "%s: must be true or false", name)
	}
	return &b, nil
}

// waitOf is the wait a get asks for (wait_ms), added to the request's
// budget; zero when absent or malformed (the get then refuses it).
func waitOf(ms string) time.Duration {
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil || n <= 0 || n > manager.MaxWait.Milliseconds() {
		return 0
	}
	return time.Duration(n) * time.Millisecond
}

// queryParams lists the query parameters op takes.
func queryParams(op Op) []string {
	switch op {
	case OpGet:
		return []string{"consistency", "min_version", "max_staleness_ms", "verify", "wait_ms"}
	case OpDelete:
		return []string{"delete_blob"}
	case OpRelease:
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
