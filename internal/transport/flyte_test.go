package transport_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/aws/aws-lambda-go/events"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/stampede-cache/stampede/internal/flyte"
	"github.com/stampede-cache/stampede/internal/flyte/gen/flyteidl2/cacheservice"
	cacheservicev2 "github.com/stampede-cache/stampede/internal/flyte/gen/flyteidl2/cacheservice/v2"
	"github.com/stampede-cache/stampede/internal/flyte/gen/flyteidl2/cacheservice/v2/cacheservicev2connect"
	"github.com/stampede-cache/stampede/internal/flyte/gen/flyteidl2/core"
	"github.com/stampede-cache/stampede/internal/manager"
	"github.com/stampede-cache/stampede/internal/testenv"
	"github.com/stampede-cache/stampede/internal/transport"
)

// flyteHost is one way to reach Flyte's cache service: the local server
// over a protocol and codec, or the Lambda functions through API Gateway
// events. Its client is generated from the same .proto files as the
// service.
type flyteHost struct {
	name string
	// http reaches the service; baseURL is the service's base URL for it.
	http    *http.Client
	baseURL string
	opts    []connect.ClientOption
	mgr     *manager.Manager
	clock   *testenv.Clock
	counter *testenv.Counter
}

func (h *flyteHost) client() cacheservicev2connect.CacheServiceClient {
	return cacheservicev2connect.NewCacheServiceClient(h.http, h.baseURL, h.opts...)
}

// flyteHosts returns every host, each over its own table and clock.
func flyteHosts(t *testing.T) []*flyteHost {
	t.Helper()
	var hosts []*flyteHost
	add := func(name string, hc *http.Client, baseURL string, mgr *manager.Manager, clock *testenv.Clock, counter *testenv.Counter, opts ...connect.ClientOption) {
		hosts = append(hosts, &flyteHost{name: name, http: hc, baseURL: baseURL, opts: opts, mgr: mgr, clock: clock, counter: counter})
	}
	protocols := []struct {
		name string
		opts []connect.ClientOption
	}{
		{"connect", nil},
		{"grpc", []connect.ClientOption{connect.WithGRPC()}},
		{"grpcweb", []connect.ClientOption{connect.WithGRPCWeb()}},
	}
	for _, p := range protocols {
		for _, codec := range []string{"proto", "json"} {
			mgr, clock, counter := newManager(t)
			srv := localFlyteServer(t, mgr)
			opts := p.opts
			if codec == "json" {
				opts = append(append([]connect.ClientOption{}, opts...), connect.WithProtoJSON())
			}
			add("local/"+p.name+"/"+codec, localClient(srv, p.name == "grpc"), srv.URL, mgr, clock, counter, opts...)
		}
	}
	for _, api := range []string{"httpapi", "rest"} {
		for _, p := range []struct {
			name string
			opts []connect.ClientOption
		}{
			{"connect/proto", nil},
			{"connect/json", []connect.ClientOption{connect.WithProtoJSON()}},
			{"grpcweb/proto", []connect.ClientOption{connect.WithGRPCWeb()}},
		} {
			mgr, clock, counter := newManager(t)
			gw := newAPIGateway(t, mgr, api == "rest")
			add("lambda/"+api+"/"+p.name, &http.Client{Transport: gw}, "https://api.example", mgr, clock, counter, p.opts...)
		}
	}
	return hosts
}

// localFlyteServer runs the local server's handler as `stampede serve`
// does: HTTP/1.1 and h2c.
func localFlyteServer(t *testing.T, mgr *manager.Manager) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(transport.NewRouter(mgr, transport.Options{Log: testLogger(t), RPC: flyte.Mount(mgr)}))
	srv.Config.Protocols = transport.LocalProtocols()
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// localClient speaks HTTP/1.1, or h2c (HTTP/2 without TLS) for gRPC.
func localClient(srv *httptest.Server, h2c bool) *http.Client {
	if !h2c {
		return srv.Client()
	}
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p}}
}

// flyteID is a request scope; org "" is the default org of the HTTP API.
func flyteID(org string) *cacheservicev2.Identifier {
	return &cacheservicev2.Identifier{Org: org, Project: "ml", Domain: "dev"}
}

// oneRequest runs call and checks that it sent exactly one DynamoDB request.
func oneRequest[T any](t *testing.T, h *flyteHost, what string, call func() (T, error)) (T, error) {
	t.Helper()
	h.counter.Reset()
	out, err := call()
	if n := h.counter.Total(); n != 1 {
		t.Errorf("%s: %d DynamoDB requests, want 1", what, n)
	}
	return out, err
}

// wantCode checks a call's Connect error code and message prefix.
func wantCode(t *testing.T, what string, err error, code connect.Code, msgPrefix string) {
	t.Helper()
	if connect.CodeOf(err) != code {
		t.Fatalf("%s: got %v, want %s", what, err, code)
	}
	var cerr *connect.Error
	if msgPrefix != "" && (!errorAs(err, &cerr) || !strings.HasPrefix(cerr.Message(), msgPrefix)) {
		t.Fatalf("%s: message %q, want it to start with %q", what, err, msgPrefix)
	}
}

func errorAs(err error, target **connect.Error) bool {
	e, ok := err.(*connect.Error)
	*target = e
	return ok
}

func TestFlyteCacheService(t *testing.T) {
	for _, h := range flyteHosts(t) {
		t.Run(h.name, func(t *testing.T) {
			t.Run("entries", func(t *testing.T) { testFlyteEntries(t, h) })
			t.Run("reservations", func(t *testing.T) { testFlyteReservations(t, h) })
			t.Run("bad input", func(t *testing.T) { testFlyteBadInput(t, h) })
			t.Run("orgs", func(t *testing.T) { testFlyteOrgs(t, h) })
			t.Run("contention", func(t *testing.T) { testFlyteContention(t, h) })
			t.Run("idempotency", func(t *testing.T) { testFlyteIdempotency(t, h) })
			if strings.Contains(h.name, "connect/json") {
				t.Run("JSON errors", func(t *testing.T) { testFlyteConnectJSONErrors(t, h) })
			}
		})
	}
}

func testFlyteEntries(t *testing.T, h *flyteHost) {
	ctx := context.Background()
	c := h.client()
	get := func(key string) (*connect.Response[cacheservice.GetCacheResponse], error) {
		return oneRequest(t, h, "get "+key, func() (*connect.Response[cacheservice.GetCacheResponse], error) {
			return c.Get(ctx, connect.NewRequest(&cacheservicev2.GetCacheRequest{
				BaseRequest: &cacheservice.GetCacheRequest{Key: key}, Identifier: flyteID("")}))
		})
	}
	put := func(key, uri string, overwrite *cacheservice.OverwriteOutput) error {
		_, err := oneRequest(t, h, "put "+key, func() (*connect.Response[cacheservice.PutCacheResponse], error) {
			return c.Put(ctx, connect.NewRequest(&cacheservicev2.PutCacheRequest{
				BaseRequest: &cacheservice.PutCacheRequest{
					Key: key,
					Output: &cacheservice.CachedOutput{
						Output: &cacheservice.CachedOutput_OutputUri{OutputUri: uri},
						Metadata: &cacheservice.Metadata{
							SourceIdentifier: &core.Identifier{ResourceType: core.ResourceType_TASK, Org: "acme",
								Project: "ml", Domain: "dev", Name: "train", Version: "v7"},
							KeyMap: &cacheservice.KeyMapMetadata{Values: map[string]string{"exec-name": "run-1"}},
							// The server sets the timestamps; these are ignored.
							CreatedAt: timestamppb.New(time.Unix(1, 0)),
						},
					},
					Overwrite: overwrite,
				},
				Identifier: flyteID(""),
			}))
		})
		return err
	}
	del := func(key string) error {
		_, err := oneRequest(t, h, "delete "+key, func() (*connect.Response[cacheservice.DeleteCacheResponse], error) {
			return c.Delete(ctx, connect.NewRequest(&cacheservicev2.DeleteCacheRequest{
				BaseRequest: &cacheservice.DeleteCacheRequest{Key: key}, Identifier: flyteID("")}))
		})
		return err
	}

	_, err := get("e")
	wantCode(t, "miss", err, connect.CodeNotFound, "base_request.key: no cached entry")

	created := h.clock.Now()
	if err := put("e", "s3://bucket/a", nil); err != nil {
		t.Fatalf("create: %v", err)
	}
	resp, err := get("e")
	if err != nil {
		t.Fatalf("hit: %v", err)
	}
	out := resp.Msg.GetOutput()
	md := out.GetMetadata()
	src := md.GetSourceIdentifier()
	if out.GetOutputUri() != "s3://bucket/a" || src.GetResourceType() != core.ResourceType_TASK || src.GetOrg() != "acme" ||
		src.GetProject() != "ml" || src.GetDomain() != "dev" || src.GetName() != "train" || src.GetVersion() != "v7" ||
		len(md.GetKeyMap().GetValues()) != 1 || md.GetKeyMap().GetValues()["exec-name"] != "run-1" ||
		!md.GetCreatedAt().AsTime().Equal(created) || !md.GetLastUpdatedAt().AsTime().Equal(created) {
		t.Fatalf("hit: %v", resp.Msg)
	}

	// Cross-API: the same entry through the HTTP API's default-org route.
	rec := httptest.NewRecorder()
	transport.NewRouter(h.mgr, transport.Options{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/projects/ml/domains/dev/cache/e", nil))
	var entry struct {
		OutputURI string `json:"output_uri"`
		Metadata  struct {
			Source map[string]string `json:"source"`
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &entry); rec.Code != http.StatusOK || err != nil ||
		entry.OutputURI != "s3://bucket/a" || entry.Metadata.Source["name"] != "train" ||
		entry.Metadata.Labels["exec-name"] != "run-1" || entry.Metadata.Labels["flyte.source_identifier.org"] != "acme" ||
		entry.Metadata.Labels["flyte.source_identifier.resource_type"] != "TASK" {
		t.Fatalf("HTTP API read of a Flyte put: %d %s", rec.Code, rec.Body)
	}

	err = put("e", "s3://bucket/b", nil)
	wantCode(t, "conflict", err, connect.CodeAlreadyExists, "base_request.key: an entry exists")
	err = put("e", "s3://bucket/b", &cacheservice.OverwriteOutput{MaxAge: durationpb.New(time.Minute)})
	wantCode(t, "young entry, max_age", err, connect.CodeAlreadyExists, "")
	h.clock.Advance(time.Minute + time.Second)
	if err := put("e", "s3://bucket/b", &cacheservice.OverwriteOutput{MaxAge: durationpb.New(time.Minute)}); err != nil {
		t.Fatalf("old entry, max_age: %v", err)
	}
	if err := put("e", "s3://bucket/c", &cacheservice.OverwriteOutput{Overwrite: true}); err != nil {
		t.Fatalf("overwrite: %v", err)
	}
	resp, err = get("e")
	if err != nil || resp.Msg.GetOutput().GetOutputUri() != "s3://bucket/c" ||
		!resp.Msg.GetOutput().GetMetadata().GetCreatedAt().AsTime().Equal(created) ||
		!resp.Msg.GetOutput().GetMetadata().GetLastUpdatedAt().AsTime().Equal(h.clock.Now()) {
		t.Fatalf("after overwrite: %v %v", resp, err)
	}

	if err := del("e"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	wantCode(t, "delete again", del("e"), connect.CodeNotFound, "base_request.key: no cached entry")
	_, err = get("e")
	wantCode(t, "get after delete", err, connect.CodeNotFound, "")
}

func testFlyteReservations(t *testing.T, h *flyteHost) {
	ctx := context.Background()
	c := h.client()
	reserve := func(owner string, heartbeat *durationpb.Duration) *cacheservice.Reservation {
		t.Helper()
		resp, err := oneRequest(t, h, "reserve "+owner, func() (*connect.Response[cacheservice.GetOrExtendReservationResponse], error) {
			return c.GetOrExtendReservation(ctx, connect.NewRequest(&cacheservicev2.GetOrExtendReservationRequest{
				BaseRequest: &cacheservice.GetOrExtendReservationRequest{Key: "r", OwnerId: owner, HeartbeatInterval: heartbeat},
				Identifier:  flyteID(""),
			}))
		})
		if err != nil {
			t.Fatalf("reserve %s: %v", owner, err)
		}
		return resp.Msg.GetReservation()
	}
	release := func(owner string) {
		t.Helper()
		_, err := oneRequest(t, h, "release "+owner, func() (*connect.Response[cacheservice.ReleaseReservationResponse], error) {
			return c.ReleaseReservation(ctx, connect.NewRequest(&cacheservicev2.ReleaseReservationRequest{
				BaseRequest: &cacheservice.ReleaseReservationRequest{Key: "r", OwnerId: owner}, Identifier: flyteID("")}))
		})
		if err != nil {
			t.Fatalf("release %s: %v", owner, err)
		}
	}
	holds := func(r *cacheservice.Reservation, owner string, heartbeat time.Duration, expires time.Time) {
		t.Helper()
		if r.GetKey() != "r" || r.GetOwnerId() != owner || r.GetHeartbeatInterval().AsDuration() != heartbeat ||
			!r.GetExpiresAt().AsTime().Equal(expires) {
			t.Fatalf("reservation %v, want owner %s, heartbeat %s, expiry %s", r, owner, heartbeat, expires)
		}
	}

	start := h.clock.Now()
	// 60s is clamped to the 10s maximum; the lease lasts three heartbeats.
	holds(reserve("a", durationpb.New(time.Minute)), "a", 10*time.Second, start.Add(30*time.Second))
	// Contention: b is answered a's reservation.
	holds(reserve("b", nil), "a", 10*time.Second, start.Add(30*time.Second))
	// a extends with a 2.5s heartbeat, rounded up to 3s.
	h.clock.Advance(5 * time.Second)
	holds(reserve("a", durationpb.New(2500*time.Millisecond)), "a", 3*time.Second, start.Add(14*time.Second))
	// Takeover after expiry.
	h.clock.Advance(10 * time.Second)
	holds(reserve("b", nil), "b", 10*time.Second, start.Add(45*time.Second))
	// A release by a non-holder succeeds and leaves b's reservation alone.
	release("a")
	holds(reserve("c", nil), "b", 10*time.Second, start.Add(45*time.Second))
	release("b")
	release("b")
	holds(reserve("c", nil), "c", 10*time.Second, start.Add(45*time.Second))
}

func testFlyteBadInput(t *testing.T, h *flyteHost) {
	ctx := context.Background()
	c := h.client()
	uri := &cacheservice.CachedOutput{Output: &cacheservice.CachedOutput_OutputUri{OutputUri: "s3://bucket/x"}}
	tests := []struct {
		name string
		call func() error
		msg  string
	}{
		{"no identifier", func() error {
			_, err := c.Get(ctx, connect.NewRequest(&cacheservicev2.GetCacheRequest{BaseRequest: &cacheservice.GetCacheRequest{Key: "k"}}))
			return err
		}, "identifier: required"},
		{"no base request", func() error {
			_, err := c.Delete(ctx, connect.NewRequest(&cacheservicev2.DeleteCacheRequest{Identifier: flyteID("")}))
			return err
		}, "base_request: required"},
		{"empty key", func() error {
			_, err := c.Get(ctx, connect.NewRequest(&cacheservicev2.GetCacheRequest{BaseRequest: &cacheservice.GetCacheRequest{}, Identifier: flyteID("")}))
			return err
		}, "base_request.key: required"},
		{"bad project", func() error {
			_, err := c.Get(ctx, connect.NewRequest(&cacheservicev2.GetCacheRequest{BaseRequest: &cacheservice.GetCacheRequest{Key: "k"},
				Identifier: &cacheservicev2.Identifier{Project: "ML!", Domain: "dev"}}))
			return err
		}, "identifier.project: "},
		{"bad org", func() error {
			_, err := c.Get(ctx, connect.NewRequest(&cacheservicev2.GetCacheRequest{BaseRequest: &cacheservice.GetCacheRequest{Key: "k"},
				Identifier: &cacheservicev2.Identifier{Org: "a/b", Project: "ml", Domain: "dev"}}))
			return err
		}, "identifier.org: "},
		{"output literals", func() error {
			_, err := c.Put(ctx, connect.NewRequest(&cacheservicev2.PutCacheRequest{Identifier: flyteID(""), BaseRequest: &cacheservice.PutCacheRequest{Key: "k",
				Output: &cacheservice.CachedOutput{Output: &cacheservice.CachedOutput_OutputLiterals{OutputLiterals: &core.LiteralMap{
					Literals: map[string]*core.Literal{"o0": {}}}}}}}))
			return err
		}, "base_request.output.output_literals: only output_uri is supported"},
		{"no output", func() error {
			_, err := c.Put(ctx, connect.NewRequest(&cacheservicev2.PutCacheRequest{Identifier: flyteID(""), BaseRequest: &cacheservice.PutCacheRequest{Key: "k"}}))
			return err
		}, "base_request.output: required"},
		{"not an S3 URI", func() error {
			_, err := c.Put(ctx, connect.NewRequest(&cacheservicev2.PutCacheRequest{Identifier: flyteID(""), BaseRequest: &cacheservice.PutCacheRequest{Key: "k",
				Output: &cacheservice.CachedOutput{Output: &cacheservice.CachedOutput_OutputUri{OutputUri: "gs://bucket/x"}}}}))
			return err
		}, "base_request.output.output_uri: "},
		{"reserved key_map key", func() error {
			_, err := c.Put(ctx, connect.NewRequest(&cacheservicev2.PutCacheRequest{Identifier: flyteID(""), BaseRequest: &cacheservice.PutCacheRequest{Key: "k",
				Output: &cacheservice.CachedOutput{Output: uri.Output, Metadata: &cacheservice.Metadata{
					KeyMap: &cacheservice.KeyMapMetadata{Values: map[string]string{"flyte.source_identifier.org": "x"}}}}}}))
			return err
		}, "base_request.output.metadata.key_map.values: "},
		{"negative max_age", func() error {
			_, err := c.Put(ctx, connect.NewRequest(&cacheservicev2.PutCacheRequest{Identifier: flyteID(""), BaseRequest: &cacheservice.PutCacheRequest{Key: "k",
				Output: uri, Overwrite: &cacheservice.OverwriteOutput{MaxAge: durationpb.New(-time.Second)}}}))
			return err
		}, "base_request.overwrite.max_age: must not be negative"},
		{"delete_blob without managed buckets", func() error {
			_, err := c.Put(ctx, connect.NewRequest(&cacheservicev2.PutCacheRequest{Identifier: flyteID(""), BaseRequest: &cacheservice.PutCacheRequest{Key: "k",
				Output: uri, Overwrite: &cacheservice.OverwriteOutput{Overwrite: true, DeleteBlob: true}}}))
			return err
		}, "base_request.overwrite.delete_blob: "},
		{"no owner", func() error {
			_, err := c.GetOrExtendReservation(ctx, connect.NewRequest(&cacheservicev2.GetOrExtendReservationRequest{Identifier: flyteID(""),
				BaseRequest: &cacheservice.GetOrExtendReservationRequest{Key: "k"}}))
			return err
		}, "base_request.owner_id: required"},
		{"negative heartbeat", func() error {
			_, err := c.GetOrExtendReservation(ctx, connect.NewRequest(&cacheservicev2.GetOrExtendReservationRequest{Identifier: flyteID(""),
				BaseRequest: &cacheservice.GetOrExtendReservationRequest{Key: "k", OwnerId: "a", HeartbeatInterval: durationpb.New(-time.Second)}}))
			return err
		}, "base_request.heartbeat_interval: must not be negative"},
		{"release without owner", func() error {
			_, err := c.ReleaseReservation(ctx, connect.NewRequest(&cacheservicev2.ReleaseReservationRequest{Identifier: flyteID(""),
				BaseRequest: &cacheservice.ReleaseReservationRequest{Key: "k"}}))
			return err
		}, "base_request.owner_id: required"},
	}
	for _, tt := range tests {
		h.counter.Reset()
		wantCode(t, tt.name, tt.call(), connect.CodeInvalidArgument, tt.msg)
		if n := h.counter.Total(); n != 0 {
			t.Errorf("%s: %d DynamoDB requests for a refused call, want 0", tt.name, n)
		}
	}
}

func testFlyteOrgs(t *testing.T, h *flyteHost) {
	ctx := context.Background()
	c := h.client()
	put := func(org, uri string) {
		t.Helper()
		_, err := c.Put(ctx, connect.NewRequest(&cacheservicev2.PutCacheRequest{Identifier: flyteID(org), BaseRequest: &cacheservice.PutCacheRequest{Key: "o",
			Output: &cacheservice.CachedOutput{Output: &cacheservice.CachedOutput_OutputUri{OutputUri: uri}}}}))
		if err != nil {
			t.Fatalf("put in org %q: %v", org, err)
		}
	}
	get := func(org string) string {
		t.Helper()
		resp, err := c.Get(ctx, connect.NewRequest(&cacheservicev2.GetCacheRequest{Identifier: flyteID(org), BaseRequest: &cacheservice.GetCacheRequest{Key: "o"}}))
		if err != nil {
			t.Fatalf("get in org %q: %v", org, err)
		}
		return resp.Msg.GetOutput().GetOutputUri()
	}
	put("acme", "s3://bucket/acme")
	_, err := c.Get(ctx, connect.NewRequest(&cacheservicev2.GetCacheRequest{Identifier: flyteID(""), BaseRequest: &cacheservice.GetCacheRequest{Key: "o"}}))
	wantCode(t, "default org", err, connect.CodeNotFound, "")
	put("", "s3://bucket/default")
	put("initech", "s3://bucket/initech")
	for org, want := range map[string]string{"acme": "s3://bucket/acme", "": "s3://bucket/default", "initech": "s3://bucket/initech"} {
		if got := get(org); got != want {
			t.Errorf("org %q: %s, want %s", org, got, want)
		}
	}
}

// testFlyteIdempotency re-sends a Delete with its Idempotency-Key: the
// retry is answered as the first attempt was, where a plain retry finds
// nothing to delete.
func testFlyteIdempotency(t *testing.T, h *flyteHost) {
	ctx := context.Background()
	c := h.client()
	_, err := c.Put(ctx, connect.NewRequest(&cacheservicev2.PutCacheRequest{Identifier: flyteID(""), BaseRequest: &cacheservice.PutCacheRequest{Key: "i",
		Output: &cacheservice.CachedOutput{Output: &cacheservice.CachedOutput_OutputUri{OutputUri: "s3://bucket/i"}}}}))
	if err != nil {
		t.Fatal(err)
	}
	del := func(key string) error {
		req := connect.NewRequest(&cacheservicev2.DeleteCacheRequest{Identifier: flyteID(""), BaseRequest: &cacheservice.DeleteCacheRequest{Key: "i"}})
		if key != "" {
			req.Header().Set(flyte.IdempotencyKeyHeader, key)
		}
		return call(t, h, "delete", func() error { _, err := c.Delete(context.Background(), req); return err })
	}
	if err := del("attempt-1"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if err := del("attempt-1"); err != nil {
		t.Fatalf("re-sent delete: %v", err)
	}
	wantCode(t, "plain retry", del(""), connect.CodeNotFound, "")
	h.counter.Reset()
	req := connect.NewRequest(&cacheservicev2.DeleteCacheRequest{Identifier: flyteID(""), BaseRequest: &cacheservice.DeleteCacheRequest{Key: "i"}})
	req.Header().Set(flyte.IdempotencyKeyHeader, "two words")
	_, err = c.Delete(ctx, req)
	wantCode(t, "bad key", err, connect.CodeInvalidArgument, "Idempotency-Key: ")
}

// call runs f and checks that it sent exactly one DynamoDB request.
func call(t *testing.T, h *flyteHost, what string, f func() error) error {
	t.Helper()
	_, err := oneRequest(t, h, what, func() (struct{}, error) { return struct{}{}, f() })
	return err
}

// testFlyteContention races owners for one key: exactly one holds the
// reservation and every caller is answered its holder.
func testFlyteContention(t *testing.T, h *flyteHost) {
	const owners = 6
	c := h.client()
	holders := make(chan string, owners)
	errs := make(chan error, owners)
	for i := range owners {
		go func() {
			resp, err := c.GetOrExtendReservation(context.Background(), connect.NewRequest(&cacheservicev2.GetOrExtendReservationRequest{
				Identifier: flyteID(""), BaseRequest: &cacheservice.GetOrExtendReservationRequest{Key: "race", OwnerId: fmt.Sprintf("w%d", i)}}))
			if err != nil {
				errs <- err
				return
			}
			holders <- resp.Msg.GetReservation().GetOwnerId()
		}()
	}
	seen := map[string]int{}
	for range owners {
		select {
		case err := <-errs:
			t.Fatal(err)
		case o := <-holders:
			seen[o]++
		}
	}
	if len(seen) != 1 {
		t.Fatalf("holders answered: %v, want one holder for all", seen)
	}
}

// testFlyteConnectJSONErrors checks the error body the Connect protocol
// defines, {"code": ..., "message": ...}, as a JSON client sees it.
func testFlyteConnectJSONErrors(t *testing.T, h *flyteHost) {
	tests := []struct {
		name, path, body string
		status           int
		code, msg        string
	}{
		{"miss", flyte.GetProcedure, `{"baseRequest":{"key":"nope"},"identifier":{"project":"ml","domain":"dev"}}`,
			404, "not_found", "base_request.key: no cached entry"},
		{"bad input", flyte.PutProcedure, `{"baseRequest":{"key":"k","output":{"outputLiterals":{}}},"identifier":{"project":"ml","domain":"dev"}}`,
			400, "invalid_argument", "base_request.output.output_literals: only output_uri is supported"},
		{"not JSON", flyte.GetProcedure, `{"baseRequest":`, 400, "invalid_argument", ""},
		{"unknown method", "/" + flyte.ServiceName + "/Evict", `{}`, 404, "", ""},
		{"too large", flyte.GetProcedure, `{"baseRequest":{"key":"` + strings.Repeat("k", transport.MaxBodyBytes) + `"}}`,
			429, "resource_exhausted", ""},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(http.MethodPost, h.baseURL+tt.path, strings.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := h.http.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Fatalf("%s: status %d, want %d: %s", tt.name, resp.StatusCode, tt.status, raw)
		}
		if tt.code == "" {
			continue
		}
		var body map[string]any
		if err := json.Unmarshal(raw, &body); err != nil || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s: %s %q is not a JSON error: %v", tt.name, resp.Header.Get("Content-Type"), raw, err)
		}
		if body["code"] != tt.code || tt.msg != "" && body["message"] != tt.msg || len(body) > 3 {
			t.Fatalf("%s: body %s, want code %s and message %q", tt.name, raw, tt.code, tt.msg)
		}
		if resp.Header.Get(transport.RequestIDHeader) == "" {
			t.Fatalf("%s: no %s header", tt.name, transport.RequestIDHeader)
		}
	}
}

// TestFlyteHasItsOwnFunction checks that Flyte's cache service and the
// HTTP API are served by different functions, as the stack routes them:
// the functions of the HTTP API know no Flyte path, and the flyte function
// answers nothing else.
func TestFlyteHasItsOwnFunction(t *testing.T) {
	mgr, _, _ := newManager(t)
	ev := func(routeKey, path, body string) events.APIGatewayV2HTTPRequest {
		method, _, _ := strings.Cut(routeKey, " ")
		return events.APIGatewayV2HTTPRequest{
			Version: "2.0", RouteKey: routeKey, RawPath: path,
			Headers:        map[string]string{"content-type": "application/json"},
			Body:           body,
			PathParameters: map[string]string{"project": "ml", "domain": "dev", "key": "k"},
			RequestContext: events.APIGatewayV2HTTPRequestContext{RequestID: "r1",
				HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path}},
		}
	}
	put := ev("POST "+flyte.PutProcedure, flyte.PutProcedure,
		`{"baseRequest":{"key":"k","output":{"outputUri":"s3://bucket/x"}},"identifier":{"project":"ml","domain":"dev"}}`)
	for _, op := range transport.Ops() {
		fn := transport.NewFunction(mgr, op, transport.Options{Log: testLogger(t), RPC: flyte.Mount(mgr)})
		resp := fn.HandleHTTPAPI(context.Background(), put)
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(resp.Body, `"code":"not_found"`) {
			t.Errorf("a Flyte call sent to the %s function: %d %s", op, resp.StatusCode, resp.Body)
		}
	}
	fn := transport.NewRPCFunction(flyte.Mount(mgr), transport.Options{Log: testLogger(t)})
	get := ev("GET "+transport.CacheRoute, "/v1/projects/ml/domains/dev/cache/k", "")
	resp := fn.HandleHTTPAPI(context.Background(), get)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(resp.Body, "this function serves "+flyte.ServiceName+" only") {
		t.Fatalf("an HTTP API get sent to the flyte function: %d %s", resp.StatusCode, resp.Body)
	}
	if _, err := fn.Invoke(context.Background(), json.RawMessage(`{"op":"get","project":"ml","domain":"dev","key":"k"}`)); err == nil {
		t.Fatal("a direct invocation of the flyte function was served")
	}
	if resp := fn.HandleHTTPAPI(context.Background(), put); resp.StatusCode != http.StatusOK {
		t.Fatalf("the flyte function refused a put: %d %s", resp.StatusCode, resp.Body)
	}
}

// apiGateway is an http.RoundTripper that does what API Gateway does with
// the stack's Flyte routes: it routes each procedure to the flyte function,
// builds the event (HTTP API payload 2.0, or REST API payload 1.0 with
// binary media types application/proto and application/grpc-web+proto),
// invokes the function's Lambda entry point with the event as JSON and
// turns the function's answer back into an HTTP response.
type apiGateway struct {
	t        *testing.T
	rest     bool
	function *transport.Handler
	requests atomic.Int64
}

func newAPIGateway(t *testing.T, mgr *manager.Manager, rest bool) *apiGateway {
	return &apiGateway{t: t, rest: rest,
		function: transport.NewRPCFunction(flyte.Mount(mgr), transport.Options{Log: testLogger(t), Metrics: true})}
}

// binaryMediaType reports whether API Gateway passes a body of this type
// base64-encoded. HTTP APIs encode anything that is not text; REST APIs
// what the API's binaryMediaTypes list.
func (g *apiGateway) binaryMediaType(contentType string) bool {
	if g.rest {
		return contentType == "application/proto" || contentType == "application/grpc-web+proto"
	}
	return !strings.HasPrefix(contentType, "text/") && !strings.HasPrefix(contentType, "application/json")
}

func (g *apiGateway) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	var fn *transport.Handler
	for _, r := range flyte.Routes() {
		if r.Method == req.Method && r.Template == req.URL.Path {
			fn = g.function
		}
	}
	if fn == nil {
		// API Gateway's own answer to a path without a route.
		return &http.Response{StatusCode: http.StatusNotFound, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(`{"message":"Not Found"}`)), Request: req}, nil
	}
	ct := req.Header.Get("Content-Type")
	text, isBase64 := string(body), false
	if g.binaryMediaType(ct) {
		text, isBase64 = base64.StdEncoding.EncodeToString(body), true
	}
	requestID := fmt.Sprintf("req-%d", g.requests.Add(1))
	var ev any
	if g.rest {
		headers := map[string]string{}
		for k, v := range req.Header {
			headers[k] = v[len(v)-1]
		}
		ev = events.APIGatewayProxyRequest{
			Resource: req.URL.Path, Path: req.URL.Path, HTTPMethod: req.Method,
			Headers: headers, MultiValueHeaders: req.Header, Body: text, IsBase64Encoded: isBase64,
			RequestContext: events.APIGatewayProxyRequestContext{RequestID: requestID, ResourcePath: req.URL.Path, HTTPMethod: req.Method},
		}
	} else {
		headers := map[string]string{}
		for k, v := range req.Header {
			headers[strings.ToLower(k)] = strings.Join(v, ",")
		}
		ev = events.APIGatewayV2HTTPRequest{
			Version: "2.0", RouteKey: req.Method + " " + req.URL.Path, RawPath: req.URL.Path,
			Headers: headers, Body: text, IsBase64Encoded: isBase64,
			RequestContext: events.APIGatewayV2HTTPRequestContext{RequestID: requestID, RouteKey: req.Method + " " + req.URL.Path,
				HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: req.Method, Path: req.URL.Path}},
		}
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(req.Context(), 30*time.Second)
	defer cancel()
	out, err := fn.Invoke(ctx, payload)
	if err != nil {
		return nil, fmt.Errorf("function error: %w", err)
	}
	answer, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	var res struct {
		StatusCode        int                 `json:"statusCode"`
		Headers           map[string]string   `json:"headers"`
		MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
		Body              string              `json:"body"`
		IsBase64Encoded   bool                `json:"isBase64Encoded"`
	}
	if err := json.Unmarshal(answer, &res); err != nil {
		return nil, err
	}
	header := http.Header{}
	for k, v := range res.Headers {
		header.Set(k, v)
	}
	for k, vs := range res.MultiValueHeaders {
		header[http.CanonicalHeaderKey(k)] = vs
	}
	data := []byte(res.Body)
	// A REST API decodes a base64 answer only for a binary media type.
	if res.IsBase64Encoded && (!g.rest || g.binaryMediaType(header.Get("Content-Type"))) {
		if data, err = base64.StdEncoding.DecodeString(res.Body); err != nil {
			return nil, err
		}
	}
	return &http.Response{StatusCode: res.StatusCode, Status: http.StatusText(res.StatusCode), Header: header,
		Body: io.NopCloser(bytes.NewReader(data)), ContentLength: int64(len(data)), Request: req,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}, nil
}
