// Package testenv gives tests a real DynamoDB engine: one DynamoDB Local per
// test binary, a fresh table per test, and clients that count requests.
package testenv

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go/middleware"

	"github.com/stampede-cache/stampede/internal/dynamolocal"
	"github.com/stampede-cache/stampede/internal/dynamostore"
	"github.com/stampede-cache/stampede/internal/locals3"
	"github.com/stampede-cache/stampede/internal/s3blobs"
)

// endpointEnv carries the running instance's endpoint to tests.
const endpointEnv = dynamolocal.EndpointEnv

// Main runs the package's tests and benchmarks against DynamoDB Local: the
// instance named by $STAMPEDE_TEST_DYNAMODB_ENDPOINT when set (`make test`
// starts one for all packages with internal/dynamolocal/cmd/withdynamodb),
// else one it starts and stops itself. Use it from TestMain:
// os.Exit(testenv.Main(m)).
func Main(m *testing.M) int {
	if os.Getenv(endpointEnv) != "" {
		return m.Run()
	}
	ctx := context.Background()
	dir, err := dynamolocal.Locate(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		return 1
	}
	inst, err := dynamolocal.Start(ctx, dynamolocal.Options{Dir: dir, FastStart: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		return 1
	}
	defer inst.Stop()
	os.Setenv(endpointEnv, inst.Endpoint)
	return m.Run()
}

// Endpoint returns the DynamoDB Local endpoint started by Main.
func Endpoint(tb testing.TB) string {
	tb.Helper()
	ep := os.Getenv(endpointEnv)
	if ep == "" {
		tb.Fatal("testenv: DynamoDB Local is not running; call testenv.Main from TestMain")
	}
	return ep
}

// Counter counts DynamoDB requests by operation name, retries included.
type Counter struct {
	total atomic.Int64
}

// Total returns the number of requests sent so far.
func (c *Counter) Total() int64 { return c.total.Load() }

// Reset sets the count back to zero.
func (c *Counter) Reset() { c.total.Store(0) }

// Client returns a DynamoDB client for the test instance, with optFns
// applied. Every HTTP request it sends (each retry too) is counted in the
// returned Counter.
func Client(tb testing.TB, optFns ...func(*dynamostore.ClientOptions)) (*dynamostore.Client, *Counter) {
	tb.Helper()
	counter := &Counter{}
	count := func(o *dynamostore.ClientOptions) {
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			// After the retry middleware, so each attempt is one request.
			return s.Finalize.Add(middleware.FinalizeMiddlewareFunc("CountRequests",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					counter.total.Add(1)
					return next.HandleFinalize(ctx, in)
				}), middleware.After)
		})
	}
	return dynamostore.NewClient(localConfig(), Endpoint(tb), append([]func(*dynamostore.ClientOptions){count}, optFns...)...), counter
}

// localConfig is the AWS configuration of test clients: fixed region and
// credentials, whatever the developer's environment holds, and the SDK's
// default HTTP client and retryer (no response timeout: a test machine
// may be slow, and a test that counts requests must not see retries it
// did not cause).
func localConfig() aws.Config {
	return aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	}
}

// Table creates a fresh table for the test, with the deployed schema.
func Table(tb testing.TB, db dynamostore.TableAPI) string {
	tb.Helper()
	name := fmt.Sprintf("t%d-%s", time.Now().UnixNano(), sanitize(tb.Name()))
	if len(name) > 200 {
		name = name[:200]
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := dynamostore.EnsureTable(ctx, db, name); err != nil {
		tb.Fatal(err)
	}
	return name
}

// Store returns a store over a fresh table and the request counter of its
// client.
func Store(tb testing.TB) (*dynamostore.Store, *Counter) {
	tb.Helper()
	client, counter := Client(tb)
	table := Table(tb, client)
	counter.Reset()
	return dynamostore.New(client, table), counter
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, s)
}

// Clock is a settable clock for tests.
type Clock struct{ now atomic.Int64 }

// NewClock returns a clock stopped at t.
func NewClock(t time.Time) *Clock {
	c := &Clock{}
	c.now.Store(t.UnixNano())
	return c
}

// Now returns the clock's instant.
func (c *Clock) Now() time.Time { return time.Unix(0, c.now.Load()).UTC() }

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) { c.now.Add(int64(d)) }

// S3 starts an in-memory S3-compatible server with the buckets created and
// returns a path-style client for it, with optFns applied.
func S3(tb testing.TB, buckets []string, optFns ...func(*s3blobs.ClientOptions)) *s3blobs.Client {
	tb.Helper()
	srv, err := locals3.Start("", buckets)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = srv.Close() })
	return s3blobs.NewClient(localConfig(), srv.Endpoint, optFns...)
}
