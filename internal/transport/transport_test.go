package transport_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stampede-cache/stampede/internal/dynamostore"
	"github.com/stampede-cache/stampede/internal/manager"
	"github.com/stampede-cache/stampede/internal/testenv"
	"github.com/stampede-cache/stampede/internal/transport"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

var epoch = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// testBudget is the request budget of the tests' handlers: generous, so a
// loaded machine's slow DynamoDB Local never turns into a 503. The budget
// itself is tested with a silent table.
const testBudget = time.Minute

// newManager returns a manager over a fresh table, with a fake clock.
func newManager(t *testing.T) (*manager.Manager, *testenv.Clock, *testenv.Counter) {
	t.Helper()
	store, counter := testenv.Store(t)
	clock := testenv.NewClock(epoch)
	mgr, err := manager.New(store, manager.Config{Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return mgr, clock, counter
}

// testLogger writes to the test log, so failures show the request lines.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// server runs the local-server path: real HTTP into the router.
func server(t *testing.T) (*httptest.Server, *testenv.Clock) {
	t.Helper()
	mgr, clock, _ := newManager(t)
	srv := httptest.NewServer(transport.NewRouter(mgr, transport.Options{Log: testLogger(t), Budget: testBudget}))
	t.Cleanup(srv.Close)
	return srv, clock
}

type response struct {
	status int
	body   map[string]any
	raw    string
}

func do(t *testing.T, srv *httptest.Server, method, path, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	// Keep the path exactly as written (percent-encoding included).
	req.URL.Opaque = "//" + req.URL.Host + strings.SplitN(path, "?", 2)[0]
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q", method, path, ct)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s %s: body %q is not a JSON object: %v", method, path, raw, err)
	}
	return response{resp.StatusCode, m, string(raw)}
}

const prefix = "/v1/projects/ml/domains/dev"

func TestHTTPContract(t *testing.T) {
	srv, clock := server(t)
	r := do(t, srv, "GET", prefix+"/cache/k", "")
	if r.status != 404 || errCode(r) != "not_found" {
		t.Fatalf("miss: %d %s", r.status, r.raw)
	}
	r = do(t, srv, "PUT", prefix+"/cache/k", `{"output_uri":"s3://bucket/a","metadata":{"source":{"name":"train"},"labels":{"x":"y"}},"ttl_seconds":60}`)
	if r.status != 201 || r.body["version"] != float64(v(1)) || r.body["expires_at"] != "2026-11-21T12:01:00.000Z" ||
		r.body["created_at"] != "2026-11-21T12:00:00.000Z" || r.body["key"] != "k" {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	r = do(t, srv, "PUT", prefix+"/cache/k", `{"output_uri":"s3://bucket/b"}`)
	if r.status != 409 || errCode(r) != "already_exists" || r.body["existing"].(map[string]any)["output_uri"] != "s3://bucket/a" {
		t.Fatalf("conflict: %d %s", r.status, r.raw)
	}
	clock.Advance(time.Second)
	r = do(t, srv, "PUT", prefix+"/cache/k", `{"output_uri":"s3://bucket/b","overwrite":true}`)
	if r.status != 200 || r.body["version"] != float64(v(2)) || r.body["created_at"] != "2026-11-21T12:00:00.000Z" ||
		r.body["last_updated_at"] != "2026-11-21T12:00:01.000Z" || r.body["expires_at"] != nil {
		t.Fatalf("overwrite: %d %s", r.status, r.raw)
	}
	r = do(t, srv, "GET", prefix+"/cache/k", "")
	if r.status != 200 || r.body["output_uri"] != "s3://bucket/b" {
		t.Fatalf("hit: %d %s", r.status, r.raw)
	}
	r = do(t, srv, "DELETE", prefix+"/cache/k", "")
	if r.status != 200 || r.body["deleted"] != true {
		t.Fatalf("delete: %d %s", r.status, r.raw)
	}
	r = do(t, srv, "DELETE", prefix+"/cache/k", "")
	if r.status != 200 || r.body["deleted"] != false {
		t.Fatalf("delete again: %d %s", r.status, r.raw)
	}

	r = do(t, srv, "POST", prefix+"/reservations/k", `{"owner_id":"a","heartbeat_interval_seconds":5}`)
	res := r.body["reservation"].(map[string]any)
	if r.status != 200 || r.body["acquired"] != true || res["owner_id"] != "a" || res["heartbeat_interval_seconds"] != 5.0 ||
		res["expires_at"] != "2026-11-21T12:00:16.000Z" || res["key"] != "k" || res["fence"].(float64) < 1 {
		t.Fatalf("reserve: %d %s", r.status, r.raw)
	}
	r = do(t, srv, "POST", prefix+"/reservations/k", `{"owner_id":"b"}`)
	if r.status != 200 || r.body["acquired"] != false || r.body["reservation"].(map[string]any)["owner_id"] != "a" {
		t.Fatalf("contended: %d %s", r.status, r.raw)
	}
	r = do(t, srv, "DELETE", prefix+"/reservations/k?owner_id=b", "")
	if r.status != 200 || r.body["released"] != false {
		t.Fatalf("non-owner release: %d %s", r.status, r.raw)
	}
	r = do(t, srv, "DELETE", prefix+"/reservations/k?owner_id=a", "")
	if r.status != 200 || r.body["released"] != true {
		t.Fatalf("release: %d %s", r.status, r.raw)
	}
}

func errCode(r response) string {
	e, _ := r.body["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

func errMessage(r response) string {
	e, _ := r.body["error"].(map[string]any)
	msg, _ := e["message"].(string)
	return msg
}

func TestWeirdKeysThroughHTTP(t *testing.T) {
	srv, _ := server(t)
	tests := []struct {
		path string // as the client sends it
		key  string // what it means
	}{
		{"a/b/c", "a/b/c"},
		{"x%2Fy%2Fz", "x/y/z"},
		{"100%25", "100%"},
		{"with%20space", "with space"},
		{"hash%23tag", "hash#tag"},
		{"question%3Fmark", "question?mark"},
		{"plus+sign", "plus+sign"},
		{"%E6%97%A5%E6%9C%AC", "日本"},
		{"emoji%F0%9F%90%98", "emoji🐘"},
		{"..%2F..%2Fetc", "../../etc"},
		{"trailing/", "trailing/"},
	}
	for i, tt := range tests {
		uri := "s3://bucket/" + string(rune('a'+i))
		r := do(t, srv, "PUT", prefix+"/cache/"+tt.path, `{"output_uri":"`+uri+`"}`)
		if r.status != 201 || r.body["key"] != tt.key {
			t.Fatalf("put %s: %d %s", tt.path, r.status, r.raw)
		}
		r = do(t, srv, "GET", prefix+"/cache/"+url.PathEscape(tt.key), "")
		if r.status != 200 || r.body["key"] != tt.key || r.body["output_uri"] != uri {
			t.Fatalf("get %q: %d %s", tt.key, r.status, r.raw)
		}
		r = do(t, srv, "POST", prefix+"/reservations/"+tt.path, `{"owner_id":"o"}`)
		if r.status != 200 || r.body["reservation"].(map[string]any)["key"] != tt.key {
			t.Fatalf("reserve %s: %d %s", tt.path, r.status, r.raw)
		}
	}
	// The raw and the encoded slash name the same key.
	r := do(t, srv, "PUT", prefix+"/cache/x/y%2Fz", `{"output_uri":"s3://bucket/z"}`)
	if r.status != 409 || r.body["existing"].(map[string]any)["key"] != "x/y/z" {
		t.Fatalf("x/y%%2Fz and x%%2Fy%%2Fz differ: %d %s", r.status, r.raw)
	}
}

func TestBadInputIsA4xxNamingTheField(t *testing.T) {
	srv, _ := server(t)
	bigKey := strings.Repeat("k", 1025)
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
		field                    string
	}{
		{"invalid JSON", "PUT", "/cache/k", `{"output_uri":}`, 400, "invalid_argument", "body"},
		{"truncated JSON", "PUT", "/cache/k", `{"output_uri":"s3://b`, 400, "invalid_argument", "body"},
		{"trailing data", "PUT", "/cache/k", `{"output_uri":"s3://bucket/x"} {}`, 400, "invalid_argument", "body"},
		{"not an object", "PUT", "/cache/k", `["s3://bucket/x"]`, 400, "invalid_argument", "body"},
		{"unknown field", "PUT", "/cache/k", `{"output_uri":"s3://bucket/x","colour":"red"}`, 400, "invalid_argument", "colour"},
		{"unknown nested field", "PUT", "/cache/k", `{"output_uri":"s3://bucket/x","metadata":{"source":{"team":"x"}}}`, 400, "invalid_argument", "metadata.source.team"},
		{"wrong type", "PUT", "/cache/k", `{"output_uri":42}`, 400, "invalid_argument", "output_uri"},
		{"wrong nested type", "PUT", "/cache/k", `{"output_uri":"s3://bucket/x","metadata":{"labels":{"a":1}}}`, 400, "invalid_argument", "metadata.labels"},
		{"bool as string", "PUT", "/cache/k", `{"output_uri":"s3://bucket/x","overwrite":"yes"}`, 400, "invalid_argument", "overwrite"},
		{"float ttl", "PUT", "/cache/k", `{"output_uri":"s3://bucket/x","ttl_seconds":1.5}`, 400, "invalid_argument", "ttl_seconds"},
		{"overflowing ttl", "PUT", "/cache/k", `{"output_uri":"s3://bucket/x","ttl_seconds":1e40}`, 400, "invalid_argument", "ttl_seconds"},
		{"missing output_uri", "PUT", "/cache/k", `{}`, 400, "invalid_argument", "output_uri"},
		{"empty put body", "PUT", "/cache/k", ``, 400, "invalid_argument", "output_uri"},
		{"null output_uri", "PUT", "/cache/k", `{"output_uri":null}`, 400, "invalid_argument", "output_uri"},
		{"bad output_uri", "PUT", "/cache/k", `{"output_uri":"http://x"}`, 400, "invalid_argument", "output_uri"},
		{"body over 64 KiB", "PUT", "/cache/k", `{"output_uri":"s3://bucket/x","metadata":{"labels":{"a":"` + strings.Repeat("x", 70000) + `"}}}`, 413, "payload_too_large", "body"},
		{"missing owner_id", "POST", "/reservations/k", `{}`, 400, "invalid_argument", "owner_id"},
		{"heartbeat zero", "POST", "/reservations/k", `{"owner_id":"o","heartbeat_interval_seconds":0}`, 400, "invalid_argument", "heartbeat_interval_seconds"},
		{"heartbeat string", "POST", "/reservations/k", `{"owner_id":"o","heartbeat_interval_seconds":"10"}`, 400, "invalid_argument", "heartbeat_interval_seconds"},
		{"owner too long", "POST", "/reservations/k", `{"owner_id":"` + strings.Repeat("o", 257) + `"}`, 400, "invalid_argument", "owner_id"},
		{"release without owner", "DELETE", "/reservations/k", ``, 400, "invalid_argument", "owner_id"},
		{"unknown query parameter", "GET", "/cache/k?colour=red", ``, 400, "invalid_argument", "colour"},
		{"repeated owner_id", "DELETE", "/reservations/k?owner_id=a&owner_id=b", ``, 400, "invalid_argument", "owner_id"},
		{"body on get", "GET", "/cache/k", `{}`, 400, "invalid_argument", "body"},
		{"key over 1024 bytes", "GET", "/cache/" + bigKey, ``, 400, "invalid_argument", "key"},
		{"control character in key", "GET", "/cache/a%00b", ``, 400, "invalid_argument", "key"},
		{"invalid UTF-8 in key", "GET", "/cache/a%FFb", ``, 400, "invalid_argument", "key"},
		{"empty key", "GET", "/cache/", ``, 400, "invalid_argument", "key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, srv, tt.method, prefix+tt.path, tt.body)
			if r.status != tt.status || errCode(r) != tt.code || !strings.HasPrefix(errMessage(r), tt.field) {
				t.Fatalf("got %d %s, want %d %s naming %q", r.status, r.raw, tt.status, tt.code, tt.field)
			}
		})
	}
	names := []struct{ path, field string }{
		{"/v1/projects/ML/domains/dev/cache/k", "project"},
		{"/v1/projects/ml/domains/-dev/cache/k", "domain"},
		{"/v1/projects/ml/domains/d%2Fx/cache/k", "domain"},
		{"/v1/projects/" + strings.Repeat("p", 64) + "/domains/dev/cache/k", "project"},
	}
	for _, n := range names {
		r := do(t, srv, "GET", n.path, "")
		if r.status != 400 || !strings.HasPrefix(errMessage(r), n.field) {
			t.Errorf("GET %s: %d %s", n.path, r.status, r.raw)
		}
	}
	for _, p := range []struct{ method, path string }{
		{"GET", "/"}, {"GET", "/v1/projects/ml"}, {"POST", prefix + "/cache/k"}, {"GET", prefix + "/reservations/k"},
		{"GET", "/v1/projects/ml/domains/dev/other/k"},
	} {
		if r := do(t, srv, p.method, p.path, ""); r.status != 404 || errCode(r) != "not_found" {
			t.Errorf("%s %s: %d %s", p.method, p.path, r.status, r.raw)
		}
	}
}

func TestItemOverTheSizeLimitIs413(t *testing.T) {
	// A request body cannot make an item this big (64 KiB cap), so go one
	// layer down and check the store's mapping with the real engine.
	client, _ := testenv.Client(t)
	store := dynamostore.New(client, testenv.Table(t, client))
	_, err := store.PutEntry(context.Background(), manager.EntryWrite{
		ID:        manager.ID{Project: "p", Domain: "d", Key: "k"},
		OutputURI: "s3://bucket/x",
		Metadata:  manager.Metadata{Labels: map[string]string{"big": strings.Repeat("x", 410_000)}},
		Now:       epoch,
	})
	if code := manager.ErrorCode(err); code != manager.CodePayloadTooLarge {
		t.Fatalf("err = %v (code %s), want payload_too_large", err, code)
	}
}

func TestDecodedBodyIsJSON(t *testing.T) {
	// Every response, errors included, is a JSON object with the right type.
	srv, _ := server(t)
	r := do(t, srv, "GET", prefix+"/cache/none", "")
	var body struct {
		Error struct{ Code, Message string }
	}
	if err := json.NewDecoder(bytes.NewReader([]byte(r.raw))).Decode(&body); err != nil || body.Error.Code != "not_found" {
		t.Fatalf("%s: %v", r.raw, err)
	}
}
