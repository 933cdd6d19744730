// Command memprobe measures a Lambda function's memory: it serves the
// Lambda runtime API on loopback, runs the function's real bootstrap binary
// against it (as Lambda's provided.al2023 runtime does), feeds it events,
// and reads the process's resident set size from /proc.
//
// It is how the functions' memory size (stack.DefaultMemoryMB) was chosen;
// see docs/deploy.md, "Memory sizing". Typical use, from the repository
// root, with DynamoDB Local listening on 127.0.0.1:8000:
//
//	make build ARCH=x86_64          # binaries for this machine
//	cd infra && go run ./internal/memprobe -build ../build -ddb http://127.0.0.1:8000 -n 500
//
// It creates a fresh table, then runs put, get (hits and misses), reserve,
// release and delete, each with direct (Step Functions) invocations and
// API Gateway HTTP API events, and prints one line per function. Only the
// standard library: the table is created through DynamoDB's JSON API.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	build := flag.String("build", "../build", "folder holding <function>/bootstrap")
	ddb := flag.String("ddb", "http://127.0.0.1:8000", "DynamoDB (Local) endpoint")
	n := flag.Int("n", 500, "requests of each kind per function")
	flag.Parse()
	if err := run(*build, *ddb, *n); err != nil {
		fmt.Fprintln(os.Stderr, "memprobe:", err)
		os.Exit(1)
	}
}

func run(build, ddb string, n int) error {
	table := fmt.Sprintf("memprobe-%d", time.Now().UnixNano())
	if err := createTable(ddb, table); err != nil {
		return err
	}
	env := []string{
		"STAMPEDE_TABLE=" + table,
		"STAMPEDE_DYNAMODB_ENDPOINT=" + ddb,
		"STAMPEDE_HEARTBEAT_MULTIPLIER=3",
		"STAMPEDE_MAX_HEARTBEAT_SECONDS=10",
		"STAMPEDE_LOG_LEVEL=info",
		"AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=local",
		"AWS_SECRET_ACCESS_KEY=local",
	}
	fmt.Printf("%-8s %7s %10s %10s %10s %9s %9s %8s %8s %7s  %s\n", "function", "events", "init RSS", "peak RSS", "final RSS",
		"init CPU", "CPU/req", "p50", "p99", "errors", "outcomes")
	for _, fn := range []string{"put", "get", "reserve", "release", "delete"} {
		events := scenario(fn, n)
		res, err := probe(filepath.Join(build, fn, "bootstrap"), env, events)
		if err != nil {
			return fmt.Errorf("%s: %w", fn, err)
		}
		fmt.Printf("%-8s %7d %6.1f MiB %6.1f MiB %6.1f MiB %6.0f ms %6.2f ms %5.2f ms %5.2f ms %7d  %s\n", fn, len(events),
			mib(res.initRSS), mib(res.peakRSS), mib(res.finalRSS), res.initCPU, (res.totalCPU-res.initCPU)/float64(len(events)),
			res.p(0.50), res.p(0.99), res.errors, res.outcomes)
		if res.errors > 0 {
			fmt.Printf("         first error: %s\n", res.firstError)
		}
	}
	return nil
}

func mib(kb int) float64 { return float64(kb) / 1024 }

// scenario returns the events for one function: half direct invocations,
// half HTTP API (payload 2.0) requests, over n keys.
func scenario(fn string, n int) []json.RawMessage {
	var out []json.RawMessage
	add := func(v any) {
		b, _ := json.Marshal(v)
		out = append(out, b)
	}
	id := func(i int) map[string]any {
		return map[string]any{"project": "memprobe", "domain": "dev", "key": fmt.Sprintf("task/%06d", i)}
	}
	with := func(m map[string]any, kv ...any) map[string]any {
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	httpAPI := func(method, path string, body any, query ...string) map[string]any {
		ev := map[string]any{
			"version":  "2.0",
			"routeKey": method + " " + path,
			"rawPath":  path,
			"headers":  map[string]string{"content-type": "application/json"},
			"requestContext": map[string]any{
				"http":      map[string]any{"method": method, "path": path},
				"requestId": "memprobe",
				"stage":     "$default",
			},
			"isBase64Encoded": false,
		}
		if len(query) == 2 {
			ev["rawQueryString"] = query[0] + "=" + query[1]
			ev["queryStringParameters"] = map[string]string{query[0]: query[1]}
		}
		if body != nil {
			b, _ := json.Marshal(body)
			ev["body"] = string(b)
		}
		return ev
	}
	cache := func(i int) string { return fmt.Sprintf("/v1/projects/memprobe/domains/dev/cache/task/%06d", i) }
	resv := func(i int) string {
		return fmt.Sprintf("/v1/projects/memprobe/domains/dev/reservations/task/%06d", i)
	}
	meta := map[string]any{
		"source": map[string]string{"project": "memprobe", "domain": "dev", "name": "train", "version": strings.Repeat("f", 40)},
		"labels": map[string]string{"producer": "memprobe", "team": "ml"},
	}
	for i := 0; i < n; i++ {
		j := n + i // HTTP requests use their own keys
		switch fn {
		case "put":
			add(with(id(i), "output_uri", fmt.Sprintf("s3://bucket/out/%06d", i), "metadata", meta))
			add(httpAPI("PUT", cache(j), map[string]any{"output_uri": fmt.Sprintf("s3://bucket/out/%06d", j), "metadata": meta}))
		case "get": // hits (put above) and misses
			add(id(i))
			add(httpAPI("GET", cache(j), nil))
			add(id(10*n + i))
		case "reserve":
			add(with(id(i), "owner_id", "memprobe-a", "heartbeat_interval_seconds", 5))
			add(httpAPI("POST", resv(j), map[string]any{"owner_id": "memprobe-b", "heartbeat_interval_seconds": 5}))
		case "release":
			add(with(id(i), "owner_id", "memprobe-a"))
			add(httpAPI("DELETE", resv(j), nil, "owner_id", "memprobe-b"))
		case "delete":
			add(id(i))
			add(httpAPI("DELETE", cache(j), nil))
		}
	}
	return out
}

type result struct {
	initRSS, peakRSS, finalRSS int     // KiB
	initCPU, totalCPU          float64 // ms of user+system CPU (10 ms resolution)
	outcomes                   string  // counts of the request log lines' outcomes
	latencies                  []time.Duration
	errors                     int
	firstError                 string
}

func (r result) p(q float64) float64 {
	if len(r.latencies) == 0 {
		return 0
	}
	l := append([]time.Duration(nil), r.latencies...)
	sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	return float64(l[int(q*float64(len(l)-1))].Microseconds()) / 1000
}

// runtimeAPI serves the Lambda runtime API for one function process.
type runtimeAPI struct {
	events  []json.RawMessage
	mu      sync.Mutex
	next    int
	started time.Time
	res     result
	firstGo chan struct{} // closed at the first /next: init is done
	done    chan struct{} // closed when every event has been answered
	pid     int
}

func (a *runtimeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	const prefix = "/2018-06-01/runtime/"
	path := strings.TrimPrefix(r.URL.Path, prefix)
	switch {
	case r.Method == http.MethodGet && path == "invocation/next":
		a.mu.Lock()
		if a.next == 0 && a.firstGo != nil {
			a.res.initRSS = rss(a.pid, "VmRSS")
			a.res.initCPU = cpuMillis(a.pid)
			close(a.firstGo)
			a.firstGo = nil
		}
		if a.next >= len(a.events) {
			a.mu.Unlock()
			<-r.Context().Done() // no more events: hold the poll until the process is stopped
			return
		}
		ev := a.events[a.next]
		a.next++
		a.started = time.Now()
		a.mu.Unlock()
		h := w.Header()
		h.Set("Lambda-Runtime-Aws-Request-Id", strconv.Itoa(a.next))
		h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(10*time.Second).UnixMilli(), 10))
		h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:memprobe")
		h.Set("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
		w.Header().Set("Content-Type", "application/json")
		w.Write(ev)
	case r.Method == http.MethodPost && strings.HasPrefix(path, "invocation/"):
		body, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		a.res.latencies = append(a.res.latencies, time.Since(a.started))
		failed := strings.HasSuffix(path, "/error") || isServerError(body)
		if failed {
			a.res.errors++
			if a.res.firstError == "" {
				a.res.firstError = string(body)
			}
		}
		if len(a.res.latencies) == len(a.events) {
			close(a.done)
		}
		a.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	case r.Method == http.MethodPost && path == "init/error":
		body, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		a.res.errors++
		a.res.firstError = "init: " + string(body)
		a.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	default:
		http.NotFound(w, r)
	}
}

// isServerError tells an HTTP API response with a 5xx status.
func isServerError(body []byte) bool {
	var resp struct {
		StatusCode int `json:"statusCode"`
	}
	return json.Unmarshal(body, &resp) == nil && resp.StatusCode >= 500
}

func probe(bin string, env []string, events []json.RawMessage) (result, error) {
	if _, err := os.Stat(bin); err != nil {
		return result{}, fmt.Errorf("%w (run make build ARCH=x86_64 first)", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return result{}, err
	}
	api := &runtimeAPI{events: events, firstGo: make(chan struct{}), done: make(chan struct{})}
	first := api.firstGo
	srv := &http.Server{Handler: api}
	go srv.Serve(ln)
	defer srv.Close()

	cmd := exec.Command(bin)
	cmd.Env = append([]string{
		"AWS_LAMBDA_RUNTIME_API=" + ln.Addr().String(),
		"AWS_LAMBDA_FUNCTION_NAME=memprobe",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128",
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		// As Lambda sets them for the stack's functions (JSON log format).
		"AWS_LAMBDA_LOG_FORMAT=JSON",
		"AWS_LAMBDA_LOG_LEVEL=INFO",
		"_HANDLER=bootstrap",
		"PATH=/usr/bin:/bin",
	}, env...)
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	api.mu.Lock()
	if err := cmd.Start(); err != nil {
		api.mu.Unlock()
		return result{}, err
	}
	api.pid = cmd.Process.Pid
	api.mu.Unlock()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() { cmd.Process.Kill(); <-exited }()

	timeout := time.After(time.Duration(len(events))*50*time.Millisecond + 30*time.Second)
	select {
	case <-first:
	case err := <-exited:
		exited <- err
		return result{}, fmt.Errorf("exited before its first request: %v\n%s", err, tail(logs.String()))
	case <-timeout:
		return result{}, errors.New("no request for an event within the time limit")
	}
	select {
	case <-api.done:
	case err := <-exited:
		exited <- err
		return result{}, fmt.Errorf("exited: %v\n%s", err, tail(logs.String()))
	case <-timeout:
		return result{}, errors.New("events not all answered within the time limit")
	}
	time.Sleep(200 * time.Millisecond) // let the last log lines arrive
	api.mu.Lock()
	defer api.mu.Unlock()
	api.res.peakRSS = rss(api.pid, "VmHWM")
	api.res.finalRSS = rss(api.pid, "VmRSS")
	api.res.totalCPU = cpuMillis(api.pid)
	api.res.outcomes = outcomes(logs.String())
	return api.res, nil
}

// syncBuffer collects the function's output, written by exec's copying
// goroutine while the probe reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func tail(s string) string {
	if len(s) > 2000 {
		return s[len(s)-2000:]
	}
	return s
}

// outcomes counts the outcomes of the function's request log lines.
func outcomes(logs string) string {
	counts := map[string]int{}
	for _, line := range strings.Split(logs, "\n") {
		var l struct{ Msg, Message, Outcome string }
		if json.Unmarshal([]byte(line), &l) == nil && (l.Msg == "request" || l.Message == "request") {
			counts[l.Outcome]++
		}
	}
	var out []string
	for k, v := range counts {
		out = append(out, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// cpuMillis reads the process's user and system CPU time from
// /proc/<pid>/stat (clock ticks of 10 ms on Linux).
func cpuMillis(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	return float64(utime+stime) * 10
}

// rss reads a field of /proc/<pid>/status, in KiB.
func rss(pid int, field string) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return kb
		}
	}
	return 0
}

// createTable creates Stampede's table through DynamoDB's JSON API.
// DynamoDB Local does not verify signatures, but wants the header's shape.
func createTable(endpoint, table string) error {
	body := fmt.Sprintf(`{"TableName":%q,"BillingMode":"PAY_PER_REQUEST",
		"AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"},{"AttributeName":"sk","AttributeType":"S"}],
		"KeySchema":[{"AttributeName":"pk","KeyType":"HASH"},{"AttributeName":"sk","KeyType":"RANGE"}]}`, table)
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", "DynamoDB_20120810.CreateTable")
	req.Header.Set("X-Amz-Date", time.Now().UTC().Format("20060102T150405Z"))
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=local/"+time.Now().UTC().Format("20060102")+
		"/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=0")
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("create table on %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("create table: %s: %s", resp.Status, b)
	}
	return nil
}
