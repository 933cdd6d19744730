package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// DefaultEndpoint is the local server's address (stampede serve).
const DefaultEndpoint = "http://127.0.0.1:8080"

// Defaults of the retry policy and the per-attempt timeout.
const (
	DefaultMaxAttempts    = 5
	DefaultRetryBase      = 100 * time.Millisecond
	DefaultRetryMax       = 5 * time.Second
	DefaultAttemptTimeout = 15 * time.Second
)

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
	userAgent      string
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
	userAgent      string
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
// min(max, base×2^(n-1)) after the n-th failed attempt, or longer when the
// service sends Retry-After. Only throttling (429), server errors (5xx) and
// network errors are retried; every call is idempotent or conditional, so
// retrying is safe.
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
		userAgent:      userAgent,
		service:        "execute-api",
		now:            time.Now,
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
		userAgent:      s.userAgent,
	}
	if c.hc == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		// GetOrCompute waiters poll the same host concurrently.
		t.MaxIdleConnsPerHost = 64
		c.hc = &http.Client{Transport: t, CheckRedirect: noRedirects}
	}
	if s.mode == signOn || s.mode == signAuto && IsAWSEndpoint(u.Hostname()) {
		if c.signer, err = newSigner(s, u.Hostname()); err != nil {
			return nil, err
		}
	}
	return c, nil
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

// request is one call to the API.
type request struct {
	method string
	// path is the escaped path after the endpoint.
	path   string
	query  url.Values
	header http.Header
	body   []byte
}

// response is a successful response's status and headers.
type response struct {
	status int
	header http.Header
}

// call sends req, retrying as the policy allows, and decodes a successful
// response into out.
func (c *Client) call(ctx context.Context, req request, out any) (response, error) {
	for attempt := 1; ; attempt++ {
		status, header, body, err := c.attempt(ctx, req)
		if err == nil && status >= 200 && status < 300 {
			if out != nil {
				if err := json.Unmarshal(body, out); err != nil {
					return response{}, fmt.Errorf("stampede: %s %s: decode the response: %w", req.method, c.base+req.path, err)
				}
			}
			return response{status, header}, nil
		}
		if ctx.Err() != nil {
			// The caller gave up; say why the last attempt failed too.
			if err == nil {
				err = parseError(status, body)
			}
			return response{}, fmt.Errorf("stampede: %s %s: %w (last attempt: %v)", req.method, c.base+req.path, context.Cause(ctx), err)
		}
		var wait time.Duration
		if err == nil {
			apiErr := parseError(status, body)
			if loc := header.Get("Location"); loc != "" && status/100 == 3 {
				apiErr.Message = "redirected to " + loc + "; the client does not follow redirects (check the endpoint)"
			}
			if !apiErr.retryable() || attempt >= c.retry.maxAttempts {
				return response{}, apiErr
			}
			wait = retryAfter(header)
		} else {
			var se *signingError
			if errors.As(err, &se) || attempt >= c.retry.maxAttempts {
				if se == nil && attempt > 1 {
					err = fmt.Errorf("%w (%d attempts)", err, attempt)
				}
				return response{}, err
			}
		}
		wait = max(wait, c.backoff(attempt))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return response{}, fmt.Errorf("stampede: %s %s: %w", req.method, c.base+req.path, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// backoff returns the wait after the n-th failed attempt: full jitter over
// an exponentially growing cap.
func (c *Client) backoff(n int) time.Duration {
	ceiling := c.retry.max
	if n-1 < 32 {
		ceiling = min(c.retry.max, c.retry.base<<(n-1))
	}
	if ceiling <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(ceiling) + 1))
}

// retryAfter reads a Retry-After header (seconds or an HTTP date).
func retryAfter(h http.Header) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = time.Until(t)
	}
	return min(max(d, 0), maxRetryAfter)
}

// attempt sends req once. A non-nil error is a network error, a timeout of
// the attempt or a signing failure; HTTP error statuses are not errors here.
func (c *Client) attempt(ctx context.Context, req request) (int, http.Header, []byte, error) {
	actx, cancel := context.WithTimeout(ctx, c.attemptTimeout)
	defer cancel()
	target := c.base + req.path
	if len(req.query) > 0 {
		target += "?" + req.query.Encode()
	}
	var body io.Reader = http.NoBody
	if req.body != nil {
		body = bytes.NewReader(req.body)
	}
	hr, err := http.NewRequestWithContext(actx, req.method, target, body)
	if err != nil {
		return 0, nil, nil, &signingError{fmt.Errorf("stampede: build request: %w", err)}
	}
	for k, v := range req.header {
		hr.Header[k] = v
	}
	if req.body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if c.signer != nil {
		if err := c.signer.sign(actx, hr, req.body); err != nil {
			return 0, nil, nil, err
		}
	}
	// The signer ignores User-Agent; set it afterwards all the same.
	hr.Header.Set("User-Agent", c.userAgent)
	resp, err := c.hc.Do(hr)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("stampede: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("stampede: %s %s: read the response: %w", req.method, target, err)
	}
	return resp.StatusCode, resp.Header, data, nil
}

// signingError is a failure to build or sign a request: retrying does not
// help.
type signingError struct{ err error }

func (e *signingError) Error() string { return e.err.Error() }
func (e *signingError) Unwrap() error { return e.err }
