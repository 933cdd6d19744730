package dynamolocal

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestStartTimeout(t *testing.T) {
	for _, tt := range []struct {
		arg     time.Duration
		env     string
		want    time.Duration
		wantErr bool
	}{
		{0, "", DefaultStartTimeout, false},
		{time.Second, "5m", time.Second, false},
		{0, "5m", 5 * time.Minute, false},
		{0, "300s", 300 * time.Second, false},
		{0, "soon", 0, true},
		{0, "-1s", 0, true},
		{0, "0s", 0, true},
	} {
		t.Setenv(StartTimeoutEnv, tt.env)
		got, err := StartTimeout(tt.arg)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("StartTimeout(%v) with %s=%q = %v, %v; want %v (error: %v)", tt.arg, StartTimeoutEnv, tt.env, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestCandidatePort(t *testing.T) {
	for range 20 {
		port, err := candidatePort()
		if err != nil {
			t.Fatal(err)
		}
		if port < minPort || port >= maxPort {
			t.Fatalf("port %d outside [%d, %d)", port, minPort, maxPort)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if free(l.Addr().(*net.TCPAddr).Port) {
		t.Errorf("port %s is in use, free says it is free", l.Addr())
	}
}

func TestTail(t *testing.T) {
	tl := &tail{max: 8}
	for _, s := range []string{"abc", "defgh", "ijklmnopq"} {
		_, _ = io.WriteString(tl, s)
	}
	if got := tl.String(); got != "jklmnopq" {
		t.Errorf("tail = %q", got)
	}
}

// locate returns DynamoDB Local's directory, or skips the test when Java
// or DynamoDB Local is missing.
func locate(t *testing.T) string {
	t.Helper()
	dir, err := Locate(context.Background())
	if err != nil {
		t.Skipf("DynamoDB Local unavailable: %v", err)
	}
	return dir
}

func TestStartAndStop(t *testing.T) {
	inst, err := Start(context.Background(), Options{Dir: locate(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Stop()
	resp, err := http.Get(inst.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if mine, err := listens(inst.cmd.Process.Pid, inst.port); err != nil || !mine {
		t.Errorf("listens(DynamoDB Local) = %v, %v", mine, err)
	}
	inst.Stop()
	select {
	case <-inst.done:
	default:
		t.Fatal("Stop returned before the process exited")
	}
	if resp, err := http.Get(inst.Endpoint); err == nil {
		resp.Body.Close()
		t.Errorf("%s still answers after Stop", inst.Endpoint)
	}
}

// TestStartOnATakenPort: another server on the port answers HTTP, but the
// instance is not ready because of it: DynamoDB Local fails to bind and
// start reports the port taken, so that Start tries another.
func TestStartOnATakenPort(t *testing.T) {
	dir := locate(t)
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	port := l.Addr().(*net.TCPAddr).Port
	ctx, cancel := context.WithTimeout(context.Background(), DefaultStartTimeout)
	defer cancel()
	inst, err := start(ctx, Options{Dir: dir}, port)
	if err == nil {
		inst.Stop()
		t.Fatalf("started on port %d, which another server holds", port)
	}
	if !errors.Is(err, errPortTaken) {
		t.Fatalf("err = %v, want a taken port", err)
	}
}

func TestStartWithATooShortBudget(t *testing.T) {
	dir := locate(t)
	begin := time.Now()
	_, err := Start(context.Background(), Options{Dir: dir, StartTimeout: time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), StartTimeoutEnv) {
		t.Fatalf("err = %v, want a timeout naming %s", err, StartTimeoutEnv)
	}
	if elapsed := time.Since(begin); elapsed > time.Minute {
		t.Errorf("gave up after %v", elapsed)
	}
}

func TestListens(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	if ok, err := listens(os.Getpid(), port); err != nil || !ok {
		t.Errorf("listens(self, %d) = %v, %v; want true", port, ok, err)
	}
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	otherPort := other.Addr().(*net.TCPAddr).Port
	other.Close()
	if ok, _ := listens(os.Getpid(), otherPort); ok {
		t.Errorf("listens(self, %d) = true for a closed listener", otherPort)
	}
	conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A connected socket's local port is not a listening one.
	local := conn.LocalAddr().(*net.TCPAddr).Port
	if ok, _ := listens(os.Getpid(), local); ok {
		t.Errorf("listens(self, %d) = true for a connection's port", local)
	}
}
