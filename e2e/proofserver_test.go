package e2e_test

// The proof's rig: the API served in-process over DynamoDB Local, as
// `stampede serve` runs it, the store's DynamoDB traffic optionally through
// a fault proxy, with server-side checks of what leaves it.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/stampede-cache/stampede/internal/awsclient"
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
	endpoint := testenv.Endpoint(t)
	var proxy *faultproxy.Proxy
	var tag []func(*dynamostore.ClientOptions)
	if opts.proxy {
		var err error
		var popts faultproxy.Options
		if l := opts.landings; l != nil {
			popts.OnForward, popts.OnServed = l.forwarded, l.served
		}
		proxy, err = faultproxy.Start(endpoint, popts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = proxy.Close() })
		endpoint = proxy.URL()
		tag = append(tag, func(o *dynamostore.ClientOptions) { o.APIOptions = append(o.APIOptions, tagDynamoDBRequests) })
	}
	storeClient := dynamostore.NewClient(serviceConfig(opts.proxy), endpoint, tag...)
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

// serviceConfig is the AWS configuration the service runs with
// (awsclient): its HTTP client, with AWS's response-header timeout when the
// store's traffic goes through the fault proxy (it stands for AWS), and its
// bounded retryer; test credentials.
func serviceConfig(remote bool) aws.Config {
	return aws.Config{
		Region:      awsclient.LocalRegion,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		HTTPClient:  awsclient.HTTPClient(!remote),
		Retryer:     awsclient.NewRetryer,
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

// reportServerChecks fails the test with what the server-side checks saw:
// 500 answers and leases that left already expired.
func (s *proofServer) reportServerChecks(t *testing.T) {
	t.Helper()
	if r := s.internals.report(); r != "" {
		t.Error(r)
	}
	s.leases.mu.Lock()
	defer s.leases.mu.Unlock()
	for i, e := range s.leases.expired {
		if i == 3 {
			t.Errorf("… %d more expired leases", len(s.leases.expired)-i)
			break
		}
		t.Error(e)
	}
}
