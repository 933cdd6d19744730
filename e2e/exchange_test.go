package e2e_test

// Sending one model operation as an HTTP request and reading the answer
// back into the model's terms.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/stampede-cache/stampede/internal/apimodel"
	"github.com/stampede-cache/stampede/internal/manager"
)

// keyPath is a key percent-encoded segment by segment, as clients do.
func keyPath(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

func (s *proofServer) path(kind, key string) string {
	return fmt.Sprintf("/v1/projects/%s/domains/%s/%s/%s", proofProject, s.domain, kind, keyPath(key))
}

// httpRequest is one HTTP request of the proof.
type httpRequest struct {
	method, path string
	header       http.Header
	body         string
}

func (r httpRequest) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.method, r.path)
	keys := make([]string, 0, len(r.header))
	for k := range r.header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k != opTagHeader {
			fmt.Fprintf(&b, " %s: %s", k, strings.Join(r.header[k], ","))
		}
	}
	if r.body != "" {
		fmt.Fprintf(&b, " %s", r.body)
	}
	return b.String()
}

// request turns a model operation into its HTTP request.
func (s *proofServer) request(in apimodel.Input, idempotencyKey string) httpRequest {
	r := httpRequest{header: http.Header{}}
	if idempotencyKey != "" {
		r.header.Set("Idempotency-Key", idempotencyKey)
	}
	switch in.Op {
	case apimodel.Get:
		r.method, r.path = http.MethodGet, s.path("cache", in.Key)
		if in.IfNoneMatch != 0 {
			r.header.Set("If-None-Match", strconv.Quote(strconv.FormatInt(in.IfNoneMatch, 10)))
		}
	case apimodel.Inspect:
		r.method, r.path = http.MethodGet, s.path("reservations", in.Key)
	case apimodel.Put:
		r.method, r.path = http.MethodPut, s.path("cache", in.Key)
		body := map[string]any{
			"output_uri": in.URI,
			"metadata":   map[string]any{"labels": map[string]string{"put": putID(in.URI)}},
		}
		if in.Overwrite {
			body["overwrite"] = true
		}
		if in.TTL {
			body["ttl_seconds"] = proofTTLSeconds
		}
		if in.Owner != "" {
			body["owner_id"] = in.Owner
		}
		if in.Fence != 0 {
			body["fence"] = in.Fence
		}
		if in.Release {
			body["release"] = true
		}
		r.body = mustJSON(body)
		if in.IfMatch != 0 {
			r.header.Set("If-Match", strconv.Quote(strconv.FormatInt(in.IfMatch, 10)))
		}
	case apimodel.Delete:
		r.method, r.path = http.MethodDelete, s.path("cache", in.Key)
		if in.IfMatch != 0 {
			r.header.Set("If-Match", strconv.Quote(strconv.FormatInt(in.IfMatch, 10)))
		}
	case apimodel.Reserve:
		r.method, r.path = http.MethodPost, s.path("reservations", in.Key)
		r.body = mustJSON(map[string]any{"owner_id": in.Owner, "heartbeat_interval_seconds": 1})
	case apimodel.Release:
		r.method, r.path = http.MethodDelete, s.path("reservations", in.Key)+"?owner_id="+url.QueryEscape(in.Owner)
	}
	return r
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// putID is the identity of the put that wrote uri: its last segment.
func putID(uri string) string { return uri[strings.LastIndexByte(uri, '/')+1:] }

// answer is one HTTP answer, or the failure to get one.
type answer struct {
	status int
	header http.Header
	body   []byte
	err    error
	// sent and got bound the exchange.
	sent, got time.Time
	// tag identifies the attempt to the proxy.
	tag string
}

func (a answer) String() string {
	if a.err != nil {
		return "no answer: " + a.err.Error()
	}
	return fmt.Sprintf("%d %s", a.status, bytes.TrimSpace(a.body))
}

// label names the answer for counting: its status, or "no answer".
func (a answer) label() string {
	if a.err != nil {
		return "no-answer"
	}
	return strconv.Itoa(a.status)
}

// send sends r within timeout, tagged with tag.
func (s *proofServer) send(r httpRequest, tag string, timeout time.Duration) answer {
	a := answer{sent: time.Now(), tag: tag}
	a.status, a.header, a.body, a.err = s.exchange(r, tag, timeout)
	a.got = time.Now()
	return a
}

func (s *proofServer) exchange(r httpRequest, tag string, timeout time.Duration) (int, http.Header, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.method, s.url+r.path, strings.NewReader(r.body))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header = r.header.Clone()
	if tag != "" {
		req.Header.Set(opTagHeader, tag)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, err
	}
	return resp.StatusCode, resp.Header, body, nil
}

// JSON shapes of answers.
type entryBodyJS struct {
	OutputURI string  `json:"output_uri"`
	Version   int64   `json:"version"`
	ExpiresAt *string `json:"expires_at"`
	Metadata  struct {
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
}

type resBodyJS struct {
	OwnerID          string `json:"owner_id"`
	Fence            int64  `json:"fence"`
	ExpiresAt        string `json:"expires_at"`
	HeartbeatSeconds int64  `json:"heartbeat_interval_seconds"`
}

type errBodyJS struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Existing *entryBodyJS `json:"existing"`
	Holder   *resBodyJS   `json:"holder"`
}

func parseMillis(s string) (int64, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, err
	}
	return t.UnixMilli(), nil
}

// errorCodes maps each error status to its code (docs/api.md, Errors).
var errorCodes = map[int]string{
	400: manager.CodeInvalidArgument, 404: manager.CodeNotFound, 409: manager.CodeAlreadyExists,
	412: manager.CodeFailedPrecondition, 413: manager.CodePayloadTooLarge, 429: manager.CodeThrottled,
	500: manager.CodeInternal, 503: manager.CodeUnavailable,
}

// interpret reads an answer into the model's terms. It returns a protocol
// violation when the answer breaks docs/api.md regardless of any state (a
// wrong status for the operation, a malformed body, a missing header); the
// operation is then unknown to the model.
func interpret(in apimodel.Input, a answer, callMs, retMs int64) (apimodel.Output, error) {
	out := apimodel.Output{ReturnMs: retMs, Status: a.status}
	if a.err != nil {
		// No answer: the request may still be running, without a bound on
		// when the server reads its clock.
		out.Unknown, out.ReturnMs = true, 1<<62
		return out, nil
	}
	violation := func(format string, args ...any) (apimodel.Output, error) {
		out.Unknown = true
		return out, fmt.Errorf(format, args...)
	}
	if a.status != http.StatusNotModified && a.header.Get("Content-Type") != "application/json" {
		return violation("Content-Type %q, want application/json", a.header.Get("Content-Type"))
	}
	if a.status >= 400 {
		var e errBodyJS
		if err := decodeAnswer(a.body, &e); err != nil || e.Error.Code != errorCodes[a.status] || e.Error.Message == "" {
			return violation("error body %s does not carry code %q and a message", a.body, errorCodes[a.status])
		}
		if a.status == http.StatusNotFound && strings.HasPrefix(e.Error.Message, "path") {
			return violation("404 for a route of docs/api.md: %s", e.Error.Message)
		}
		switch a.status {
		case http.StatusServiceUnavailable, http.StatusTooManyRequests:
			if a.header.Get("Retry-After") == "" {
				return violation("%d without Retry-After", a.status)
			}
			if a.status == http.StatusServiceUnavailable {
				out.Unknown = true
				return out, nil
			}
			// Throttled: the truth is that nothing happened.
			return out, nil
		case http.StatusInternalServerError:
			return violation("500 internal: %s", e.Error.Message)
		}
		if e.Existing != nil {
			ent, err := entryOf(*e.Existing, callMs, retMs, false)
			if err != nil {
				return violation("existing: %v", err)
			}
			out.Entry = &ent
		}
		if e.Holder != nil {
			r, err := reservationOf(*e.Holder)
			if err != nil {
				return violation("holder: %v", err)
			}
			out.Reservation = &r
		}
	}
	expect := func(statuses ...int) error {
		for _, s := range statuses {
			if a.status == s {
				return nil
			}
		}
		return fmt.Errorf("status %d, want one of %v", a.status, statuses)
	}
	var err error
	switch in.Op {
	case apimodel.Get:
		if err = expect(200, 304, 404); err == nil && a.status != 404 {
			if etagVersion(a.header) == 0 {
				err = fmt.Errorf("no ETag")
			} else if a.status == 200 {
				var e entryBodyJS
				if err = decodeAnswer(a.body, &e); err == nil {
					var ent apimodel.Entry
					ent, err = entryOf(e, callMs, retMs, false)
					out.Entry = &ent
				}
				if err == nil && etagVersion(a.header) != out.Entry.Version {
					err = fmt.Errorf("ETag %s for version %d", a.header.Get("ETag"), out.Entry.Version)
				}
			}
		}
	case apimodel.Inspect:
		if err = expect(200, 404); err == nil && a.status == 200 {
			var body struct {
				Reservation *resBodyJS `json:"reservation"`
			}
			if err = decodeAnswer(a.body, &body); err == nil && body.Reservation == nil {
				err = fmt.Errorf("no reservation")
			}
			if err == nil {
				var r apimodel.Reservation
				r, err = reservationOf(*body.Reservation)
				out.Reservation = &r
			}
		}
	case apimodel.Put:
		statuses := []int{200, 201}
		if !in.Overwrite && in.IfMatch == 0 {
			statuses = append(statuses, 409)
		}
		if in.Owner != "" || in.IfMatch != 0 {
			statuses = append(statuses, 412)
		}
		if err = expect(append(statuses, 429)...); err == nil && a.status < 300 {
			var e entryBodyJS
			if err = decodeAnswer(a.body, &e); err == nil {
				var ent apimodel.Entry
				ent, err = entryOf(e, callMs, retMs, in.TTL)
				out.Entry = &ent
			}
			if err == nil && etagVersion(a.header) != out.Entry.Version {
				err = fmt.Errorf("ETag %q for version %d", a.header.Get("ETag"), out.Entry.Version)
			}
		}
	case apimodel.Delete:
		statuses := []int{200, 429}
		if in.IfMatch != 0 {
			statuses = append(statuses, 412)
		}
		if err = expect(statuses...); err == nil && a.status == 200 {
			var body struct {
				Deleted *bool `json:"deleted"`
			}
			if err = decodeAnswer(a.body, &body); err == nil && body.Deleted == nil {
				err = fmt.Errorf("no deleted field")
			}
			if err == nil {
				out.Deleted = *body.Deleted
				if in.IfMatch != 0 && !out.Deleted {
					err = fmt.Errorf("deleted:false with If-Match; docs/api.md says 412")
				}
			}
		}
	case apimodel.Reserve:
		if err = expect(200, 429); err == nil && a.status == 200 {
			var body struct {
				Acquired    *bool      `json:"acquired"`
				Reservation *resBodyJS `json:"reservation"`
			}
			if err = decodeAnswer(a.body, &body); err == nil && (body.Acquired == nil || body.Reservation == nil) {
				err = fmt.Errorf("no acquired or reservation field")
			}
			if err == nil {
				out.Acquired = *body.Acquired
				var r apimodel.Reservation
				r, err = reservationOf(*body.Reservation)
				out.Reservation = &r
			}
		}
	case apimodel.Release:
		if err = expect(200, 429); err == nil && a.status == 200 {
			var body struct {
				Released *bool `json:"released"`
			}
			if err = decodeAnswer(a.body, &body); err == nil && body.Released == nil {
				err = fmt.Errorf("no released field")
			}
			if err == nil {
				out.Released = *body.Released
			}
		}
	}
	if err != nil {
		return violation("%v", err)
	}
	return out, nil
}

// decodeAnswer decodes an answer's body. Fields the proof does not know
// are ignored: the API may grow.
func decodeAnswer(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("body %s: %w", bytes.TrimSpace(body), err)
	}
	return nil
}

// etagVersion reads the version from an ETag header, 0 when malformed.
func etagVersion(h http.Header) int64 {
	tag := h.Get("ETag")
	if len(tag) < 3 || tag[0] != '"' || tag[len(tag)-1] != '"' {
		return 0
	}
	v, err := strconv.ParseInt(tag[1:len(tag)-1], 10, 64)
	if err != nil {
		return 0
	}
	return v
}

// entryOf checks an entry's body and turns it into the model's. For a put
// that just wrote it (written), its expiry must follow from ttl_seconds and
// an instant of the call.
func entryOf(e entryBodyJS, callMs, retMs int64, written bool) (apimodel.Entry, error) {
	out := apimodel.Entry{URI: e.OutputURI, Version: e.Version, Expires: e.ExpiresAt != nil}
	if e.Version < 1 {
		return out, fmt.Errorf("version %d", e.Version)
	}
	if got := e.Metadata.Labels["put"]; got != putID(e.OutputURI) {
		return out, fmt.Errorf("entry %s carries the metadata of put %q", e.OutputURI, got)
	}
	if written && e.ExpiresAt != nil {
		exp, err := parseMillis(*e.ExpiresAt)
		if err != nil {
			return out, fmt.Errorf("expires_at %q: %w", *e.ExpiresAt, err)
		}
		if now := exp - proofTTLSeconds*1000; now < callMs || now > retMs {
			return out, fmt.Errorf("expires_at %s is not ttl_seconds after an instant of the request [%d, %d]", *e.ExpiresAt, callMs, retMs)
		}
	}
	return out, nil
}

func reservationOf(r resBodyJS) (apimodel.Reservation, error) {
	exp, err := parseMillis(r.ExpiresAt)
	if err != nil {
		return apimodel.Reservation{}, fmt.Errorf("expires_at %q: %w", r.ExpiresAt, err)
	}
	if r.HeartbeatSeconds != int64(proofHeartbeat/time.Second) {
		return apimodel.Reservation{}, fmt.Errorf("heartbeat_interval_seconds %d, want the clamp %d", r.HeartbeatSeconds, proofHeartbeat/time.Second)
	}
	if r.Fence < 1 || r.OwnerID == "" {
		return apimodel.Reservation{}, fmt.Errorf("owner %q fence %d", r.OwnerID, r.Fence)
	}
	return apimodel.Reservation{Owner: r.OwnerID, Fence: r.Fence, ExpiresMs: exp}, nil
}
