// Package awsclient loads the process's one AWS configuration, which the
// DynamoDB and S3 clients (built by internal/dynamostore and
// internal/s3blobs) share: the SDK's default chain (region, credentials,
// AWS_CA_BUNDLE, read once), a bounded retryer, and one HTTP client with
// timeouts on every phase that has no deadline of its own and a connection
// pool sized for concurrency.
//
// Deadlines come from each request's context (the transport sets them); the
// timeouts here only stop a silent peer from using up a whole budget.
package awsclient

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Retries and timeouts of every AWS request.
const (
	// MaxAttempts bounds the attempts of one request, the first included.
	MaxAttempts = 3
	// MaxBackoff bounds the wait between two attempts.
	MaxBackoff = time.Second
	// DialTimeout bounds establishing a TCP connection.
	DialTimeout = 2 * time.Second
	// TLSHandshakeTimeout bounds the TLS handshake.
	TLSHandshakeTimeout = 2 * time.Second
	// ResponseHeaderTimeout bounds the wait for a response's headers once
	// the request is sent, so that a stuck connection leaves the retry
	// time within the request's budget; the request's context may end it
	// sooner. Only for AWS's endpoints: a local engine (DynamoDB Local's
	// JVM on a busy machine) can be slow without being stuck, and there the
	// request's budget alone bounds the wait.
	ResponseHeaderTimeout = 3 * time.Second
	// IdleConnTimeout closes pooled connections left unused this long.
	IdleConnTimeout = 90 * time.Second
	// MaxIdleConnsPerHost keeps this many idle connections to each
	// endpoint: more than the concurrency of one process (16 clients of
	// the local server, or Lambda's one request at a time), so that no
	// connection is closed after a burst only to be dialled again (which
	// would leave TIME_WAIT sockets behind).
	MaxIdleConnsPerHost = 256
)

// LocalRegion is the region signed with when talking to a local endpoint
// and the environment names none.
const LocalRegion = "us-east-1"

// HTTPClient returns the HTTP client of every AWS request, before Load
// freezes it: a BuildableClient, so that the SDK can add AWS_CA_BUNDLE's
// certificates to it. local leaves out the response header timeout (see
// ResponseHeaderTimeout).
func HTTPClient(local bool) *awshttp.BuildableClient {
	headerTimeout := ResponseHeaderTimeout
	if local {
		headerTimeout = 0
	}
	return awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) {
			d.Timeout = DialTimeout
		}).
		WithTransportOptions(func(t *http.Transport) {
			t.TLSHandshakeTimeout = TLSHandshakeTimeout
			t.ResponseHeaderTimeout = headerTimeout
			t.IdleConnTimeout = IdleConnTimeout
			t.MaxIdleConnsPerHost = MaxIdleConnsPerHost
			// Zero: no limit across hosts beyond the per-host one.
			t.MaxIdleConns = 0
		})
}

// NewRetryer returns the retryer of every AWS request: the SDK's standard
// one (exponential backoff with jitter, retry quota) with MaxAttempts
// attempts at most MaxBackoff apart.
func NewRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = MaxAttempts
		o.MaxBackoff = MaxBackoff
	})
}

// Load reads the SDK's default configuration chain once, with the HTTP
// client and retryer above. Call it once per process and share the result;
// local says the process talks to local endpoints (DynamoDB Local,
// gofakes3, LocalStack) rather than AWS's.
func Load(ctx context.Context, local bool) (aws.Config, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx,
		awsconfig.WithHTTPClient(HTTPClient(local)),
		awsconfig.WithRetryer(NewRetryer),
	)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	if b, ok := cfg.HTTPClient.(*awshttp.BuildableClient); ok {
		cfg.HTTPClient = &frozenOnFirstUse{buildable: b}
	}
	return cfg, nil
}

// frozenOnFirstUse is the process's one HTTP client, built (frozen) when
// the first request needs it. Frozen, it is built once (AWS_CA_BUNDLE's
// certificates parsed once) and shared by every service client, which
// would otherwise each copy a BuildableClient and apply the SDK's defaults
// mode over these timeouts. Built on first use, a Lambda function's init
// does not parse the bundle: its first request does, as the SDK's own
// default client does.
type frozenOnFirstUse struct {
	buildable *awshttp.BuildableClient
	once      sync.Once
	client    aws.HTTPClient
}

// Do sends req on the frozen client.
func (c *frozenOnFirstUse) Do(req *http.Request) (*http.Response, error) {
	c.once.Do(func() { c.client = c.buildable.Freeze() })
	return c.client.Do(req)
}

// LocalDefaults fills in what a local endpoint (DynamoDB Local, gofakes3,
// LocalStack) needs and the environment may not give: a region, and, when
// no credentials are configured in the environment, dummy ones, which
// those endpoints accept. Service clients call it on their own options for
// a custom endpoint only, so that a real AWS endpoint never signs with
// dummy credentials.
func LocalDefaults(region *string, creds *aws.CredentialsProvider) {
	if *region == "" {
		*region = LocalRegion
	}
	if os.Getenv("AWS_ACCESS_KEY_ID") == "" && os.Getenv("AWS_PROFILE") == "" {
		*creds = credentials.NewStaticCredentialsProvider("local", "local", "")
	}
}
