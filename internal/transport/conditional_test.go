package transport_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/stampede-cache/stampede/internal/manager"
	"github.com/stampede-cache/stampede/internal/s3blobs"
	"github.com/stampede-cache/stampede/internal/testenv"
	"github.com/stampede-cache/stampede/internal/transport"
)

// rawDo sends a request with headers and returns the status, headers and body.
func rawDo(t *testing.T, srv *httptest.Server, method, path, body string, header map[string]string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(data)
}

func TestValidatorsAndConditionalRequests(t *testing.T) {
	srv, _ := server(t)
	p := prefix + "/cache/k"
	status, h, _ := rawDo(t, srv, "PUT", p, `{"output_uri":"s3://bucket/1"}`, nil)
	if status != 201 || h.Get("ETag") != tag(1) {
		t.Fatalf("create: %d %v", status, h)
	}
	status, h, body := rawDo(t, srv, "GET", p, "", nil)
	if status != 200 || h.Get("ETag") != tag(1) || h.Get("Stampede-Read") != "strong" {
		t.Fatalf("get: %d %v %s", status, h, body)
	}
	if status, h, body = rawDo(t, srv, "GET", p, "", map[string]string{"If-None-Match": tag(1)}); status != 304 || body != "" || h.Get("ETag") != tag(1) {
		t.Fatalf("not modified: %d %v %q", status, h, body)
	}
	if status, _, _ = rawDo(t, srv, "GET", p, "", map[string]string{"If-None-Match": tag(7) + ", W/" + tag(1)}); status != 304 {
		t.Fatalf("tag list: %d", status)
	}
	if status, _, _ = rawDo(t, srv, "GET", p, "", map[string]string{"If-None-Match": tag(2)}); status != 200 {
		t.Fatalf("changed: %d", status)
	}
	// Compare-and-set.
	if status, _, body = rawDo(t, srv, "PUT", p, `{"output_uri":"s3://bucket/2"}`, map[string]string{"If-Match": tag(3)}); status != 412 ||
		!strings.Contains(body, `"failed_precondition"`) || !strings.Contains(body, `"existing":{`) {
		t.Fatalf("stale if-match: %d %s", status, body)
	}
	if status, h, _ = rawDo(t, srv, "PUT", p, `{"output_uri":"s3://bucket/2"}`, map[string]string{"If-Match": tag(1)}); status != 200 || h.Get("ETag") != tag(2) {
		t.Fatalf("if-match: %d %v", status, h)
	}
	if status, _, body = rawDo(t, srv, "PUT", p, `{"output_uri":"s3://bucket/2"}`, map[string]string{"If-Match": `1`}); status != 400 || !strings.Contains(body, "If-Match") {
		t.Fatalf("bad if-match: %d %s", status, body)
	}
	if status, _, _ = rawDo(t, srv, "DELETE", p, "", map[string]string{"If-Match": tag(1)}); status != 412 {
		t.Fatalf("stale delete: %d", status)
	}
	if status, _, body = rawDo(t, srv, "DELETE", p, "", map[string]string{"If-Match": tag(2)}); status != 200 || body != `{"deleted":true}` {
		t.Fatalf("delete: %d %s", status, body)
	}
}

func TestReadOptionsOverHTTP(t *testing.T) {
	srv, clock := server(t)
	p := prefix + "/cache/k"
	rawDo(t, srv, "PUT", p, `{"output_uri":"s3://bucket/1"}`, nil)
	tests := []struct {
		query  string
		status int
		read   string
	}{
		{"?consistency=strong", 200, "strong"},
		{"?consistency=eventual", 200, "eventual"},
		{"?consistency=eventual&min_version=" + strconv.FormatInt(v(1), 10), 200, "eventual"},
		{"?consistency=eventual&min_version=" + strconv.FormatInt(v(2), 10), 200, "strong"},
		{"?max_staleness_ms=5000", 200, "strong"},
		{"?max_staleness_ms=5000", 200, "cache"},
		{"?consistency=eventual&max_staleness_ms=5000", 200, "cache"},
		{"?consistency=weak", 400, ""},
		{"?min_version=0", 400, ""},
		{"?min_version=x", 400, ""},
		{"?max_staleness_ms=0", 400, ""},
		{"?max_staleness_ms=60001", 400, ""},
		{"?consistency=strong&max_staleness_ms=10", 400, ""},
		{"?verify=maybe", 400, ""},
	}
	for _, tt := range tests {
		status, h, body := rawDo(t, srv, "GET", p+tt.query, "", nil)
		if status != tt.status || h.Get("Stampede-Read") != tt.read {
			t.Errorf("%s: %d %q %s", tt.query, status, h.Get("Stampede-Read"), body)
		}
	}
	clock.Advance(6e9)
	if _, h, _ := rawDo(t, srv, "GET", p+"?max_staleness_ms=5000", "", nil); h.Get("Stampede-Read") != "strong" {
		t.Errorf("stale cache served: %v", h)
	}
}

func TestOutputLifecycleOverHTTP(t *testing.T) {
	store, _ := testenv.Store(t)
	client := testenv.S3(t, []string{"outputs"})
	mgr, err := manager.New(store, manager.Config{Blobs: s3blobs.New(client), ManagedBuckets: []string{"outputs"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(transport.NewRouter(mgr, transport.Options{Log: testLogger(t), Budget: testBudget}))
	defer srv.Close()
	ctx := context.Background()
	for _, k := range []string{"ml/dev/a", "ml/dev/b"} {
		if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: ptr("outputs"), Key: ptr(k), Body: strings.NewReader("x")}); err != nil {
			t.Fatal(err)
		}
	}
	p := prefix + "/cache/k"
	if status, _, body := rawDo(t, srv, "PUT", p, `{"output_uri":"s3://outputs/ml/dev/missing","verify_output":true}`, nil); status != 412 {
		t.Fatalf("verify_output: %d %s", status, body)
	}
	if status, _, body := rawDo(t, srv, "PUT", p, `{"output_uri":"s3://outputs/ml/dev/a","verify_output":true}`, nil); status != 201 {
		t.Fatalf("put a: %d %s", status, body)
	}
	status, h, body := rawDo(t, srv, "PUT", p, `{"output_uri":"s3://outputs/ml/dev/b","overwrite":true,"delete_blob":true}`, nil)
	if status != 200 || h.Get("Stampede-Output-Deleted") != "true" {
		t.Fatalf("put b: %d %v %s", status, h, body)
	}
	if status, _, body := rawDo(t, srv, "GET", p+"?verify=true", "", nil); status != 200 {
		t.Fatalf("verify: %d %s", status, body)
	}
	if status, _, body := rawDo(t, srv, "DELETE", p+"?delete_blob=true", "", nil); status != 200 || body != `{"deleted":true,"output_deleted":true}` {
		t.Fatalf("delete: %d %s", status, body)
	}
	if status, _, body := rawDo(t, srv, "DELETE", p+"?delete_blob=yes", "", nil); status != 400 || !strings.Contains(body, "delete_blob") {
		t.Fatalf("bad delete_blob: %d %s", status, body)
	}
}

func TestFencedPutOverHTTPAndDirect(t *testing.T) {
	srv, _ := server(t)
	_, _, body := rawDo(t, srv, "POST", prefix+"/reservations/k", `{"owner_id":"w1"}`, nil)
	if !strings.Contains(body, `"acquired":true`) {
		t.Fatal(body)
	}
	status, _, body := rawDo(t, srv, "PUT", prefix+"/cache/k", `{"output_uri":"s3://bucket/x","owner_id":"w2","release":true}`, nil)
	if status != 412 || !strings.Contains(body, `"holder":{`) || !strings.Contains(body, `"owner_id":"w1"`) {
		t.Fatalf("not the holder: %d %s", status, body)
	}
	for _, bad := range []string{`{"output_uri":"s3://bucket/x","release":true}`, `{"output_uri":"s3://bucket/x","fence":3}`, `{"output_uri":"s3://bucket/x","owner_id":""}`, `{"output_uri":"s3://bucket/x","owner_id":"w1","fence":"3"}`} {
		if status, _, body := rawDo(t, srv, "PUT", prefix+"/cache/k", bad, nil); status != 400 {
			t.Errorf("%s: %d %s", bad, status, body)
		}
	}
	status, _, body = rawDo(t, srv, "PUT", prefix+"/cache/k", `{"output_uri":"s3://bucket/x","owner_id":"w1","release":true}`, nil)
	if status != 201 {
		t.Fatalf("fenced put: %d %s", status, body)
	}
	if _, _, body = rawDo(t, srv, "POST", prefix+"/reservations/k", `{"owner_id":"w2"}`, nil); !strings.Contains(body, `"acquired":true`) {
		t.Fatalf("not released: %s", body)
	}

	fns, _ := functions(t)
	if _, err := invoke(t, fns[transport.OpPut], `{"project":"ml","domain":"dev","key":"d","output_uri":"s3://bucket/1"}`); err != nil {
		t.Fatal(err)
	}
	if _, err := invoke(t, fns[transport.OpPut], `{"project":"ml","domain":"dev","key":"d","output_uri":"s3://bucket/2","if_version":5}`); err == nil || !strings.Contains(err.Error(), "Stampede.FailedPrecondition") {
		t.Fatalf("direct if_version: %v", err)
	}
	out, err := invoke(t, fns[transport.OpGet], `{"project":"ml","domain":"dev","key":"d","consistency":"eventual"}`)
	if err != nil || !strings.Contains(toJSON(out), `"read":"eventual"`) {
		t.Fatalf("direct eventual: %s %v", toJSON(out), err)
	}
	if _, err := invoke(t, fns[transport.OpDelete], `{"project":"ml","domain":"dev","key":"d","if_version":`+strconv.FormatInt(v(1), 10)+`}`); err != nil {
		t.Fatalf("direct delete: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

// v is the nth version of a key first written at epoch: versions are
// seeded from the clock (milliseconds) and grow by one per write.
func v(n int64) int64 { return epoch.UnixMilli() + n }

// tag is the ETag of v(n).
func tag(n int64) string { return `"` + strconv.FormatInt(v(n), 10) + `"` }
