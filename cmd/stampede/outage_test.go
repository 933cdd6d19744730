package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stampede-cache/stampede/internal/manager"
	"github.com/stampede-cache/stampede/internal/testenv"
	"github.com/stampede-cache/stampede/internal/transport"
)

// flakyAPI is the local API on a fixed address that a test can take down
// (the listener and every connection closed: clients see connections
// refused, a real outage) and bring back on the same address.
type flakyAPI struct {
	t       *testing.T
	addr    string
	handler http.Handler

	mu  sync.Mutex
	srv *httptest.Server
}

func startFlakyAPI(t *testing.T) *flakyAPI {
	t.Helper()
	store, _ := testenv.Store(t)
	mgr, err := manager.New(store, manager.Config{HeartbeatMultiplier: 3, MaxHeartbeat: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	f := &flakyAPI{t: t, handler: transport.NewRouter(mgr, transport.Options{Log: slog.New(slog.DiscardHandler)})}
	f.up()
	f.addr = f.srv.Listener.Addr().String()
	t.Cleanup(f.down)
	return f
}

func (f *flakyAPI) url() string { return "http://" + f.addr }

// up serves again (on the same address once it has one).
func (f *flakyAPI) up() {
	f.mu.Lock()
	defer f.mu.Unlock()
	srv := httptest.NewUnstartedServer(f.handler)
	if f.addr != "" {
		srv.Listener.Close()
		ln, err := net.Listen("tcp", f.addr)
		if err != nil {
			f.t.Fatalf("listen again on %s: %v", f.addr, err)
		}
		srv.Listener = ln
	}
	srv.Start()
	f.srv = srv
}

// down stops serving: the port refuses connections.
func (f *flakyAPI) down() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.srv != nil {
		f.srv.CloseClientConnections()
		f.srv.Close()
		f.srv = nil
	}
}

// waitFor polls until cond holds or the context ends.
func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool, out ...*syncBuffer) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			var s []string
			for _, b := range out {
				s = append(s, b.String())
			}
			t.Fatalf("%s: not seen before the deadline\n%s", what, strings.Join(s, "\n"))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// runInBackground runs a command line in-process; the returned channel
// yields its exit code.
func runInBackground(ctx context.Context, stdout, stderr *syncBuffer, args ...string) <-chan int {
	done := make(chan int, 1)
	go func() { done <- testApp(stdout, stderr, nil).execute(ctx, args) }()
	return done
}

// outageScript is a command that says it runs (touches $READY), then
// finishes when the test creates $GO, naming its output.
const outageScript = `touch "$READY"; while [ ! -e "$GO" ]; do sleep 0.05; done; echo "$OUT" > "$STAMPEDE_OUTPUT_URI_FILE"`

// TestRunStoresThroughOutage: the service goes away while the command
// runs and stays away after it finished, for longer than the reservation
// lives; run keeps the result, stores it once the service is back, and
// exits 0. Every failure message names the endpoint.
func TestRunStoresThroughOutage(t *testing.T) {
	t.Parallel()
	api := startFlakyAPI(t)
	dir := t.TempDir()
	ready, goFile := filepath.Join(dir, "ready"), filepath.Join(dir, "go")
	script := []string{"env", "READY=" + ready, "GO=" + goFile, "OUT=s3://stampede-outputs/proj/dev/outage/1", "sh", "-c", outageScript}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	var stdout, stderr syncBuffer
	args := []string{"run", "--endpoint", api.url(), "--project", "proj", "--domain", "dev",
		"--key", "outage/1", "--owner", "w", "--heartbeat", "1s", "--store-timeout", "2m", "--"}
	done := runInBackground(ctx, &stdout, &stderr, append(args, script...)...)
	waitFor(ctx, t, "the command running", func() bool { return fileExists(ready) }, &stderr)

	api.down()
	outageStart := time.Now()
	waitFor(ctx, t, "a failed heartbeat", func() bool { return strings.Contains(stderr.String(), "heartbeat failed") }, &stderr)
	if err := os.WriteFile(goFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "a failed store", func() bool { return strings.Contains(stderr.String(), "could not store") }, &stderr)
	// Longer than the reservation lives (heartbeat 1 s × 3): it lapses.
	time.Sleep(5 * time.Second)
	api.up()
	outage := time.Since(outageStart)

	var code int
	select {
	case code = <-done:
	case <-ctx.Done():
		t.Fatalf("run did not finish\n%s", stderr.String())
	}
	if code != exitOK || !strings.Contains(stdout.String(), "s3://stampede-outputs/proj/dev/outage/1") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if strings.Contains(line, "failed") || strings.Contains(line, "could not") {
			if !strings.Contains(line, api.url()) {
				t.Errorf("a failure line does not name the endpoint %s: %q", api.url(), line)
			}
		}
	}
	if !strings.Contains(stderr.String(), `stored "outage/1"`) {
		t.Errorf("no stored line:\n%s", stderr.String())
	}
	if code, out, errOut := runCLI(ctx, nil, "get", "--endpoint", api.url(), "--project", "proj", "--domain", "dev", "-o", "uri", "outage/1"); code != 0 || out != "s3://stampede-outputs/proj/dev/outage/1\n" {
		t.Fatalf("get after the outage: exit %d %q %s", code, out, errOut)
	}
	t.Logf("stderr:\n%s", stderr.String())
	t.Logf("the result survived an outage of %s (from the command's last seconds to the store)", outage.Round(100*time.Millisecond))
}

// TestRunNotStoredPrintsPutCommand: when the service stays away past
// --store-timeout, run prints the output URI and a put command, exits 6,
// and that command, run as printed once the service is back, records the
// result.
func TestRunNotStoredPrintsPutCommand(t *testing.T) {
	t.Parallel()
	api := startFlakyAPI(t)
	dir := t.TempDir()
	ready, goFile := filepath.Join(dir, "ready"), filepath.Join(dir, "go")
	script := []string{"env", "READY=" + ready, "GO=" + goFile, "OUT=s3://stampede-outputs/proj/dev/lost/1", "sh", "-c", outageScript}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	var stdout, stderr syncBuffer
	args := []string{"run", "--endpoint", api.url(), "--project", "proj", "--domain", "dev",
		"--key", "lost/1 with space", "--label", "team=ml", "--ttl", "24h", "--heartbeat", "1s", "--store-timeout", "3s", "--"}
	done := runInBackground(ctx, &stdout, &stderr, append(args, script...)...)
	waitFor(ctx, t, "the command running", func() bool { return fileExists(ready) }, &stderr)
	api.down()
	if err := os.WriteFile(goFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var code int
	select {
	case code = <-done:
	case <-ctx.Done():
		t.Fatalf("run did not finish\n%s", stderr.String())
	}
	if code != exitNotStored || stdout.String() != "output_uri  s3://stampede-outputs/proj/dev/lost/1\nstored      false\n" {
		t.Fatalf("exit %d (want %d)\nstdout:\n%s\nstderr:\n%s", code, exitNotStored, stdout.String(), stderr.String())
	}
	_, cmdLine, ok := strings.Cut(stderr.String(), "to record it, run:\n  ")
	if !ok {
		t.Fatalf("no put command:\n%s", stderr.String())
	}
	cmdLine = strings.TrimSpace(cmdLine)
	if !strings.HasPrefix(cmdLine, "stampede put ") || !strings.Contains(stderr.String(), "gave up after 3s (--store-timeout)") ||
		!strings.Contains(stderr.String(), "cannot reach "+api.url()) {
		t.Fatalf("stderr:\n%s", stderr.String())
	}

	t.Logf("stderr:\n%s", stderr.String())
	api.up()
	words := shellWords(t, cmdLine)
	if code, out, errOut := runCLI(ctx, nil, append([]string{words[1], "-o", "result"}, words[2:]...)...); code != 0 || out != "created\n" {
		t.Fatalf("%s: exit %d\n%s%s", cmdLine, code, out, errOut)
	}
	code, out, errOut := runCLI(ctx, nil, "run", "--endpoint", api.url(), "--project", "proj", "--domain", "dev",
		"--key", "lost/1 with space", "-o", "json", "--", "sh", "-c", "echo must not run; exit 1")
	for _, want := range []string{`"output_uri":"s3://stampede-outputs/proj/dev/lost/1"`, `"labels":{"team":"ml"}`, `"expires_at"`} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("run after the put: exit %d, stdout lacks %s\n%s%s", code, want, out, errOut)
		}
	}
}

// shellWords splits a command line as the shell does.
func shellWords(t *testing.T, line string) []string {
	t.Helper()
	out, err := exec.Command("bash", "-c", `for w in `+line+`; do printf '%s\0' "$w"; done`).Output()
	if err != nil {
		t.Fatalf("split %q: %v", line, err)
	}
	return strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
}
