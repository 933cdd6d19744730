package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// roundTripFunc is an http.RoundTripper for tests.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func jsonResponse(status int, body string) *http.Response {
	return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body))}
}

var exampleCreds = credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "")

// TestSigV4GetVanilla checks the signing path against the "get-vanilla"
// case of AWS's Signature Version 4 test suite.
func TestSigV4GetVanilla(t *testing.T) {
	signedAt := time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)
	var got *http.Request
	c, err := New("https://example.amazonaws.com",
		WithSigV4Credentials(exampleCreds, "us-east-1"),
		withSigningService("service"),
		withSigningClock(func() time.Time { return signedAt }),
		WithHTTPClient(&http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			got = r
			return jsonResponse(200, `{}`), nil
		})}),
	)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.call(context.Background(), request{method: http.MethodGet, path: "/"}, nil); err != nil {
		t.Fatal(err)
	}
	const want = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, " +
		"SignedHeaders=host;x-amz-date, " +
		"Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
	if a := got.Header.Get("Authorization"); a != want {
		t.Errorf("Authorization =\n%s\nwant\n%s", a, want)
	}
	if d := got.Header.Get("X-Amz-Date"); d != "20150830T123600Z" {
		t.Errorf("X-Amz-Date = %q", d)
	}
}

// TestSigV4SignsWhatIsSent re-derives the signature of requests as a
// server would, from what it received: escaped key, query and body.
func TestSigV4SignsWhatIsSent(t *testing.T) {
	var verified atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		auth := r.Header.Get("Authorization")
		_, signed, ok := strings.Cut(auth, "SignedHeaders=")
		if !ok {
			http.Error(w, "unsigned", http.StatusForbidden)
			return
		}
		signed, _, _ = strings.Cut(signed, ",")
		// Rebuild the request from the wire, keeping the signed headers.
		re, _ := http.NewRequest(r.Method, "http://"+r.Host+r.RequestURI, nil)
		for _, h := range strings.Split(signed, ";") {
			if h != "host" {
				re.Header.Set(h, r.Header.Get(h))
			}
		}
		re.ContentLength = int64(len(body))
		at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		sum := sha256.Sum256(body)
		creds, _ := exampleCreds.Retrieve(r.Context())
		if err := v4.NewSigner().SignHTTP(r.Context(), creds, re, hex.EncodeToString(sum[:]), "execute-api", "eu-west-1", at); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if re.Header.Get("Authorization") != auth {
			http.Error(w, `{"error":{"code":"invalid_argument","message":"signature mismatch"}}`, http.StatusForbidden)
			return
		}
		verified.Add(1)
		switch r.Method {
		case http.MethodPut:
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"project":"p","domain":"d","key":"k","output_uri":"s3://bucket/x","metadata":{},"created_at":"2026-01-02T03:04:05.000Z","last_updated_at":"2026-01-02T03:04:05.000Z","version":1}`)
		default:
			io.WriteString(w, `{"released":true}`)
		}
	}))
	defer srv.Close()
	c, err := New(srv.URL+"/prod", WithSigV4Credentials(exampleCreds, "eu-west-1"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s := Scope{Project: "p", Domain: "d"}
	key := "models/res net%2F?#ü"
	if _, err := c.Put(ctx, s, key, PutRequest{OutputURI: "s3://bucket/x", Metadata: Metadata{Labels: map[string]string{"a": "b"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Release(ctx, s, key, ReleaseRequest{OwnerID: "owner with spaces&=+"}); err != nil {
		t.Fatal(err)
	}
	if verified.Load() != 2 {
		t.Fatalf("verified %d requests, want 2", verified.Load())
	}
}

func TestSigningDefaults(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	for _, tc := range []struct {
		endpoint string
		opts     []Option
		signs    bool
		region   string
	}{
		{endpoint: "http://127.0.0.1:8080"},
		{endpoint: "https://abc.execute-api.eu-west-3.amazonaws.com/prod", signs: true, region: "eu-west-3"},
		{endpoint: "https://abc.execute-api.eu-west-3.amazonaws.com", opts: []Option{WithoutSigV4()}},
		{endpoint: "https://cache.example.com", opts: []Option{WithSigV4Credentials(exampleCreds, "us-east-2")}, signs: true, region: "us-east-2"},
	} {
		c, err := New(tc.endpoint, tc.opts...)
		if err != nil {
			t.Fatalf("%s: %v", tc.endpoint, err)
		}
		if c.Signs() != tc.signs {
			t.Errorf("%s: signs = %v, want %v", tc.endpoint, c.Signs(), tc.signs)
		}
		if tc.signs && c.signer.region != tc.region {
			t.Errorf("%s: region = %q, want %q", tc.endpoint, c.signer.region, tc.region)
		}
	}
	// A custom domain with signing but no region anywhere is refused.
	if _, err := New("https://cache.example.com", WithDefaultSigV4()); err == nil || !strings.Contains(err.Error(), "region") {
		t.Errorf("no region: err = %v", err)
	}
}

func TestNewRejectsBadEndpoints(t *testing.T) {
	for _, ep := range []string{"", "127.0.0.1:8080", "ftp://host", "http://", "http://h/?q=1", "http://u:p@h"} {
		if _, err := New(ep); err == nil {
			t.Errorf("New(%q) accepted", ep)
		}
	}
	c, err := New("https://h.example/base/")
	if err != nil || c.Endpoint() != "https://h.example/base" {
		t.Errorf("Endpoint() = %q, %v", c.Endpoint(), err)
	}
}

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"models/resnet": "models%2Fresnet",
		"a b":           "a%20b",
		"100%":          "100%25",
		"%2F":           "%252F",
		"?x=1#y":        "%3Fx%3D1%23y",
		"ü":             "%C3%BC",
		"A-z_0.9~":      "A-z_0.9~",
		".":             "%2E",
		"..":            "%2E%2E",
		"a..b":          "a..b",
		"+&;=":          "%2B%26%3B%3D",
	} {
		if got := escape(in); got != want {
			t.Errorf("escape(%q) = %q, want %q", in, got, want)
		}
	}
	if _, err := resourcePath(Scope{Project: "p"}, "k", "cache"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("missing domain: %v", err)
	}
}

func TestRegionFromHost(t *testing.T) {
	for host, want := range map[string]string{
		"abc.execute-api.eu-west-1.amazonaws.com":     "eu-west-1",
		"abc.execute-api.cn-north-1.amazonaws.com.cn": "cn-north-1",
		"example.amazonaws.com":                       "",
		"cache.example.com":                           "",
	} {
		if got := regionFromHost(host); got != want {
			t.Errorf("regionFromHost(%q) = %q, want %q", host, got, want)
		}
	}
}

// fakeAPI answers with the scripted responses in turn and counts requests.
type fakeAPI struct {
	calls     atomic.Int32
	responses []func(w http.ResponseWriter, r *http.Request)
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := int(f.calls.Add(1)) - 1
	f.responses[min(n, len(f.responses)-1)](w, r)
}

func status(code int, body string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(code)
		io.WriteString(w, body)
	}
}

const okEntry = `{"project":"p","domain":"d","key":"k","output_uri":"s3://bucket/k","metadata":{},"created_at":"2026-01-02T03:04:05.000Z","last_updated_at":"2026-01-02T03:04:05.000Z","version":1}`

func fakeClient(t *testing.T, f *fakeAPI, opts ...Option) *Client {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := New(srv.URL, append([]Option{WithRetry(4, time.Millisecond, 5*time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var scope = Scope{Project: "p", Domain: "d"}

func TestRetries(t *testing.T) {
	ctx := context.Background()
	hangup := func(w http.ResponseWriter, _ *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}
	for _, tc := range []struct {
		name      string
		responses []func(http.ResponseWriter, *http.Request)
		calls     int32
		wantErr   error
	}{
		{"5xx then ok", []func(http.ResponseWriter, *http.Request){status(503, `{"error":{"code":"unavailable","message":"x"}}`), status(500, `oops`), status(200, okEntry)}, 3, nil},
		{"429 then ok", []func(http.ResponseWriter, *http.Request){status(429, `{"message":"Too Many Requests"}`), status(200, okEntry)}, 2, nil},
		{"network errors then ok", []func(http.ResponseWriter, *http.Request){hangup, hangup, status(200, okEntry)}, 3, nil},
		{"4xx is final", []func(http.ResponseWriter, *http.Request){status(400, `{"error":{"code":"invalid_argument","message":"key: bad"}}`), status(200, okEntry)}, 1, ErrInvalidArgument},
		{"404 is final", []func(http.ResponseWriter, *http.Request){status(404, `{"error":{"code":"not_found","message":"key: no cached entry"}}`)}, 1, ErrNotFound},
		{"gives up", []func(http.ResponseWriter, *http.Request){status(502, `<html>Bad Gateway</html>`)}, 4, ErrUnavailable},
		{"throttled to the end", []func(http.ResponseWriter, *http.Request){status(429, `{"error":{"code":"throttled","message":"slow down"}}`)}, 4, ErrThrottled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeAPI{responses: tc.responses}
			e, err := fakeClient(t, f).Get(ctx, scope, "k", nil)
			if f.calls.Load() != tc.calls {
				t.Errorf("calls = %d, want %d", f.calls.Load(), tc.calls)
			}
			if tc.wantErr == nil {
				if err != nil || e.OutputURI != "s3://bucket/k" {
					t.Fatalf("Get = %+v, %v", e, err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	f := &fakeAPI{responses: []func(http.ResponseWriter, *http.Request){func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://elsewhere.example/v1", http.StatusPermanentRedirect)
	}}}
	_, err := fakeClient(t, f).Get(context.Background(), scope, "k", nil)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusPermanentRedirect || !strings.Contains(apiErr.Message, "https://elsewhere.example/v1") {
		t.Fatalf("err = %v", err)
	}
	if f.calls.Load() != 1 {
		t.Fatalf("calls = %d, want 1", f.calls.Load())
	}
}

func TestNetworkErrorAfterRetries(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c, err := New(url, WithRetry(3, time.Millisecond, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(context.Background(), scope, "k", nil)
	if err == nil || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "3 attempts") {
		t.Fatalf("err = %v", err)
	}
}

func TestAttemptTimeoutIsRetried(t *testing.T) {
	f := &fakeAPI{responses: []func(http.ResponseWriter, *http.Request){
		func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
		status(200, okEntry),
	}}
	// Long enough that the second, prompt answer never times out too on a
	// loaded machine; the first attempt hangs until it does.
	c := fakeClient(t, f, WithAttemptTimeout(2*time.Second))
	if _, err := c.Get(context.Background(), scope, "k", nil); err != nil {
		t.Fatal(err)
	}
	if f.calls.Load() != 2 {
		t.Fatalf("calls = %d, want 2", f.calls.Load())
	}
}

func TestContextStopsRetries(t *testing.T) {
	f := &fakeAPI{responses: []func(http.ResponseWriter, *http.Request){status(503, `{"error":{"code":"unavailable","message":"down"}}`)}}
	c := fakeClient(t, f, WithRetry(100, time.Hour, time.Hour))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Get(ctx, scope, "k", nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if f.calls.Load() != 1 {
		t.Fatalf("calls = %d, want 1", f.calls.Load())
	}
}

func TestRetryAfter(t *testing.T) {
	for v, want := range map[string]time.Duration{
		"":        0,
		"2":       2 * time.Second,
		"-1":      0,
		"9999999": maxRetryAfter,
		"soon":    0,
		time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat): 0,
	} {
		if got := retryAfter(http.Header{"Retry-After": {v}}); got != want {
			t.Errorf("Retry-After %q: %s, want %s", v, got, want)
		}
	}
	future := time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat)
	if got := retryAfter(http.Header{"Retry-After": {future}}); got < 25*time.Second || got > 30*time.Second {
		t.Errorf("Retry-After date: %s", got)
	}
}

func TestBackoffIsBounded(t *testing.T) {
	c := &Client{retry: retryPolicy{maxAttempts: 5, base: 100 * time.Millisecond, max: time.Second}}
	for n := 1; n < 100; n++ {
		ceiling := min(time.Second, 100*time.Millisecond<<min(n-1, 20))
		if d := c.backoff(n); d < 0 || d > ceiling {
			t.Fatalf("backoff(%d) = %s, want within [0, %s]", n, d, ceiling)
		}
	}
}

func TestAPIErrors(t *testing.T) {
	conflict := `{"error":{"code":"already_exists","message":"key: an entry exists"},"existing":` + okEntry + `}`
	e := parseError(409, []byte(conflict))
	if !errors.Is(e, ErrAlreadyExists) || errors.Is(e, ErrNotFound) || e.Existing == nil || e.Existing.OutputURI != "s3://bucket/k" {
		t.Fatalf("conflict: %+v", e)
	}
	if e.Error() != "stampede: already_exists (HTTP 409): key: an entry exists" {
		t.Errorf("Error() = %q", e.Error())
	}
	holder := `{"error":{"code":"failed_precondition","message":"lost"},"holder":{"project":"p","domain":"d","key":"k","owner_id":"w2","heartbeat_interval_seconds":10,"expires_at":"2026-01-02T03:04:35.000Z","fence":7}}`
	e = parseError(412, []byte(holder))
	if !errors.Is(e, ErrFailedPrecondition) || e.Holder == nil || e.Holder.OwnerID != "w2" || e.Holder.HeartbeatInterval != 10*time.Second {
		t.Fatalf("holder: %+v", e)
	}
	e = parseError(403, []byte(`{"message":"Missing Authentication Token"}`))
	if e.Code != "" || e.Message != "Missing Authentication Token" || e.retryable() || e.Error() != "stampede: HTTP 403: Missing Authentication Token" {
		t.Fatalf("gateway 403: %+v %q", e, e.Error())
	}
	e = parseError(504, []byte("<html>\n<body>Gateway Timeout</body></html>"))
	if !errors.Is(e, ErrUnavailable) || !e.retryable() || e.Message != "<html> <body>Gateway Timeout</body></html>" {
		t.Fatalf("gateway 504: %+v", e)
	}
	var wrapped error = &APIError{Code: CodeNotFound}
	wrapped = errors.Join(errors.New("context"), wrapped)
	var apiErr *APIError
	if !errors.Is(wrapped, ErrNotFound) || !errors.As(wrapped, &apiErr) {
		t.Fatal("wrapped APIError not matched")
	}
}

func TestEntryJSONRoundTrip(t *testing.T) {
	for _, in := range []string{
		okEntry,
		`{"project":"p","domain":"d","key":"a/b","output_uri":"s3://bucket/k","metadata":{"source":{"project":"p","name":"train","version":"v1"},"labels":{"team":"ml"}},"created_at":"2026-01-02T03:04:05.006Z","last_updated_at":"2026-01-02T03:04:06.000Z","version":3,"expires_at":"2027-01-02T03:04:05.000Z"}`,
	} {
		var e Entry
		if err := json.Unmarshal([]byte(in), &e); err != nil {
			t.Fatal(err)
		}
		out, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != in {
			t.Errorf("round trip:\n got %s\nwant %s", out, in)
		}
	}
	in := `{"project":"p","domain":"d","key":"k","owner_id":"w","heartbeat_interval_seconds":10,"expires_at":"2026-01-02T03:04:35.000Z","fence":1795269746998}`
	var r Reservation
	if err := json.Unmarshal([]byte(in), &r); err != nil {
		t.Fatal(err)
	}
	if out, _ := json.Marshal(r); string(out) != in {
		t.Errorf("reservation round trip: %s", out)
	}
}

func TestLocalValidation(t *testing.T) {
	c, err := New("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Get(ctx, Scope{Domain: "d"}, "k", nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("no project: %v", err)
	}
	if _, err := c.Get(ctx, scope, "", nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("no key: %v", err)
	}
	if _, err := c.Reserve(ctx, scope, "k", ReserveRequest{}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("no owner: %v", err)
	}
	if _, err := c.Put(ctx, scope, "k", PutRequest{OutputURI: "s3://b/k", TTL: -time.Second}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("negative TTL: %v", err)
	}
	if _, err := c.GetOrCompute(ctx, scope, "k", nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("nil compute: %v", err)
	}
}

func TestSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int64{time.Nanosecond: 1, time.Second: 1, 1500 * time.Millisecond: 2, time.Hour: 3600} {
		if got, err := seconds("x", d); err != nil || *got != want {
			t.Errorf("seconds(%s) = %v, %v; want %d", d, got, err, want)
		}
	}
	if got, err := seconds("x", 0); got != nil || err != nil {
		t.Errorf("seconds(0) = %v, %v", got, err)
	}
}
