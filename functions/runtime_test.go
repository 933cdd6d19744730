// Package functions_test runs each function's real binary the way Lambda's
// provided.al2023 runtime does: against the Lambda Runtime API (served on
// loopback by internal/lambdaharness), with DynamoDB Local behind it.
package functions_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stampede-cache/stampede/internal/contract"
	"github.com/stampede-cache/stampede/internal/lambdaharness"
	"github.com/stampede-cache/stampede/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// binaries builds every function once per test binary.
var binaries = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "stampede-functions-")
	if err != nil {
		return "", err
	}
	for _, fn := range contract.Functions() {
		out, err := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", filepath.Join(dir, fn), "./"+fn).CombinedOutput()
		if err != nil {
			return "", &buildError{fn, err, out}
		}
	}
	return dir, nil
})

type buildError struct {
	fn  string
	err error
	out []byte
}

func (e *buildError) Error() string {
	return "build " + e.fn + ": " + e.err.Error() + "\n" + string(e.out)
}

// function is one running function and the test's context.
type function struct {
	t   *testing.T
	ctx context.Context
	f   *lambdaharness.Function
}

// start runs the function fn over table, with env added.
func start(t *testing.T, fn, table string, env ...string) *function {
	t.Helper()
	dir, err := binaries()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	f, err := lambdaharness.Start(filepath.Join(dir, fn), lambdaharness.Options{
		Name: "stampede-test-" + fn,
		Env:  append([]string{contract.EnvTable + "=" + table, contract.EnvDynamoDBEndpoint + "=" + testenv.Endpoint(t)}, env...),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	if _, err := f.WaitInit(ctx); err != nil {
		t.Fatalf("%s: %v", fn, err)
	}
	return &function{t, ctx, f}
}

// invoke hands the function an event and returns its answer.
func (fn *function) invoke(event string) lambdaharness.Reply {
	fn.t.Helper()
	r, err := fn.f.Invoke(fn.ctx, []byte(event))
	if err != nil {
		fn.t.Fatal(err)
	}
	return r
}

func TestFunctionsUnderTheRuntimeAPI(t *testing.T) {
	client, _ := testenv.Client(t)
	table := testenv.Table(t, client)

	put := start(t, "put", table)
	r := put.invoke(`{"project":"ml","domain":"dev","key":"a/b","output_uri":"s3://bucket/x"}`)
	// The entry, whose version is opaque (clock-derived): the ETag of
	// the get below must carry the same.
	var created struct {
		OutputURI string `json:"output_uri"`
		Version   int64  `json:"version"`
	}
	if err := json.Unmarshal(r.Body, &created); r.Error || err != nil || created.OutputURI != "s3://bucket/x" || created.Version < 1 {
		t.Fatalf("put: %+v %s %v", r, r.Body, err)
	}
	if r := put.invoke(`{"project":"ml","domain":"dev","key":"a/b","output_uri":"s3://bucket/y"}`); !r.Error || !strings.Contains(string(r.Body), `"errorType":"Stampede.AlreadyExists"`) {
		t.Fatalf("conflict: %+v %s", r, r.Body)
	}
	get := start(t, "get", table)
	event := `{"version":"2.0","routeKey":"GET /v1/projects/{project}/domains/{domain}/cache/{key+}","rawPath":"/v1/projects/ml/domains/dev/cache/a/b",` +
		`"pathParameters":{"project":"ml","domain":"dev","key":"a/b"},"requestContext":{"http":{"method":"GET"}}}`
	r = get.invoke(event)
	var resp struct {
		StatusCode int               `json:"statusCode"`
		Headers    map[string]string `json:"headers"`
		Body       string            `json:"body"`
	}
	if err := json.Unmarshal(r.Body, &resp); err != nil || resp.StatusCode != 200 || resp.Headers["ETag"] != fmt.Sprintf(`"%d"`, created.Version) || !strings.Contains(resp.Body, `"output_uri":"s3://bucket/x"`) {
		t.Fatalf("get: %+v %s %v", r, r.Body, err)
	}
	if r := get.invoke(`{"project":"ml","domain":"dev","key":"missing"}`); string(r.Body) != `{"found":false,"read":"strong"}` {
		t.Fatalf("miss: %+v %s", r, r.Body)
	}
	// One JSON log line per request, with the Lambda request id.
	var line struct {
		Message   string `json:"message"`
		Op        string `json:"op"`
		Outcome   string `json:"outcome"`
		RequestID string `json:"requestId"`
	}
	if err := get.f.Logs.WaitFor(get.ctx, func(s string) bool { return strings.Count(s, "\n") >= 2 }); err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(get.f.Logs.String(), "\n")
	if err := json.Unmarshal([]byte(first), &line); err != nil || line.Message != "request" || line.Op != "get" || line.Outcome != "hit" || line.RequestID == "" {
		t.Fatalf("log line %q: %v", first, err)
	}

	reserve := start(t, "reserve", table)
	if r := reserve.invoke(`{"project":"ml","domain":"dev","key":"a/b","owner_id":"sfn-exec-1"}`); !strings.Contains(string(r.Body), `"acquired":true`) {
		t.Fatalf("reserve: %+v %s", r, r.Body)
	}
	release := start(t, "release", table)
	if r := release.invoke(`{"project":"ml","domain":"dev","key":"a/b","owner_id":"sfn-exec-1"}`); string(r.Body) != `{"released":true}` {
		t.Fatalf("release: %+v %s", r, r.Body)
	}
	del := start(t, "delete", table)
	if r := del.invoke(`{"project":"ml","domain":"dev","key":"a/b"}`); string(r.Body) != `{"deleted":true}` {
		t.Fatalf("delete: %+v %s", r, r.Body)
	}
}

// TestLogLevel: STAMPEDE_LOG_LEVEL, which the stack sets, drops the lines
// below it; the default is info.
func TestLogLevel(t *testing.T) {
	client, _ := testenv.Client(t)
	table := testenv.Table(t, client)
	for _, tt := range []struct {
		level string
		// lines: the request lines of a miss (info) and of an invalid
		// request (info too: a 4xx is the caller's doing).
		lines int
	}{
		{"", 2},
		{"debug", 2},
		{"INFO", 2},
		{"warn", 0},
		{"error", 0},
	} {
		t.Run("level="+tt.level, func(t *testing.T) {
			get := start(t, "get", table, contract.EnvLogLevel+"="+tt.level)
			get.invoke(`{"project":"ml","domain":"dev","key":"nothing"}`)
			if r := get.invoke(`{"project":"ml","domain":"dev"}`); !r.Error {
				t.Fatalf("invalid request answered %s", r.Body)
			}
			// The runtime prints a failure after the request's line, at
			// any level: once it is there, every line is.
			if err := get.f.Logs.WaitFor(get.ctx, func(s string) bool { return strings.Contains(s, `"errorType":"Stampede.InvalidArgument"`) }); err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(get.f.Logs.String(), `"message":"request"`); n != tt.lines {
				t.Errorf("%d request lines, want %d:\n%s", n, tt.lines, get.f.Logs.String())
			}
		})
	}
	t.Run("invalid", func(t *testing.T) {
		dir, err := binaries()
		if err != nil {
			t.Fatal(err)
		}
		f, err := lambdaharness.Start(filepath.Join(dir, "get"), lambdaharness.Options{
			Env: []string{contract.EnvTable + "=" + table, contract.EnvLogLevel + "=loud"},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer f.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := f.WaitInit(ctx); err == nil || !strings.Contains(err.Error(), contract.EnvLogLevel) {
			t.Fatalf("init with %s=loud: %v", contract.EnvLogLevel, err)
		}
	})
}

// TestReserveAndReleaseLinkNoS3: the functions that never touch objects do
// not carry the S3 client (the linker drops what they cannot reach).
func TestReserveAndReleaseLinkNoS3(t *testing.T) {
	dir, err := binaries()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		fn    string
		hasS3 bool
	}{
		{"reserve", false},
		{"release", false},
		{"get", true},
		{"put", true},
		{"delete", true},
	} {
		out, err := exec.Command("go", "tool", "nm", filepath.Join(dir, tt.fn)).Output()
		if err != nil {
			t.Fatalf("go tool nm %s: %v", tt.fn, err)
		}
		// The client's constructor and methods. (While internal/config
		// keeps its deprecated ManagerOver, the S3 package's own
		// initialisation stays linked, a few hundred bytes.)
		got := strings.Contains(string(out), "aws-sdk-go-v2/service/s3.NewFromConfig") ||
			strings.Contains(string(out), "aws-sdk-go-v2/service/s3.(*Client)")
		if got != tt.hasS3 {
			t.Errorf("%s links the S3 client: %v, want %v", tt.fn, got, tt.hasS3)
		}
	}
}
