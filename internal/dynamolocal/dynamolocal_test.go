package dynamolocal

import (
	"context"
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

// TestStartWhenThePortIsTaken: the first port Start tries is held by a
// server that answers HTTP. DynamoDB Local is not taken for ready because
// of it: it fails to bind, and Start starts it again on another port.
func TestStartWhenThePortIsTaken(t *testing.T) {
	dir := locate(t)
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	squatter := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), ReadHeaderTimeout: time.Second}
	go func() { _ = squatter.Serve(l) }()
	defer squatter.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	var tried []int
	pick := func() (int, error) {
		port, err := taken, error(nil)
		if len(tried) > 0 {
			port, err = candidatePort()
		}
		tried = append(tried, port)
		return port, err
	}

	inst, err := startPicking(context.Background(), Options{Dir: dir, FastStart: true}, pick)
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Stop()
	if len(tried) != 2 || inst.port != tried[1] || inst.Endpoint != "http://127.0.0.1:"+strconv.Itoa(tried[1]) {
		t.Fatalf("ports tried %v, instance on %d (%s): want the taken one, then another", tried, inst.port, inst.Endpoint)
	}
	if mine, err := listens(inst.cmd.Process.Pid, inst.port); err != nil || !mine {
		t.Errorf("listens(DynamoDB Local) = %v, %v", mine, err)
	}
	resp, err := http.Post(inst.Endpoint, "application/x-amz-json-1.0", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

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

func TestJavaArgs(t *testing.T) {
	fast := []string{"-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"}
	for _, tt := range []struct {
		name     string
		opts     Options
		env      string
		wantFast bool
		tail     []string
	}{
		{"in memory", Options{Dir: "/d"}, "", false, []string{"-inMemory"}},
		{"on disk", Options{Dir: "/d", DataDir: "/data"}, "", false, []string{"-dbPath", "/data"}},
		{"fast start", Options{Dir: "/d", FastStart: true}, "", true, []string{"-inMemory"}},
		{"fast start from the environment", Options{Dir: "/d", DataDir: "/data"}, "1", true, []string{"-dbPath", "/data"}},
		{"environment not 1", Options{Dir: "/d"}, "yes", false, []string{"-inMemory"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(FastStartEnv, tt.env)
			args := javaArgs(tt.opts, 12345)
			joined := strings.Join(args, " ")
			if got := strings.HasPrefix(joined, strings.Join(fast, " ")); got != tt.wantFast {
				t.Errorf("fast start %v, want %v: %s", got, tt.wantFast, joined)
			}
			if !strings.HasSuffix(joined, strings.Join(tt.tail, " ")) ||
				!strings.Contains(joined, "-jar /d/DynamoDBLocal.jar -port 12345 -sharedDb") {
				t.Errorf("args %s", joined)
			}
		})
	}
}
