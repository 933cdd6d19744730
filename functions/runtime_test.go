// Package functions_test runs each function's real binary the way Lambda's
// provided.al2023 runtime does: against the Lambda Runtime API (served here
// on loopback), with DynamoDB Local behind it.
package functions_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stampede-cache/stampede/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// invocation is one event fed to the function and what came back.
type invocation struct {
	event    string
	response chan reply
}

type reply struct {
	path string // "response" or "error"
	body string
}

// runtimeAPI serves the Lambda Runtime API for one function process.
type runtimeAPI struct {
	queue   chan invocation
	mu      sync.Mutex
	pending map[string]chan reply
}

func (r *runtimeAPI) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	const prefix = "/2018-06-01/runtime/invocation/"
	switch {
	case req.URL.Path == prefix+"next":
		var inv invocation
		select {
		case inv = <-r.queue:
		case <-req.Context().Done(): // the process went away
			return
		}
		id := fmt.Sprintf("req-%d", time.Now().UnixNano())
		r.mu.Lock()
		r.pending[id] = inv.response
		r.mu.Unlock()
		w.Header().Set("Lambda-Runtime-Aws-Request-Id", id)
		w.Header().Set("Lambda-Runtime-Deadline-Ms", fmt.Sprint(time.Now().Add(30*time.Second).UnixMilli()))
		w.Header().Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:test")
		_, _ = io.WriteString(w, inv.event)
	case strings.HasPrefix(req.URL.Path, prefix):
		rest := strings.TrimPrefix(req.URL.Path, prefix)
		id, kind, _ := strings.Cut(rest, "/")
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		ch := r.pending[id]
		r.mu.Unlock()
		ch <- reply{kind, string(body)}
		w.WriteHeader(http.StatusAccepted)
	default:
		http.NotFound(w, req)
	}
}

// syncBuffer collects a process's output while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestFunctionsUnderTheRuntimeAPI(t *testing.T) {
	client, _ := testenv.Client(t)
	table := testenv.Table(t, client)
	binDir := t.TempDir()
	for _, fn := range []string{"get", "put", "delete", "reserve", "release"} {
		out, err := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", filepath.Join(binDir, fn), "./"+fn).CombinedOutput()
		if err != nil {
			t.Fatalf("build %s: %v\n%s", fn, err, out)
		}
	}
	start := func(fn string) (func(event string) reply, *syncBuffer) {
		api := &runtimeAPI{queue: make(chan invocation), pending: map[string]chan reply{}}
		srv := httptest.NewServer(api)
		logs := &syncBuffer{}
		cmd := exec.Command(filepath.Join(binDir, fn))
		cmd.Env = append(os.Environ(),
			"AWS_LAMBDA_RUNTIME_API="+strings.TrimPrefix(srv.URL, "http://"),
			"AWS_LAMBDA_LOG_FORMAT=JSON",
			"AWS_REGION=us-east-1",
			"STAMPEDE_TABLE="+table,
			"STAMPEDE_DYNAMODB_ENDPOINT="+testenv.Endpoint(t),
		)
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			srv.Close()
		})
		return func(event string) reply {
			inv := invocation{event: event, response: make(chan reply, 1)}
			select {
			case api.queue <- inv:
			case <-time.After(30 * time.Second):
				t.Fatalf("%s never asked for an event:\n%s", fn, logs)
			}
			select {
			case r := <-inv.response:
				return r
			case <-time.After(30 * time.Second):
				t.Fatalf("%s never answered:\n%s", fn, logs)
			}
			return reply{}
		}, logs
	}

	put, _ := start("put")
	if r := put(`{"project":"ml","domain":"dev","key":"a/b","output_uri":"s3://bucket/x"}`); r.path != "response" || !strings.Contains(r.body, `"version":1`) {
		t.Fatalf("put: %+v", r)
	}
	if r := put(`{"project":"ml","domain":"dev","key":"a/b","output_uri":"s3://bucket/y"}`); r.path != "error" || !strings.Contains(r.body, `"errorType":"Stampede.AlreadyExists"`) {
		t.Fatalf("conflict: %+v", r)
	}
	get, getLogs := start("get")
	event := `{"version":"2.0","routeKey":"GET /v1/projects/{project}/domains/{domain}/cache/{key+}","rawPath":"/v1/projects/ml/domains/dev/cache/a/b",` +
		`"pathParameters":{"project":"ml","domain":"dev","key":"a/b"},"requestContext":{"http":{"method":"GET"}}}`
	r := get(event)
	var resp struct {
		StatusCode int               `json:"statusCode"`
		Headers    map[string]string `json:"headers"`
		Body       string            `json:"body"`
	}
	if err := json.Unmarshal([]byte(r.body), &resp); err != nil || resp.StatusCode != 200 || resp.Headers["ETag"] != `"1"` || !strings.Contains(resp.Body, `"output_uri":"s3://bucket/x"`) {
		t.Fatalf("get: %+v %v", r, err)
	}
	if r := get(`{"project":"ml","domain":"dev","key":"missing"}`); r.body != `{"found":false,"read":"strong"}` {
		t.Fatalf("miss: %+v", r)
	}
	// One JSON log line per request, with the Lambda request id.
	var line struct {
		Message   string `json:"message"`
		Op        string `json:"op"`
		Outcome   string `json:"outcome"`
		RequestID string `json:"requestId"`
	}
	first, _, _ := strings.Cut(getLogs.String(), "\n")
	if err := json.Unmarshal([]byte(first), &line); err != nil || line.Message != "request" || line.Op != "get" || line.Outcome != "hit" || line.RequestID == "" {
		t.Fatalf("log line %q: %v", first, err)
	}

	reserve, _ := start("reserve")
	if r := reserve(`{"project":"ml","domain":"dev","key":"a/b","owner_id":"sfn-exec-1"}`); !strings.Contains(r.body, `"acquired":true`) {
		t.Fatalf("reserve: %+v", r)
	}
	release, _ := start("release")
	if r := release(`{"project":"ml","domain":"dev","key":"a/b","owner_id":"sfn-exec-1"}`); r.body != `{"released":true}` {
		t.Fatalf("release: %+v", r)
	}
	del, _ := start("delete")
	if r := del(`{"project":"ml","domain":"dev","key":"a/b"}`); r.body != `{"deleted":true}` {
		t.Fatalf("delete: %+v", r)
	}
}
