package e2e_test

// The proof's rig: an API served in-process over DynamoDB Local (the store's
// DynamoDB traffic optionally through a fault proxy), a client that sends
// one model operation as an HTTP request and reads the answer back into the
// model's terms, and the porcupine check with its visualization.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/stampede-cache/stampede/internal/apimodel"
	"github.com/stampede-cache/stampede/internal/dynamostore"
	"github.com/stampede-cache/stampede/internal/faultproxy"
	"github.com/stampede-cache/stampede/internal/manager"
	"github.com/stampede-cache/stampede/internal/testenv"
	"github.com/stampede-cache/stampede/internal/transport"
)

// Leases in the proof: a one-second heartbeat (the clamp) times three,
// short enough that reservations expire and are taken over during a run.
const (
	proofHeartbeat  = time.Second
	proofMultiplier = 3
	proofLeaseMs    = int64(proofHeartbeat/time.Millisecond) * proofMultiplier
	proofProject    = "proof"
	// opTagHeader carries an operation's identity from the test client,
	// through the server's context, onto each DynamoDB request it causes, so
	// the fault proxy can fault a chosen operation's attempts.
	opTagHeader = "X-Stampede-Proof-Op"
	// proofTTLSeconds is the lifetime of puts with a ttl: far beyond a run.
	proofTTLSeconds = 86400
)

// skipOnDeployment skips the proof against a deployment: it needs the
// in-process server and its DynamoDB.
func skipOnDeployment(t *testing.T) {
	t.Helper()
	if os.Getenv(envAPIURL) != "" {
		t.Skip("the proof runs against the in-process server; STAMPEDE_API_URL is set")
	}
}

// proofOptions shape a proof server.
type proofOptions struct {
	// proxy routes the store's DynamoDB traffic through a fault proxy.
	proxy bool
	// budget is the transport's request budget; zero is its default.
	budget time.Duration
	// landings, when set, observes the requests the proxy forwards.
	landings *landings
}

// proofServer is the API under proof.
type proofServer struct {
	t      *testing.T
	url    string
	domain string
	http   *http.Client
	// direct reads the table without the proxy.
	direct *dynamodb.Client
	table  string
	proxy  *faultproxy.Proxy
	// internals collects what the server logged about 5xx answers.
	internals *internalLog
	// leases collects acquired leases that left the server already expired.
	leases *leaseCheck
}

type opTagKey struct{}

func newProofServer(t *testing.T, opts proofOptions) *proofServer {
	t.Helper()
	direct, _ := testenv.Client(t)
	table := testenv.Table(t, direct)
	storeClient := direct
	var proxy *faultproxy.Proxy
	if opts.proxy {
		var err error
		var popts faultproxy.Options
		if l := opts.landings; l != nil {
			popts.OnForward, popts.OnServed = l.forwarded, l.served
		}
		proxy, err = faultproxy.Start(testenv.Endpoint(t), popts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = proxy.Close() })
		storeClient, _ = testenv.Client(t, func(o *dynamodb.Options) {
			o.BaseEndpoint = aws.String(proxy.URL())
			o.APIOptions = append(o.APIOptions, tagDynamoDBRequests)
			// As docs/reliability.md describes the service's client: three
			// attempts, backoff at most a second.
			o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
				so.MaxAttempts = 3
				so.MaxBackoff = time.Second
			})
		})
	}
	mgr, err := manager.New(dynamostore.New(storeClient, table), manager.Config{
		MaxHeartbeat:        proofHeartbeat,
		HeartbeatMultiplier: proofMultiplier,
	})
	if err != nil {
		t.Fatal(err)
	}
	internals := &internalLog{}
	leases := &leaseCheck{}
	router := transport.NewRouter(mgr, transport.Options{Log: slog.New(internals), Budget: opts.budget})
	// As `stampede serve` runs it: the HTTP server's own plain-text errors
	// rewritten as JSON.
	srv := httptest.NewUnstartedServer(leases.wrap(tagContext(router)))
	srv.Listener = transport.JSONErrors(srv.Listener)
	srv.Start()
	t.Cleanup(srv.Close)
	return &proofServer{
		t:      t,
		url:    srv.URL,
		domain: fmt.Sprintf("d%d", time.Now().UnixNano()%1e9),
		http: &http.Client{Transport: &http.Transport{
			MaxIdleConnsPerHost: 64,
			// Each answer is read to the end; no compression games.
			DisableCompression: true,
		}},
		direct:    direct,
		table:     table,
		proxy:     proxy,
		internals: internals,
		leases:    leases,
	}
}

// tagContext moves the test's operation tag from the request into its
// context, where the DynamoDB client finds it.
func tagContext(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tag := r.Header.Get(opTagHeader); tag != "" {
			r = r.WithContext(context.WithValue(r.Context(), opTagKey{}, tag))
		}
		h.ServeHTTP(w, r)
	})
}

// tagDynamoDBRequests stamps every DynamoDB request (each retry too) with the
// operation tag found in its context.
func tagDynamoDBRequests(stack *middleware.Stack) error {
	return stack.Build.Add(middleware.BuildMiddlewareFunc("ProofOpTag",
		func(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
			if tag, ok := ctx.Value(opTagKey{}).(string); ok {
				if req, ok := in.Request.(*smithyhttp.Request); ok {
					req.Header.Set(opTagHeader, tag)
				}
			}
			return next.HandleBuild(ctx, in)
		}), middleware.After)
}

// internalLog is a slog handler keeping the server's log lines about 500
// answers (bugs, by the contract), for the failure report.
type internalLog struct {
	mu    sync.Mutex
	lines []string
	count int
}

func (l *internalLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *internalLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *internalLog) WithGroup(string) slog.Handler            { return l }

func (l *internalLog) Handle(_ context.Context, r slog.Record) error {
	internal := false
	var b strings.Builder
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "code" && a.Value.String() == manager.CodeInternal {
			internal = true
		}
		fmt.Fprintf(&b, " %s=%q", a.Key, a.Value.String())
		return true
	})
	if internal {
		l.mu.Lock()
		l.count++
		if len(l.lines) < 10 {
			l.lines = append(l.lines, r.Message+b.String())
		}
		l.mu.Unlock()
	}
	return nil
}

func (l *internalLog) report() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.count == 0 {
		return ""
	}
	return fmt.Sprintf("%d answers were 500 internal; the server logged:\n  %s", l.count, strings.Join(l.lines, "\n  "))
}

// leaseCheck watches reserve answers as they leave the server: an acquired
// lease must not have expired already (docs/api.md, Leases).
type leaseCheck struct {
	mu      sync.Mutex
	expired []string
}

type capture struct {
	http.ResponseWriter
	body bytes.Buffer
}

func (c *capture) Write(p []byte) (int, error) {
	c.body.Write(p)
	return c.ResponseWriter.Write(p)
}

func (l *leaseCheck) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			h.ServeHTTP(w, r)
			return
		}
		c := &capture{ResponseWriter: w}
		h.ServeHTTP(c, r)
		left := time.Now()
		var res struct {
			Acquired    bool      `json:"acquired"`
			Reservation resBodyJS `json:"reservation"`
		}
		if json.Unmarshal(c.body.Bytes(), &res) != nil || !res.Acquired {
			return
		}
		if exp, err := parseMillis(res.Reservation.ExpiresAt); err == nil && exp <= left.UnixMilli() {
			l.mu.Lock()
			l.expired = append(l.expired, fmt.Sprintf("%s %s answered acquired:true with expires_at %s, %d ms before the answer left",
				r.Method, r.URL.EscapedPath(), res.Reservation.ExpiresAt, left.UnixMilli()-exp))
			l.mu.Unlock()
		}
	})
}

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
		if err := strictJSON(a.body, &e); err != nil || e.Error.Code != errorCodes[a.status] || e.Error.Message == "" {
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
				if err = strictJSON(a.body, &e); err == nil {
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
			if err = strictJSON(a.body, &body); err == nil && body.Reservation == nil {
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
			if err = strictJSON(a.body, &e); err == nil {
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
			if err = strictJSON(a.body, &body); err == nil && body.Deleted == nil {
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
			if err = strictJSON(a.body, &body); err == nil && (body.Acquired == nil || body.Reservation == nil) {
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
			if err = strictJSON(a.body, &body); err == nil && body.Released == nil {
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

// strictJSON decodes an answer's body, refusing fields the proof does not
// know only where it matters: it accepts extra fields (the API may grow).
func strictJSON(body []byte, v any) error {
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

// rawItem reads a key's item straight from the table (no proxy, no API).
func (s *proofServer) rawItem(ctx context.Context, key string) (map[string]types.AttributeValue, error) {
	out, err := s.direct.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.table,
		ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{
			dynamostore.PartitionKey: &types.AttributeValueMemberS{Value: proofProject + "/" + s.domain + "/" + key},
			dynamostore.SortKey:      &types.AttributeValueMemberS{Value: "cache"},
		},
	})
	if err != nil {
		return nil, err
	}
	return out.Item, nil
}

// checkHistory runs porcupine over the history. On a violation (or a check
// that runs out of time) it writes the visualization into a fresh temporary
// directory and fails the test naming it, with the operations that could
// not be linearized.
func checkHistory(t *testing.T, name string, history []porcupine.Operation, timeout time.Duration) bool {
	t.Helper()
	model := apimodel.Model()
	model.DescribeOperationMetadata = func(info interface{}) string {
		if m, ok := info.(*opMeta); ok {
			return m.text
		}
		return ""
	}
	start := time.Now()
	res, info := porcupine.CheckOperationsVerbose(model, history, timeout)
	t.Logf("%s: porcupine checked %d operations in %s: %s", name, len(history), time.Since(start).Round(time.Millisecond), res)
	if res == porcupine.Ok {
		return true
	}
	dir, err := os.MkdirTemp("", "stampede-linearizability-")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, sanitizeName(name)+".html")
	if err := porcupine.VisualizePath(model, info, file); err != nil {
		t.Errorf("write the visualization: %v", err)
	}
	listing := filepath.Join(dir, sanitizeName(name)+".txt")
	if err := os.WriteFile(listing, []byte(listHistory(history)), 0o644); err != nil {
		t.Errorf("write the history: %v", err)
	}
	if err := saveHistory(filepath.Join(dir, sanitizeName(name)+".json"), history); err != nil {
		t.Errorf("save the history: %v", err)
	}
	if res == porcupine.Unknown {
		t.Errorf("%s: porcupine could not decide within %s (not proven); visualization: %s, history: %s", name, timeout, file, listing)
		return false
	}
	t.Errorf("%s: the history is not linearizable; visualization: %s, history: %s\n%s", name, file, listing, explain(history, info))
	return false
}

// opMeta identifies an operation of a history and carries its HTTP
// exchange, for the visualization and the listing.
type opMeta struct{ text string }

// savedOp is an operation of a saved history (STAMPEDE_PROOF_HISTORY).
type savedOp struct {
	Client       int
	Input        apimodel.Input
	Output       apimodel.Output
	Call, Return int64
	Exchange     string
}

// saveHistory writes a history as JSON, for TestSavedHistory to check again.
func saveHistory(path string, history []porcupine.Operation) error {
	ops := make([]savedOp, len(history))
	for i, op := range history {
		ops[i] = savedOp{Client: op.ClientId, Input: op.Input.(apimodel.Input), Output: op.Output.(apimodel.Output), Call: op.Call, Return: op.Return}
		if m, ok := op.Metadata.(*opMeta); ok {
			ops[i].Exchange = m.text
		}
	}
	data, err := json.Marshal(ops)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// TestSavedHistory checks again a history a failed run saved: set
// STAMPEDE_PROOF_HISTORY to its .json file.
func TestSavedHistory(t *testing.T) {
	path := os.Getenv("STAMPEDE_PROOF_HISTORY")
	if path == "" {
		t.Skip("set STAMPEDE_PROOF_HISTORY to a history a failed run saved")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ops []savedOp
	if err := json.Unmarshal(data, &ops); err != nil {
		t.Fatal(err)
	}
	history := make([]porcupine.Operation, len(ops))
	for i, op := range ops {
		history[i] = porcupine.Operation{ClientId: op.Client, Input: op.Input, Output: op.Output, Call: op.Call, Return: op.Return, Metadata: &opMeta{text: op.Exchange}}
	}
	checkHistory(t, "saved", history, 10*time.Minute)
}

// listHistory lists a history key by key, in call order, with each
// operation's HTTP exchange.
func listHistory(history []porcupine.Operation) string {
	var b strings.Builder
	for _, part := range apimodel.PartitionByKey(history) {
		part = append([]porcupine.Operation(nil), part...)
		sort.Slice(part, func(i, j int) bool { return part[i].Call < part[j].Call })
		fmt.Fprintf(&b, "key %q\n", part[0].Input.(apimodel.Input).Key)
		for _, op := range part {
			in, out := op.Input.(apimodel.Input), op.Output.(apimodel.Output)
			fmt.Fprintf(&b, "  client %2d [%8.1f ms, %8.1f ms] now in [%d, %d] %s\n", op.ClientId, float64(op.Call)/1e6, float64(op.Return)/1e6,
				in.CallMs, out.ReturnMs, apimodel.Describe(in, out))
			if m, ok := op.Metadata.(*opMeta); ok {
				fmt.Fprintf(&b, "      %s\n", strings.ReplaceAll(m.text, "\n", "\n      "))
			}
		}
	}
	return b.String()
}

// dedupe drops repeated states.
func dedupe(states []apimodel.State) []apimodel.State {
	seen := map[apimodel.State]bool{}
	out := states[:0]
	for _, s := range states {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func sanitizeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '_'
	}, s)
}

// explain describes, for each key whose history is not linearizable, the
// longest linearizable prefix's end state and the operations that could
// not follow it.
func explain(history []porcupine.Operation, info porcupine.LinearizationInfo) string {
	var b strings.Builder
	parts := apimodel.PartitionByKey(history)
	partials := info.PartialLinearizationsOperations()
	for i, part := range parts {
		if i >= len(partials) {
			break
		}
		var longest []porcupine.Operation
		for _, p := range partials[i] {
			if len(p) > len(longest) {
				longest = p
			}
		}
		if len(longest) == len(part) {
			continue
		}
		key := part[0].Input.(apimodel.Input).Key
		states := []apimodel.State{{}}
		for _, op := range longest {
			var next []apimodel.State
			for _, s := range states {
				next = append(next, apimodel.Step(s, op.Input.(apimodel.Input), op.Output.(apimodel.Output))...)
			}
			states = dedupe(next)
		}
		fmt.Fprintf(&b, "key %q: %d of %d operations linearize; then the state is one of:\n", key, len(longest), len(part))
		for j, s := range states {
			if j == 4 {
				fmt.Fprintf(&b, "    … %d more\n", len(states)-j)
				break
			}
			fmt.Fprintf(&b, "    %s\n", s)
		}
		done := map[any]bool{}
		for _, op := range longest {
			done[op.Metadata] = true
		}
		var rest []porcupine.Operation
		for _, op := range part {
			if !done[op.Metadata] {
				rest = append(rest, op)
			}
		}
		sort.Slice(rest, func(a, b int) bool { return rest[a].Call < rest[b].Call })
		// The candidates to come next are those called before any of the
		// rest returned; say which the model refuses outright.
		firstReturn := rest[0].Return
		for _, op := range rest {
			firstReturn = min(firstReturn, op.Return)
		}
		b.WriteString("  the operations that could come next:\n")
		for j, op := range rest {
			if op.Call > firstReturn {
				break
			}
			if j == 12 {
				b.WriteString("    …\n")
				break
			}
			in, out := op.Input.(apimodel.Input), op.Output.(apimodel.Output)
			verdict := "refused by the model"
			for _, s := range states {
				if len(apimodel.Step(s, in, out)) > 0 {
					verdict = "possible, but leads nowhere"
					break
				}
			}
			fmt.Fprintf(&b, "    client %d [%d ms, %d ms] %s: %s\n", op.ClientId, op.Call/1e6, op.Return/1e6, apimodel.Describe(in, out), verdict)
		}
	}
	return b.String()
}
