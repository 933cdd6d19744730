package client

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// DefaultEndpoint is the local server's address (stampede serve).
const DefaultEndpoint = "http://127.0.0.1:8080"

// Defaults of the retry policy and the timeouts.
const (
	DefaultMaxAttempts    = 5
	DefaultRetryBase      = 100 * time.Millisecond
	DefaultRetryMax       = 5 * time.Second
	DefaultAttemptTimeout = 15 * time.Second
	// DefaultCallTimeout bounds a call (all its attempts and the waits
	// between them) whose context has no deadline of its own.
	DefaultCallTimeout = time.Minute
	// DefaultDialTimeout and DefaultTLSHandshakeTimeout bound connecting,
	// on the client's own transport (not with WithHTTPClient).
	DefaultDialTimeout         = 5 * time.Second
	DefaultTLSHandshakeTimeout = 5 * time.Second
	// DefaultSessionKeys is how many keys the client remembers versions of
	// for its session guarantees.
	DefaultSessionKeys = 10000
)

// durationKeys is how many keys the client remembers the last computation
// time of.
const durationKeys = 1024

// maxRetryAfter bounds how long a Retry-After header may make a call wait.
const maxRetryAfter = time.Minute

// maxResponseBytes bounds what the client reads of a response.
const maxResponseBytes = 1 << 20

// userAgent identifies the client in the service's logs.
const userAgent = "stampede-go-client/1"

// Client calls Stampede. It is safe for concurrent use.
type Client struct {
	// base is the endpoint, escaped, without a trailing slash.
	base           string
	hc             *http.Client
	signer         *signer
	retry          retryPolicy
	attemptTimeout time.Duration
	callTimeout    time.Duration
	userAgent      string

	// reads coalesces concurrent strong reads of a key; nil when disabled.
	reads *readCoalescer
	// session remembers the newest version seen per key; nil when disabled.
	session *session
	// calls are this client's GetOrCompute calls leading a key, which the
	// client's other calls for the key follow.
	calls *localCalls
	// durations remembers how long each key's last computation took.
	durations *durations
	// longPolling: GetOrCompute waiters wait with wait_ms; cannotWait is
	// set once the service refused wait_ms (an older service).
	longPolling bool
	cannotWait  atomic.Bool
	// sharedWaits: the service said its waits are shared (WaitsHeader),
	// so GetOrCompute waiters long-poll without WithLongPolling.
	sharedWaits atomic.Bool
}

type retryPolicy struct {
	maxAttempts int
	base, max   time.Duration
}

// signMode says whether requests are signed.
type signMode int

const (
	signAuto signMode = iota
	signOn
	signOff
)

type settings struct {
	hc             *http.Client
	mode           signMode
	awsConfig      *aws.Config
	credentials    aws.CredentialsProvider
	region         string
	service        string
	now            func() time.Time
	retry          retryPolicy
	attemptTimeout time.Duration
	callTimeout    time.Duration
	userAgent      string
	noCoalescing   bool
	sessionKeys    int
	longPolling    bool
}

// Option configures a Client.
type Option func(*settings) error

// WithHTTPClient sends requests through hc instead of a client of the
// package's own.
func WithHTTPClient(hc *http.Client) Option {
	return func(s *settings) error {
		if hc == nil {
			return errors.New("WithHTTPClient: nil client")
		}
		s.hc = hc
		return nil
	}
}

// WithSigV4 signs every request with AWS Signature Version 4 for API
// Gateway (service execute-api), with cfg's credentials and region.
func WithSigV4(cfg aws.Config) Option {
	return func(s *settings) error {
		if cfg.Credentials == nil {
			return errors.New("WithSigV4: the configuration has no credentials")
		}
		s.mode, s.awsConfig, s.credentials, s.region = signOn, nil, cfg.Credentials, cfg.Region
		return nil
	}
}

// WithSigV4Credentials signs every request with AWS Signature Version 4 for
// API Gateway, with the given credentials and region.
func WithSigV4Credentials(credentials aws.CredentialsProvider, region string) Option {
	return func(s *settings) error {
		if credentials == nil {
			return errors.New("WithSigV4Credentials: nil credentials provider")
		}
		s.mode, s.awsConfig, s.credentials, s.region = signOn, nil, credentials, region
		return nil
	}
}

// WithDefaultSigV4 signs every request, with credentials and region from
// the AWS SDK's default chain (environment, shared config files, SSO, web
// identity, container and instance roles). New does this by itself when
// the endpoint's host ends with amazonaws.com; use this option for a custom
// domain name in front of an IAM-authorized API.
func WithDefaultSigV4() Option {
	return func(s *settings) error {
		s.mode, s.awsConfig, s.credentials = signOn, nil, nil
		return nil
	}
}

// WithoutSigV4 never signs requests, even to an amazonaws.com endpoint.
func WithoutSigV4() Option {
	return func(s *settings) error {
		s.mode = signOff
		return nil
	}
}

// WithRetry sets the retry policy: at most maxAttempts attempts per call
// (1 disables retries), waiting a random duration between 0 and
// min(max, base×2^(n-1)) after the n-th failed attempt, on top of the
// service's Retry-After when it sends one. Only throttling (429), server
// errors (5xx) and network errors are retried, and never past the call's
// deadline. Retrying is safe: reads change nothing, and every mutating
// call carries one Idempotency-Key across its attempts.
func WithRetry(maxAttempts int, base, max time.Duration) Option {
	return func(s *settings) error {
		if maxAttempts < 1 {
			return fmt.Errorf("WithRetry: maxAttempts must be at least 1, got %d", maxAttempts)
		}
		if base <= 0 || max < base {
			return fmt.Errorf("WithRetry: need 0 < base <= max, got %s and %s", base, max)
		}
		s.retry = retryPolicy{maxAttempts: maxAttempts, base: base, max: max}
		return nil
	}
}

// WithAttemptTimeout bounds each attempt (connect, send, read the response);
// a timed-out attempt is retried. The caller's context bounds the whole
// call.
func WithAttemptTimeout(d time.Duration) Option {
	return func(s *settings) error {
		if d <= 0 {
			return fmt.Errorf("WithAttemptTimeout: must be positive, got %s", d)
		}
		s.attemptTimeout = d
		return nil
	}
}

// WithCallTimeout sets the deadline given to a call whose context has
// none (DefaultCallTimeout by default): no request waits without one. A
// context's own deadline always wins.
func WithCallTimeout(d time.Duration) Option {
	return func(s *settings) error {
		if d <= 0 {
			return fmt.Errorf("WithCallTimeout: must be positive, got %s", d)
		}
		s.callTimeout = d
		return nil
	}
}

// WithoutReadCoalescing makes every Get its own request. By default,
// concurrent strong reads of a key through one client share requests (see
// docs/client.md, Coalesced reads).
func WithoutReadCoalescing() Option {
	return func(s *settings) error {
		s.noCoalescing = true
		return nil
	}
}

// WithSessionKeys sets how many keys the client remembers the newest
// version of (DefaultSessionKeys by default; least recently used keys are
// forgotten first). Eventual and bounded-staleness reads of a remembered
// key never answer older than what the client has seen or written. Zero
// turns the session guarantees off.
func WithSessionKeys(n int) Option {
	return func(s *settings) error {
		if n < 0 {
			return fmt.Errorf("WithSessionKeys: must not be negative, got %d", n)
		}
		s.sessionKeys = n
		return nil
	}
}

// WaitsHeader is the response header by which a service says how it
// serves a get that waits: WaitsShared when every waiter of a key shares
// one read per tick (stampede serve). GetOrCompute waiters then long-poll.
const (
	WaitsHeader = "Stampede-Waits"
	WaitsShared = "shared"
)

// WithLongPolling makes GetOrCompute waiters ask the service to wait for
// the holder's result (GetOptions.Wait, up to MaxGetWait per request)
// instead of polling: they learn of it the moment it is stored, with one
// request per 20 s of waiting. Waiters do so without this option when the
// service says its waits are shared (WaitsHeader: a long-running server
// such as stampede serve, which shares one read per tick among all the
// waiters of a key). Force it only where you know waiting is cheap: in
// front of Lambda each waiting request holds an execution environment and
// reads DynamoDB ten times a second on its own. A service that does not
// know wait_ms is polled as usual.
func WithLongPolling() Option {
	return func(s *settings) error {
		s.longPolling = true
		return nil
	}
}

// WithUserAgent prepends product to the User-Agent header.
func WithUserAgent(product string) Option {
	return func(s *settings) error {
		s.userAgent = product + " " + userAgent
		return nil
	}
}

// withSigningService and withSigningClock exist for tests of the signer.
func withSigningService(service string) Option {
	return func(s *settings) error {
		s.service = service
		return nil
	}
}

func withSigningClock(now func() time.Time) Option {
	return func(s *settings) error {
		s.now = now
		return nil
	}
}

// New returns a client of the API at endpoint, e.g. DefaultEndpoint,
// https://abc123.execute-api.eu-west-1.amazonaws.com or
// https://abc123.execute-api.eu-west-1.amazonaws.com/prod (a base path is
// kept). Requests are signed with SigV4 when an option asks for it or, by
// default, when the endpoint's host ends with amazonaws.com.
func New(endpoint string, opts ...Option) (*Client, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("stampede: endpoint: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("stampede: endpoint %q: want http(s)://host[:port][/base-path]", endpoint)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("stampede: endpoint %q: no query, fragment or user info allowed", endpoint)
	}
	s := settings{
		retry:          retryPolicy{maxAttempts: DefaultMaxAttempts, base: DefaultRetryBase, max: DefaultRetryMax},
		attemptTimeout: DefaultAttemptTimeout,
		callTimeout:    DefaultCallTimeout,
		userAgent:      userAgent,
		service:        "execute-api",
		now:            time.Now,
		sessionKeys:    DefaultSessionKeys,
	}
	for _, opt := range opts {
		if err := opt(&s); err != nil {
			return nil, fmt.Errorf("stampede: %w", err)
		}
	}
	c := &Client{
		base:           strings.TrimSuffix(u.Scheme+"://"+u.Host+u.EscapedPath(), "/"),
		hc:             s.hc,
		retry:          s.retry,
		attemptTimeout: s.attemptTimeout,
		callTimeout:    s.callTimeout,
		userAgent:      s.userAgent,
		calls:          newLocalCalls(),
		longPolling:    s.longPolling,
	}
	if c.durations, err = newDurations(durationKeys); err != nil {
		return nil, fmt.Errorf("stampede: %w", err)
	}
	if !s.noCoalescing {
		c.reads = newReadCoalescer()
	}
	if s.sessionKeys > 0 {
		if c.session, err = newSession(s.sessionKeys); err != nil {
			return nil, fmt.Errorf("stampede: %w", err)
		}
	}
	if c.hc == nil {
		c.hc = &http.Client{Transport: newTransport(s.attemptTimeout), CheckRedirect: noRedirects}
	}
	if s.mode == signOn || s.mode == signAuto && IsAWSEndpoint(u.Hostname()) {
		if c.signer, err = newSigner(s, u.Hostname()); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// newTransport is the client's own HTTP transport: bounded connecting,
// TLS handshake and wait for the response's headers, and an idle pool
// large enough for a herd of GetOrCompute callers sharing the client.
func newTransport(attemptTimeout time.Duration) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: DefaultDialTimeout, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = DefaultTLSHandshakeTimeout
	// A get that waits for its entry answers up to MaxGetWait late; the
	// attempt's own timeout bounds every other request.
	t.ResponseHeaderTimeout = attemptTimeout + MaxGetWait
	t.ExpectContinueTimeout = time.Second
	t.MaxIdleConns = 512
	t.MaxIdleConnsPerHost = 256
	return t
}

// noRedirects stops the HTTP client from following redirects: the API
// never redirects, and a request re-sent elsewhere would carry a signature
// for the wrong URL. A redirect is reported as an *APIError instead.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Endpoint returns the endpoint the client calls.
func (c *Client) Endpoint() string { return c.base }

// Signs reports whether the client signs its requests with SigV4.
func (c *Client) Signs() bool { return c.signer != nil }

// IsAWSEndpoint reports whether host is an AWS service host, whose requests
// New signs by default.
func IsAWSEndpoint(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	return host == "amazonaws.com" || strings.HasSuffix(host, ".amazonaws.com") || strings.HasSuffix(host, ".amazonaws.com.cn")
}
