package awsclient_test

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"

	"github.com/stampede-cache/stampede/internal/awsclient"
)

// isolate keeps the developer's AWS settings out of Load.
func isolate(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_CONFIG_FILE":             filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_PROFILE":                 "",
		"AWS_REGION":                  "eu-west-1",
		"AWS_ACCESS_KEY_ID":           "AKID",
		"AWS_SECRET_ACCESS_KEY":       "secret",
		"AWS_CA_BUNDLE":               "",
		"AWS_EC2_METADATA_DISABLED":   "true",
	} {
		t.Setenv(k, v)
	}
}

func TestHTTPClientSettings(t *testing.T) {
	c := awsclient.HTTPClient(false)
	tr, dialer := c.GetTransport(), c.GetDialer()
	for _, tt := range []struct {
		name      string
		got, want time.Duration
	}{
		{"dial", dialer.Timeout, 2 * time.Second},
		{"TLS handshake", tr.TLSHandshakeTimeout, 2 * time.Second},
		{"response header", tr.ResponseHeaderTimeout, 3 * time.Second},
		{"idle connection", tr.IdleConnTimeout, 90 * time.Second},
	} {
		if tt.got != tt.want {
			t.Errorf("%s timeout %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	if tr.MaxIdleConnsPerHost < 256 || tr.MaxIdleConns != 0 {
		t.Errorf("pool: %d idle per host (want at least 256), %d in all (want no limit)", tr.MaxIdleConnsPerHost, tr.MaxIdleConns)
	}
	local := awsclient.HTTPClient(true).GetTransport()
	if local.ResponseHeaderTimeout != 0 || local.TLSHandshakeTimeout != tr.TLSHandshakeTimeout || local.MaxIdleConnsPerHost != tr.MaxIdleConnsPerHost {
		t.Errorf("local endpoints: response header timeout %v (want none), the rest as for AWS", local.ResponseHeaderTimeout)
	}
}

func TestRetryer(t *testing.T) {
	r := awsclient.NewRetryer()
	if r.MaxAttempts() != 3 {
		t.Errorf("%d attempts, want 3", r.MaxAttempts())
	}
	retryable := &net.OpError{Op: "dial", Err: errors.New("connection refused")}
	if !r.IsErrorRetryable(retryable) {
		t.Fatal("a refused connection is not retried")
	}
	for attempt := 1; attempt <= 20; attempt++ {
		d, err := r.RetryDelay(attempt, retryable)
		if err != nil || d > time.Second {
			t.Errorf("delay before attempt %d: %v, %v; want at most 1s", attempt+1, d, err)
		}
	}
}

// TestLoad: one load gives a frozen client (shared by every service
// client, not re-derived by each) and the bounded retryer.
func TestLoad(t *testing.T) {
	isolate(t)
	cfg, err := awsclient.Load(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cfg.HTTPClient.(*awshttp.BuildableClient); ok || cfg.HTTPClient == nil {
		t.Errorf("HTTP client %T: want the frozen client", cfg.HTTPClient)
	}
	if cfg.Retryer == nil || cfg.Retryer().MaxAttempts() != 3 {
		t.Error("retryer: want at most 3 attempts")
	}
	if cfg.Region != "eu-west-1" {
		t.Errorf("region %q", cfg.Region)
	}
	creds, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil || creds.AccessKeyID != "AKID" {
		t.Errorf("credentials %v, %v", creds.AccessKeyID, err)
	}
}

// TestLoadWithCABundle: AWS_CA_BUNDLE's certificates reach the shared
// client, and only its: a server they sign is trusted, and without the
// bundle it is not.
func TestLoadWithCABundle(t *testing.T) {
	isolate(t)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	srv.StartTLS()
	defer srv.Close()
	get := func(client aws.HTTPClient) error {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}

	plain, err := awsclient.Load(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := get(plain.HTTPClient); err == nil {
		t.Fatal("a server signed by an unknown CA was trusted without AWS_CA_BUNDLE")
	}
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CA_BUNDLE", bundle)
	cfg, err := awsclient.Load(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := get(cfg.HTTPClient); err != nil {
		t.Fatalf("with AWS_CA_BUNDLE: %v", err)
	}
}

// connCounter counts the connections a server accepts and closes.
type connCounter struct{ opened, closed atomic.Int64 }

func (c *connCounter) track(_ net.Conn, state http.ConnState) {
	switch state {
	case http.StateNew:
		c.opened.Add(1)
	case http.StateClosed, http.StateHijacked:
		c.closed.Add(1)
	}
}

// burst sends rounds of 16 concurrent requests through client and reports
// the connections the server saw opened and closed meanwhile.
func burst(t *testing.T, client aws.HTTPClient, rounds int) (opened, closed int64) {
	t.Helper()
	counter := &connCounter{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	srv.Config.ConnState = counter.track
	srv.Start()
	defer srv.Close()
	for range rounds {
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
				resp, err := client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			})
		}
		wg.Wait()
	}
	return counter.opened.Load(), counter.closed.Load()
}

// TestPoolKeepsConnections: 16 concurrent clients, round after round,
// reuse their connections. A pool keeping fewer idle connections than
// the concurrency closes the surplus after every round (with the SDK's 10
// per host: 6 a round, over a hundred here), each leaving a TIME_WAIT
// socket behind; this one closes none, save a rare one a loaded machine
// loses for reasons of its own, so the bound is one a round.
func TestPoolKeepsConnections(t *testing.T) {
	const rounds = 20
	opened, closed := burst(t, awsclient.HTTPClient(false).Freeze(), rounds)
	if closed >= rounds {
		t.Errorf("%d requests, 16 at a time: %d connections opened, %d closed; want fewer than one closed a round", rounds*16, opened, closed)
	}
	// For comparison (a figure, not an assertion): the SDK's default pool.
	o, c := burst(t, awshttp.NewBuildableClient(), rounds)
	t.Logf("SDK default pool: %d connections opened, %d closed; this pool: %d opened, %d closed", o, c, opened, closed)
}

// TestResponseHeaderTimeout: a server that accepts a request and never
// answers costs ResponseHeaderTimeout, not the whole budget.
func TestResponseHeaderTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	_, err := awsclient.HTTPClient(false).Freeze().Do(req)
	if err == nil || !strings.Contains(err.Error(), "timeout awaiting response headers") {
		t.Fatalf("err = %v, want the response header timeout", err)
	}
}

func TestLocalDefaults(t *testing.T) {
	for _, tt := range []struct {
		name              string
		keyID, profile    string
		region            string
		wantRegion        string
		wantDummy, preset bool
	}{
		{"nothing configured", "", "", "", "us-east-1", true, false},
		{"region kept", "", "", "eu-west-1", "eu-west-1", true, false},
		{"keys in the environment", "AKID", "", "", "us-east-1", false, true},
		{"a profile", "", "dev", "", "us-east-1", false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("AWS_ACCESS_KEY_ID", tt.keyID)
			t.Setenv("AWS_PROFILE", tt.profile)
			region := tt.region
			var creds aws.CredentialsProvider = aws.AnonymousCredentials{}
			awsclient.LocalDefaults(&region, &creds)
			if region != tt.wantRegion {
				t.Errorf("region %q, want %q", region, tt.wantRegion)
			}
			_, kept := creds.(aws.AnonymousCredentials)
			if kept != tt.preset {
				t.Errorf("credentials %T: kept %v, want %v", creds, kept, tt.preset)
			}
			if tt.wantDummy {
				v, err := creds.Retrieve(context.Background())
				if err != nil || v.AccessKeyID != "local" {
					t.Errorf("dummy credentials %v, %v", v.AccessKeyID, err)
				}
			}
		})
	}
}
