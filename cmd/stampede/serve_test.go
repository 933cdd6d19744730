package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stampede-cache/stampede/internal/manager"
	"github.com/stampede-cache/stampede/internal/testenv"
	"github.com/stampede-cache/stampede/internal/transport"
)

// TestServeLifecycle runs the real binary: it starts DynamoDB Local, serves
// the API, stops both on SIGTERM, and keeps data across a restart.
func TestServeLifecycle(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "stampede")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	dataDir := t.TempDir()

	base, health, stop := startServer(t, bin, dataDir, nil)
	for _, name := range []string{"version", "started_at", "uptime_seconds", "request_timeout_ms"} {
		if _, ok := health[name]; !ok {
			t.Errorf("healthz lacks %s: %v", name, health)
		}
	}
	put := request(t, "PUT", base+"/v1/projects/ml/domains/dev/cache/models%2Fresnet", `{"output_uri":"s3://bucket/resnet"}`)
	if put.StatusCode != 201 {
		t.Fatalf("put: %d", put.StatusCode)
	}
	if code := stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d", code)
	}
	// DynamoDB Local went down with the server.
	if resp, err := http.Get(health["dynamodb_endpoint"].(string)); err == nil {
		resp.Body.Close()
		t.Fatalf("DynamoDB Local still answers at %s", health["dynamodb_endpoint"])
	}

	base, _, stop = startServer(t, bin, dataDir, nil)
	get := request(t, "GET", base+"/v1/projects/ml/domains/dev/cache/models/resnet", "")
	body, _ := io.ReadAll(get.Body)
	if get.StatusCode != 200 || !strings.Contains(string(body), `"output_uri":"s3://bucket/resnet"`) {
		t.Fatalf("after restart: %d %s", get.StatusCode, body)
	}
	if code := stop(syscall.SIGINT); code != 0 {
		t.Fatalf("exit code after SIGINT = %d", code)
	}
}

// TestServeAgainstARunningDynamoDB: with STAMPEDE_DYNAMODB_ENDPOINT the
// server uses that engine (as it would LocalStack) and leaves it running.
func TestServeAgainstARunningDynamoDB(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "stampede")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	endpoint := testenv.Endpoint(t)
	table := fmt.Sprintf("serve-external-%d", time.Now().UnixNano())
	// A data directory that does not exist yet: serve creates it.
	dataDir := filepath.Join(t.TempDir(), "not", "yet")
	base, health, stop := startServer(t, bin, dataDir, []string{"STAMPEDE_DYNAMODB_ENDPOINT=" + endpoint, "STAMPEDE_TABLE=" + table,
		"STAMPEDE_REQUEST_TIMEOUT=2s"})
	if health["dynamodb_endpoint"] != endpoint || health["table"] != table || health["request_timeout_ms"] != 2000.0 {
		t.Fatalf("healthz: %v", health)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "s3.db")); err != nil {
		t.Errorf("the data directory was not created: %v", err)
	}
	if put := request(t, "PUT", base+"/v1/projects/ml/domains/dev/cache/k", `{"output_uri":"s3://bucket/k"}`); put.StatusCode != 201 {
		t.Fatalf("put: %d", put.StatusCode)
	}
	if code := stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	resp, err := http.Get(endpoint)
	if err != nil {
		t.Fatalf("the external DynamoDB was stopped: %v", err)
	}
	resp.Body.Close()
}

func startServer(t *testing.T, bin, dataDir string, env []string) (string, map[string]any, func(os.Signal) int) {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir, "--ready-file", ready)
	cmd.Env = append(append(os.Environ(), "STAMPEDE_DYNAMODB_ENDPOINT=", "AWS_ENDPOINT_URL_DYNAMODB="), env...)
	logs := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	deadline := time.Now().Add(90 * time.Second)
	var addr []byte
	for {
		var err error
		if addr, err = os.ReadFile(ready); err == nil && len(addr) > 0 {
			break
		}
		select {
		case <-done:
			t.Fatalf("server exited early:\n%s", logs)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready:\n%s", logs)
		}
	}
	base := "http://" + string(addr)
	resp := request(t, "GET", base+"/healthz", "")
	var health map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&health); err != nil || resp.StatusCode != 200 || health["status"] != "ok" || health["s3_endpoint"] == "" {
		t.Fatalf("healthz: %d %v %v", resp.StatusCode, health, err)
	}
	stop := func(sig os.Signal) int {
		_ = cmd.Process.Signal(sig)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("server did not stop on %v:\n%s", sig, logs)
		}
		if !strings.Contains(logs.String(), "shutting down") {
			t.Errorf("no orderly shutdown in logs:\n%s", logs)
		}
		return cmd.ProcessState.ExitCode()
	}
	return base, health, stop
}

func request(t *testing.T, method, url, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// TestServeFailsAtOnceOnABusyPort: the address is bound before anything
// starts, so a busy port fails before DynamoDB Local is located or started.
func TestServeFailsAtOnceOnABusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr syncBuffer
	code := testApp(&stdout, &stderr, map[string]string{"STAMPEDE_DYNAMODB_ENDPOINT": "", "AWS_ENDPOINT_URL_DYNAMODB": ""}).
		execute(ctx, []string{"serve", "--addr", ln.Addr().String(), "--data-dir", t.TempDir()})
	if code != exitFailure || !strings.Contains(stderr.String(), "listen on "+ln.Addr().String()) || strings.Contains(stderr.String(), "DynamoDB Local") {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
}

// TestServeClosesSlowClients: connections that send their headers or body
// too slowly are closed by the server's read timeouts (shortened here), so
// they cannot pile up.
func TestServeClosesSlowClients(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := filepath.Join(t.TempDir(), "ready")
	opts := serveOptions{
		addr:           "127.0.0.1:0",
		dataDir:        t.TempDir(),
		dynamoEndpoint: testenv.Endpoint(t),
		table:          fmt.Sprintf("serve-slow-%d", time.Now().UnixNano()),
		readyFile:      ready,
		timeouts:       serverTimeouts{readHeader: time.Second, read: 2 * time.Second},
	}
	done := make(chan error, 1)
	go func() { done <- serve(ctx, opts, slog.New(slog.DiscardHandler)) }()
	var addr string
	waitFor(ctx, t, "the server ready", func() bool {
		data, err := os.ReadFile(ready)
		addr = string(data)
		return err == nil && addr != ""
	})

	const slowBodies, slowHeaders = 50, 10
	conns := make([]net.Conn, 0, slowBodies+slowHeaders)
	for i := range slowBodies + slowHeaders {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		msg := "PUT /v1/projects/p/domains/d/cache/k HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"
		if i >= slowBodies {
			msg = "GET /healthz HTTP/1.1\r\nHost: x\r\n" // headers never end
		}
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// Each must be closed by the server (read: EOF or reset) well within
	// this generous deadline.
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
		_, err := io.Copy(io.Discard, c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("connection %d still open after 60 s", i)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestServeStarting: until the backends are up every request answers 503
// with Retry-After, and /healthz says "starting".
func TestServeStarting(t *testing.T) {
	h := &switchHandler{health: &health{started: time.Now(), version: readVersion()}}
	for _, tc := range []struct{ method, path, want string }{
		{"GET", "/healthz", `"status":"starting"`},
		{"PUT", "/v1/projects/p/domains/d/cache/k", `"code":"unavailable"`},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, strings.NewReader("{}")))
		if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, rec.Code, rec.Body.String())
		}
		if tc.method == "PUT" && rec.Header().Get("Retry-After") == "" {
			t.Errorf("%s %s: no Retry-After", tc.method, tc.path)
		}
	}
}

// TestServerTimeoutsOutlastRequests: the write timeout outlasts the
// longest a request may take (read, budget, a get's wait).
func TestServerTimeoutsOutlastRequests(t *testing.T) {
	for _, budget := range []time.Duration{minRequestTimeout, transport.DefaultBudget, maxRequestTimeout} {
		to := serverTimeouts{}.withDefaults(budget)
		if longest := to.read + budget + manager.MaxWait; to.write <= longest {
			t.Errorf("budget %s: write timeout %s <= %s", budget, to.write, longest)
		}
		if to.readHeader <= 0 || to.readHeader > to.read || to.idle <= 0 {
			t.Errorf("budget %s: %+v", budget, to)
		}
	}
}
