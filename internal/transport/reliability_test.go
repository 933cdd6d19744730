package transport_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/stampede-cache/stampede/internal/dynamostore"
	"github.com/stampede-cache/stampede/internal/manager"
	"github.com/stampede-cache/stampede/internal/transport"
)

func TestIdempotencyKeyOverHTTP(t *testing.T) {
	srv, _ := server(t)
	p := prefix + "/cache/k"
	key := map[string]string{"Idempotency-Key": "job-7/put"}
	for i := range 2 {
		status, h, body := rawDo(t, srv, "PUT", p, `{"output_uri":"s3://bucket/a"}`, key)
		if status != 201 || h.Get("ETag") != tag(1) {
			t.Fatalf("attempt %d: %d %v %s", i, status, h, body)
		}
	}
	// Without the key a re-sent create is a conflict.
	if status, _, _ := rawDo(t, srv, "PUT", p, `{"output_uri":"s3://bucket/a"}`, nil); status != 409 {
		t.Fatalf("no key: %d", status)
	}
	rawDo(t, srv, "POST", prefix+"/reservations/r", `{"owner_id":"w"}`, nil)
	for i := range 2 {
		_, _, body := rawDo(t, srv, "DELETE", prefix+"/reservations/r?owner_id=w", "", map[string]string{"Idempotency-Key": "job-7/release"})
		if body != `{"released":true}` {
			t.Fatalf("release %d: %s", i, body)
		}
	}
	for _, bad := range []string{"", "has space", strings.Repeat("k", 256), "caf\u00e9"} {
		status, _, body := rawDo(t, srv, "PUT", p, `{"output_uri":"s3://bucket/a"}`, map[string]string{"Idempotency-Key": bad})
		if status != 400 || !strings.Contains(body, `"message":"Idempotency-Key: `) {
			t.Errorf("key %q: %d %s", bad, status, body)
		}
	}
	fns, _ := functions(t)
	for i := range 2 {
		out, err := invoke(t, fns[transport.OpPut], `{"project":"ml","domain":"dev","key":"d","output_uri":"s3://bucket/1","idempotency_key":"exec-1"}`)
		if err != nil || !strings.Contains(toJSON(out), `"output_uri":"s3://bucket/1"`) {
			t.Fatalf("direct put %d: %s %v", i, toJSON(out), err)
		}
	}
}

func TestStrictInput(t *testing.T) {
	srv, _ := server(t)
	tests := []struct {
		name, method, path, body string
		header                   map[string]string
		field                    string
	}{
		{"invalid UTF-8 in owner_id", "POST", "/reservations/k", "{\"owner_id\":\"worker-\xff\"}", nil, "owner_id: not valid UTF-8"},
		{"invalid UTF-8 in a label", "PUT", "/cache/k", "{\"output_uri\":\"s3://bucket/x\",\"metadata\":{\"labels\":{\"a\":\"\xfe\"}}}", nil, "metadata.labels.a: not valid UTF-8"},
		{"duplicate member", "PUT", "/cache/k", `{"output_uri":"s3://bucket/x","output_uri":"s3://bucket/y"}`, nil, "output_uri: given more than once"},
		{"wrong case", "POST", "/reservations/k", `{"Owner_ID":"w"}`, nil, "Owner_ID: unknown field"},
		{"overflowing number", "PUT", "/cache/k", `{"output_uri":"s3://bucket/x","ttl_seconds":99999999999999999999}`, nil, "ttl_seconds: must be an integer"},
		{"unterminated If-Match", "PUT", "/cache/k", `{"output_uri":"s3://bucket/x"}`, map[string]string{"If-Match": `"1`}, "If-Match: "},
		{"weak If-Match", "PUT", "/cache/k", `{"output_uri":"s3://bucket/x"}`, map[string]string{"If-Match": `W/"1"`}, "If-Match: "},
		{"If-Match list", "DELETE", "/cache/k", ``, map[string]string{"If-Match": `"1", "2"`}, "If-Match: "},
		{"bad If-None-Match", "GET", "/cache/k", ``, map[string]string{"If-None-Match": `"1" "2"`}, "If-None-Match: "},
		{"encoded project", "GET", "/cache/k", ``, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := prefix + tt.path
			want := tt.field
			if tt.name == "encoded project" {
				path, want = "/v1/projects/m%6C/domains/dev/cache/k", "project: must appear literally"
			}
			status, h, body := rawDo(t, srv, tt.method, path, tt.body, tt.header)
			if status != 400 || !strings.Contains(body, `"code":"invalid_argument"`) || !strings.Contains(body, `"message":"`+want) {
				t.Fatalf("got %d %s, want 400 naming %q", status, body, want)
			}
			if h.Get(transport.RequestIDHeader) == "" {
				t.Fatal("no request id")
			}
		})
	}
	// Nothing of the above was stored.
	if status, _, body := rawDo(t, srv, "GET", prefix+"/cache/k", "", nil); status != 404 {
		t.Fatalf("stored: %d %s", status, body)
	}
}

func TestInspectRoute(t *testing.T) {
	srv, _ := server(t)
	p := prefix + "/reservations/k"
	if status, _, body := rawDo(t, srv, "GET", p, "", nil); status != 404 || !strings.Contains(body, `"not_found"`) {
		t.Fatalf("free: %d %s", status, body)
	}
	rawDo(t, srv, "POST", p, `{"owner_id":"w","heartbeat_interval_seconds":5}`, nil)
	status, _, body := rawDo(t, srv, "GET", p, "", nil)
	if status != 200 || !strings.Contains(body, `"reserved":true`) || !strings.Contains(body, `"owner_id":"w"`) || !strings.Contains(body, `"fence":`) {
		t.Fatalf("held: %d %s", status, body)
	}
}

// blackhole accepts connections and never answers: a DynamoDB that went
// silent. A real engine cannot be made to hang on demand.
func blackhole(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + l.Addr().String()
}

func TestASilentTableIsUnavailableWithinTheBudget(t *testing.T) {
	db := dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(blackhole(t)),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
	mgr, err := manager.New(dynamostore.New(db, "t"), manager.Config{})
	if err != nil {
		t.Fatal(err)
	}
	const budget = 300 * time.Millisecond
	srv := httptest.NewServer(transport.NewRouter(mgr, transport.Options{Log: testLogger(t), Budget: budget}))
	t.Cleanup(srv.Close)
	for _, tt := range []struct{ method, path, body string }{
		{"GET", "/cache/k", ""},
		{"PUT", "/cache/k", `{"output_uri":"s3://bucket/x"}`},
		{"DELETE", "/cache/k", ""},
		{"POST", "/reservations/k", `{"owner_id":"w"}`},
		{"DELETE", "/reservations/k?owner_id=w", ""},
		{"GET", "/reservations/k", ""},
	} {
		start := time.Now()
		status, h, body := rawDo(t, srv, tt.method, prefix+tt.path, tt.body, nil)
		elapsed := time.Since(start)
		if status != 503 || h.Get("Retry-After") == "" || !strings.Contains(body, `"code":"unavailable"`) {
			t.Errorf("%s %s: %d %v %s", tt.method, tt.path, status, h, body)
		}
		// The bound is generous (a loaded machine): the point is that the
		// request ends, not how fast.
		if elapsed > budget+10*time.Second {
			t.Errorf("%s %s answered after %s, budget %s", tt.method, tt.path, elapsed, budget)
		}
	}
}

func TestLambdaBudgetLeavesTimeToAnswer(t *testing.T) {
	db := dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(blackhole(t)),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
	mgr, _ := manager.New(dynamostore.New(db, "t"), manager.Config{})
	h := transport.NewFunction(mgr, transport.OpGet, transport.Options{Log: testLogger(t)})
	// The invocation's own deadline, well under the default budget.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := h.Direct(ctx, []byte(`{"project":"ml","domain":"dev","key":"k"}`))
	if err == nil || !strings.Contains(err.Error(), "Stampede.Unavailable") {
		t.Fatalf("direct get: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the handler used up the invocation's deadline: no time left to answer")
	}
}

func TestThrottlingIsA429WithRetryAfter(t *testing.T) {
	throttle := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"slow down"}`))
	}))
	t.Cleanup(throttle.Close)
	db := dynamodb.New(dynamodb.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(throttle.URL),
		Credentials:      credentials.NewStaticCredentialsProvider("test", "test", ""),
		RetryMaxAttempts: 1,
	})
	mgr, _ := manager.New(dynamostore.New(db, "t"), manager.Config{})
	srv := httptest.NewServer(transport.NewRouter(mgr, transport.Options{Log: testLogger(t), Budget: testBudget}))
	t.Cleanup(srv.Close)
	status, h, body := rawDo(t, srv, "GET", prefix+"/cache/k", "", nil)
	if status != 429 || h.Get("Retry-After") == "" || !strings.Contains(body, `"code":"throttled"`) {
		t.Fatalf("%d %v %s", status, h, body)
	}
}

func TestWaitForAnEntryOverHTTP(t *testing.T) {
	srv, _ := server(t)
	p := prefix + "/cache/waited"
	type answer struct {
		status int
		body   string
	}
	got := make(chan answer, 1)
	go func() {
		status, _, body := rawDo(t, srv, "GET", p+"?wait_ms=15000", "", nil)
		got <- answer{status, body}
	}()
	time.Sleep(200 * time.Millisecond)
	if status, _, body := rawDo(t, srv, "PUT", p, `{"output_uri":"s3://bucket/done"}`, nil); status != 201 {
		t.Fatalf("put: %d %s", status, body)
	}
	if a := <-got; a.status != 200 || !strings.Contains(a.body, `"output_uri":"s3://bucket/done"`) {
		t.Fatalf("waited get: %d %s", a.status, a.body)
	}
	if status, _, body := rawDo(t, srv, "GET", prefix+"/cache/never?wait_ms=100", "", nil); status != 404 {
		t.Fatalf("empty wait: %d %s", status, body)
	}
	for _, bad := range []string{"-1", "20001", "x"} {
		if status, _, body := rawDo(t, srv, "GET", p+"?wait_ms="+bad, "", nil); status != 400 || !strings.Contains(body, "wait_ms") {
			t.Errorf("wait_ms=%s: %d %s", bad, status, body)
		}
	}
}

func TestUnparsableRequestsGetTheJSONErrorShape(t *testing.T) {
	mgr, _, _ := newManager(t)
	srv := httptest.NewUnstartedServer(transport.NewRouter(mgr, transport.Options{Log: testLogger(t), Budget: testBudget}))
	srv.Listener = transport.JSONErrors(srv.Listener)
	srv.Start()
	t.Cleanup(srv.Close)
	for _, tt := range []struct{ name, request, status, code string }{
		{"bad percent-encoding", "GET /v1/projects/ml/domains/dev/cache/%zz HTTP/1.1\r\nHost: x\r\n\r\n", "400", "invalid_argument"},
		{"malformed header", "GET /v1/projects/ml/domains/dev/cache/k HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", "400", "invalid_argument"},
		{"headers too large", "GET /v1/projects/ml/domains/dev/cache/k HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 2<<20) + "\r\n\r\n", "413", "payload_too_large"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
			go func() { _, _ = conn.Write([]byte(tt.request)) }()
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.Status[:3] != tt.status || resp.Header.Get("Content-Type") != "application/json" || !strings.Contains(string(body), `"code":"`+tt.code+`"`) {
				t.Fatalf("%s %v %s", resp.Status, resp.Header, body)
			}
		})
	}
	// The server is still healthy.
	if status, _, body := rawDo(t, srv, "GET", prefix+"/cache/k", "", nil); status != 404 {
		t.Fatalf("after: %d %s", status, body)
	}
}
