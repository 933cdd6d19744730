package faultproxy_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stampede-cache/stampede/internal/faultproxy"
)

// upstream is a loopback HTTP server that counts the requests it sees and
// echoes their bodies.
type upstream struct {
	*httptest.Server
	seen atomic.Int64
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.seen.Add(1)
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		_, _ = w.Write(append([]byte("echo:"), body...))
	}))
	t.Cleanup(u.Close)
	return u
}

// waitSeen waits (generously) until the upstream has seen n requests.
func (u *upstream) waitSeen(t *testing.T, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for u.seen.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("upstream saw %d requests, want %d", u.seen.Load(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func start(t *testing.T, target string, opts faultproxy.Options) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.Start(target, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// post sends one DynamoDB-like POST through the proxy within timeout.
func post(client *http.Client, url, body string, timeout time.Duration) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("X-Amz-Target", "DynamoDB_20120810.UpdateItem")
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// only faults the first request and passes the rest through.
func only(f faultproxy.Fault) faultproxy.Rules {
	return faultproxy.Rules{Request: func(r faultproxy.Request) faultproxy.Fault {
		if r.Seq == 0 {
			return f
		}
		return faultproxy.Fault{}
	}}
}

func TestRequestFaults(t *testing.T) {
	// "Silent" faults are shown by a client deadline passing; the deadline
	// only bounds the wait, the proxy never answers them.
	const silent = 300 * time.Millisecond
	tests := []struct {
		name      string
		fault     faultproxy.Fault
		timeout   time.Duration
		status    int
		body      string
		wantErr   func(error) bool
		forwarded int64
	}{
		{name: "none", timeout: 10 * time.Second, status: 200, body: "echo:x", forwarded: 1},
		{name: "drop response", fault: faultproxy.Fault{Kind: faultproxy.DropResponse}, timeout: 10 * time.Second,
			wantErr: func(err error) bool {
				return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "EOF")
			}, forwarded: 1},
		{name: "hang response", fault: faultproxy.Fault{Kind: faultproxy.HangResponse}, timeout: silent,
			wantErr: isDeadline, forwarded: 1},
		{name: "delay past the deadline", fault: faultproxy.Fault{Kind: faultproxy.Delay, Delay: time.Second}, timeout: silent,
			wantErr: isDeadline, forwarded: 1},
		{name: "reset", fault: faultproxy.Fault{Kind: faultproxy.Reset}, timeout: 10 * time.Second,
			wantErr: func(err error) bool { return errors.Is(err, syscall.ECONNRESET) }},
		{name: "blackhole", fault: faultproxy.Fault{Kind: faultproxy.Blackhole}, timeout: silent, wantErr: isDeadline},
		{name: "respond 502", fault: faultproxy.HTTPError(502), timeout: 10 * time.Second, status: 502, body: "{}"},
		{name: "respond 500 after the request took effect", fault: faultproxy.DynamoDBError(500, "InternalServerError", "boom", true),
			timeout: 10 * time.Second, status: 500, body: `{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"boom"}`, forwarded: 1},
		{name: "throttle", fault: faultproxy.Throttle(), timeout: 10 * time.Second, status: 400,
			body: `{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded."}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newUpstream(t)
			var forwarded, served atomic.Int64
			p := start(t, up.URL, faultproxy.Options{
				OnForward: func(faultproxy.Request) { forwarded.Add(1) },
				OnServed: func(_ faultproxy.Request, status int) {
					if status == http.StatusOK {
						served.Add(1)
					}
				},
			})
			p.SetRules(only(tt.fault))
			client := &http.Client{Transport: &http.Transport{}}
			defer client.CloseIdleConnections()

			status, body, err := post(client, p.URL(), "x", tt.timeout)
			switch {
			case tt.wantErr != nil && (err == nil || !tt.wantErr(err)):
				t.Fatalf("got status %d body %q err %v; want a %s failure", status, body, err, tt.name)
			case tt.wantErr == nil && err != nil:
				t.Fatalf("got err %v; want status %d", err, tt.status)
			case tt.wantErr == nil && (status != tt.status || body != tt.body):
				t.Fatalf("got %d %q; want %d %q", status, body, tt.status, tt.body)
			}
			if tt.forwarded > 0 {
				// A delayed request reaches the server after the client gave up.
				up.waitSeen(t, tt.forwarded)
			}
			// The proxy keeps serving: the next request passes through.
			status, body, err = post(client, p.URL(), "y", 10*time.Second)
			if err != nil || status != 200 || body != "echo:y" {
				t.Fatalf("after the fault: got %d %q %v; want 200 echo:y", status, body, err)
			}
			if got := up.seen.Load(); got != tt.forwarded+1 {
				t.Errorf("upstream saw %d requests, want %d", got, tt.forwarded+1)
			}
			st := p.Stats()
			switch {
			case tt.fault.Kind == faultproxy.None && st.Total() != 0:
				t.Errorf("stats %v: want no faults", st)
			case tt.fault.Kind != faultproxy.None && (st.Total() != 1 || st.Injected[tt.fault.Label()] != 1):
				t.Errorf("stats %v: want one %s", st, tt.fault.Label())
			}
			if st.Requests != 2 || st.Forwarded != tt.forwarded+1 {
				t.Errorf("stats %v: want 2 requests, %d forwarded", st, tt.forwarded+1)
			}
			// A delayed request's answer may still be on its way back.
			for deadline := time.Now().Add(10 * time.Second); served.Load() < tt.forwarded+1 && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
			if forwarded.Load() != tt.forwarded+1 || served.Load() != tt.forwarded+1 {
				t.Errorf("OnForward saw %d requests, OnServed %d; want %d each", forwarded.Load(), served.Load(), tt.forwarded+1)
			}
		})
	}
}

func isDeadline(err error) bool { return errors.Is(err, context.DeadlineExceeded) }

func TestDelayedRequestIsAnsweredWhenTheClientWaits(t *testing.T) {
	up := newUpstream(t)
	p := start(t, up.URL, faultproxy.Options{})
	const delay = 200 * time.Millisecond
	p.SetRules(only(faultproxy.Fault{Kind: faultproxy.Delay, Delay: delay}))
	begin := time.Now()
	status, body, err := post(http.DefaultClient, p.URL(), "slow", 30*time.Second)
	if err != nil || status != 200 || body != "echo:slow" {
		t.Fatalf("got %d %q %v; want 200 echo:slow", status, body, err)
	}
	// A lower bound only: the proxy held the request at least this long.
	if took := time.Since(begin); took < delay {
		t.Errorf("answered after %s, before the %s delay", took, delay)
	}
}

func TestConnectionFaults(t *testing.T) {
	tests := []struct {
		name    string
		fault   faultproxy.Fault
		timeout time.Duration
		wantErr func(error) bool
	}{
		{"reset at accept", faultproxy.Fault{Kind: faultproxy.Reset}, 10 * time.Second,
			func(err error) bool {
				return errors.Is(err, syscall.ECONNRESET) || strings.Contains(err.Error(), "EOF")
			}},
		{"blackhole at accept", faultproxy.Fault{Kind: faultproxy.Blackhole}, 300 * time.Millisecond, isDeadline},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newUpstream(t)
			p := start(t, up.URL, faultproxy.Options{})
			p.SetRules(faultproxy.Rules{Conn: func(n int64) faultproxy.Fault {
				if n == 0 {
					return tt.fault
				}
				return faultproxy.Fault{}
			}})
			client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			if _, _, err := post(client, p.URL(), "x", tt.timeout); err == nil || !tt.wantErr(err) {
				t.Fatalf("got err %v; want a %s failure", err, tt.name)
			}
			if status, _, err := post(client, p.URL(), "y", 10*time.Second); err != nil || status != 200 {
				t.Fatalf("second connection: got %d %v; want 200", status, err)
			}
			if up.seen.Load() != 1 {
				t.Errorf("upstream saw %d requests, want 1", up.seen.Load())
			}
		})
	}
}

func TestRulesSeeTheRequest(t *testing.T) {
	up := newUpstream(t)
	p := start(t, up.URL, faultproxy.Options{})
	seen := make(chan faultproxy.Request, 4)
	p.SetRules(faultproxy.Rules{Request: func(r faultproxy.Request) faultproxy.Fault {
		seen <- r
		return faultproxy.Fault{}
	}})
	client := &http.Client{Transport: &http.Transport{}}
	for i := 0; i < 2; i++ {
		if _, _, err := post(client, p.URL()+"/path", "x", 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	for i := int64(0); i < 2; i++ {
		r := <-seen
		if r.Seq != i || r.Conn != 0 || r.Method != "POST" || r.Path != "/path" || r.Header.Get("X-Amz-Target") != "DynamoDB_20120810.UpdateItem" {
			t.Errorf("request %d: got %+v", i, r)
		}
	}
}

func TestRandomIsAFunctionOfTheSeed(t *testing.T) {
	faults := []faultproxy.Fault{{Kind: faultproxy.DropResponse}, {Kind: faultproxy.Reset}, faultproxy.HTTPError(504)}
	sequence := func(seed uint64) []string {
		r := faultproxy.Random(seed, 0.1, faults...)
		out := make([]string, 1000)
		for i := range out {
			out[i] = r.Request(faultproxy.Request{Seq: int64(i)}).String()
		}
		return out
	}
	a, b, c := sequence(7), sequence(7), sequence(8)
	faulted, differs := 0, false
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("seed 7, request %d: %s then %s", i, a[i], b[i])
		}
		if a[i] != "none" {
			faulted++
		}
		differs = differs || a[i] != c[i]
	}
	if !differs {
		t.Error("seeds 7 and 8 gave the same faults")
	}
	// Seed 7 is fixed, so this count is too; it just has to be near 10%.
	if faulted < 50 || faulted > 150 {
		t.Errorf("%d of 1000 requests faulted at rate 0.1", faulted)
	}
	if r := faultproxy.Random(7, 0, faults...); r.Request != nil {
		t.Error("rate 0 should inject nothing")
	}
}

func TestMaxFaultsBoundsInjection(t *testing.T) {
	up := newUpstream(t)
	p := start(t, up.URL, faultproxy.Options{MaxFaults: 2})
	p.SetRules(faultproxy.Rules{Request: func(faultproxy.Request) faultproxy.Fault { return faultproxy.HTTPError(502) }})
	client := &http.Client{Transport: &http.Transport{}}
	var statuses []int
	for i := 0; i < 4; i++ {
		status, _, err := post(client, p.URL(), "x", 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		statuses = append(statuses, status)
	}
	if want := []int{502, 502, 200, 200}; !equalInts(statuses, want) {
		t.Errorf("statuses %v, want %v", statuses, want)
	}
	if st := p.Stats(); st.Total() != 2 || st.Injected["respond-502"] != 2 {
		t.Errorf("stats %v, want two respond-502", st)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestCloseReleasesHeldRequests(t *testing.T) {
	up := newUpstream(t)
	p, err := faultproxy.Start(up.URL, faultproxy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p.SetRules(faultproxy.Rules{Request: func(r faultproxy.Request) faultproxy.Fault {
		if r.Seq%2 == 0 {
			return faultproxy.Fault{Kind: faultproxy.Blackhole}
		}
		return faultproxy.Fault{Kind: faultproxy.Delay, Delay: time.Hour}
	}})
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	errs := make(chan error, 2)
	for i := 0; i < 2; i++ {
		go func() {
			_, _, err := post(client, p.URL(), "x", time.Hour)
			errs <- err
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for p.Stats().Requests < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the requests never reached the proxy")
		}
		time.Sleep(10 * time.Millisecond)
	}
	closed := make(chan struct{})
	go func() {
		_ = p.Close()
		close(closed)
	}()
	for i := 0; i < 2; i++ {
		select {
		case err := <-errs:
			if err == nil {
				t.Error("a held request was answered")
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Close left a request held")
		}
	}
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return")
	}
	if up.seen.Load() != 0 {
		t.Errorf("upstream saw %d requests, want 0", up.seen.Load())
	}
	if _, err := net.DialTimeout("tcp", strings.TrimPrefix(p.URL(), "http://"), time.Second); err == nil {
		t.Error("the proxy still accepts connections after Close")
	}
}

func TestOnlyLoopbackTargets(t *testing.T) {
	for _, target := range []string{"10.0.0.1:8000", "http://example.com:80", "https://127.0.0.1:8000", "127.0.0.1", "http://[::2]:80"} {
		if p, err := faultproxy.Start(target, faultproxy.Options{}); err == nil {
			_ = p.Close()
			t.Errorf("Start(%q) succeeded; want a refusal", target)
		}
	}
	for _, target := range []string{"127.0.0.1:1", "http://localhost:8000", "http://[::1]:8000"} {
		p, err := faultproxy.Start(target, faultproxy.Options{})
		if err != nil {
			t.Errorf("Start(%q): %v", target, err)
			continue
		}
		_ = p.Close()
	}
}
