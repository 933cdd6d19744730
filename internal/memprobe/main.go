// Command memprobe measures a Lambda function's memory, CPU and init time:
// it runs the function's real bootstrap binary under a local Lambda
// Runtime API (internal/lambdaharness, as Lambda's provided.al2023 runtime
// would), feeds it events, and reads the process's resident set size and
// CPU time from /proc.
//
// It is how the functions' memory size (stack.DefaultMemoryMB in infra/)
// was chosen; see docs/deploy.md, "Memory sizing". `make measure-memory`
// builds the functions for this machine and runs it with DynamoDB Local:
//
//	make measure-memory            # N=1000 requests of each kind
//	go run ./internal/dynamolocal/cmd/withdynamodb -- \
//	    go run ./internal/memprobe -build build/host -n 500
//
// It creates a fresh table (with the store's own dynamostore.EnsureTable),
// then runs put, get (hits and misses), reserve, release and delete, each
// with direct (Step Functions) invocations and API Gateway HTTP API
// events, and prints one line per function.
//
// With -inits K it only starts each binary K times and prints its init
// times (process start to the first request for an event), for any Lambda
// binaries laid out as <folder>/bootstrap (-functions names the folders):
//
//	go run ./internal/memprobe -build build/host -inits 30 [-ca-bundle /etc/ssl/certs/ca-certificates.crt]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/stampede-cache/stampede/internal/awsclient"
	"github.com/stampede-cache/stampede/internal/contract"
	"github.com/stampede-cache/stampede/internal/dynamolocal"
	"github.com/stampede-cache/stampede/internal/dynamostore"
	"github.com/stampede-cache/stampede/internal/lambdaharness"
)

func main() {
	build := flag.String("build", "build/host", "folder holding <function>/bootstrap, built for this machine")
	ddb := flag.String("ddb", os.Getenv(dynamolocal.EndpointEnv), "DynamoDB (Local) endpoint (default $"+dynamolocal.EndpointEnv+")")
	n := flag.Int("n", 500, "requests of each kind per function")
	caBundle := flag.String("ca-bundle", "", "run the functions with AWS_CA_BUNDLE set to this PEM file (its cost shows in the init time)")
	inits := flag.Int("inits", 0, "instead of the requests, start each binary this many times and report its init time (start to the first request for an event)")
	functions := flag.String("functions", "put,get,reserve,release,delete", "comma-separated folders of -build to run; with -inits, any Lambda binary")
	flag.Parse()
	if *ddb == "" && *inits == 0 {
		fmt.Fprintln(os.Stderr, "memprobe: no DynamoDB endpoint: pass -ddb or run under internal/dynamolocal/cmd/withdynamodb")
		os.Exit(2)
	}
	env := []string{
		contract.EnvDynamoDBEndpoint + "=" + *ddb,
		contract.EnvHeartbeatMultiplier + "=3",
		contract.EnvMaxHeartbeatSeconds + "=10",
		contract.EnvLogLevel + "=info",
	}
	if *caBundle != "" {
		env = append(env, "AWS_CA_BUNDLE="+*caBundle)
	}
	fns := strings.Split(*functions, ",")
	var err error
	if *inits > 0 {
		err = measureInit(*build, fns, append(env, contract.EnvTable+"=memprobe"), *inits)
	} else {
		err = run(*build, *ddb, fns, env, *n)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "memprobe:", err)
		os.Exit(1)
	}
}

func run(build, ddb string, fns, env []string, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	table := fmt.Sprintf("memprobe-%d", time.Now().UnixNano())
	awsCfg, err := awsclient.Load(ctx, true)
	if err != nil {
		return err
	}
	if err := dynamostore.EnsureTable(ctx, dynamostore.NewClient(awsCfg, ddb), table); err != nil {
		return err
	}
	env = append(env, contract.EnvTable+"="+table)
	fmt.Printf("%-8s %7s %8s %10s %10s %10s %9s %9s %8s %8s %7s  %s\n", "function", "events", "init", "init RSS", "peak RSS", "final RSS",
		"init CPU", "CPU/req", "p50", "p99", "errors", "outcomes")
	for _, fn := range fns {
		events := scenario(fn, n)
		res, err := probe(filepath.Join(build, fn, "bootstrap"), fn, env, events)
		if err != nil {
			return fmt.Errorf("%s: %w", fn, err)
		}
		fmt.Printf("%-8s %7d %5.1f ms %6.1f MiB %6.1f MiB %6.1f MiB %6.0f ms %6.2f ms %5.2f ms %5.2f ms %7d  %s\n", fn, len(events),
			float64(res.init.Microseconds())/1000, mib(res.initRSS), mib(res.peakRSS), mib(res.finalRSS), res.initCPU,
			(res.totalCPU-res.initCPU)/float64(len(events)), res.p(0.50), res.p(0.99), res.errors, res.outcomes)
		if res.errors > 0 {
			fmt.Printf("         first error: %s\n", res.firstError)
		}
	}
	return nil
}

// measureInit starts each binary k times, one at a time, and prints its
// init times: from the process's start to its first request for an event.
func measureInit(build string, fns, env []string, k int) error {
	fmt.Printf("%-12s %5s %9s %9s %9s %9s\n", "binary", "runs", "min", "p50", "p90", "size")
	for _, fn := range fns {
		bin := filepath.Join(build, fn, "bootstrap")
		st, err := os.Stat(bin)
		if err != nil {
			return err
		}
		var times []time.Duration
		for range k {
			d, err := initOnce(bin, fn, env)
			if err != nil {
				return fmt.Errorf("%s: %w", fn, err)
			}
			times = append(times, d)
		}
		slices.Sort(times)
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		fmt.Printf("%-12s %5d %6.2f ms %6.2f ms %6.2f ms %6.2f MB\n", fn, k, ms(times[0]), ms(times[len(times)/2]),
			ms(times[len(times)*9/10]), float64(st.Size())/1e6)
	}
	return nil
}

func initOnce(bin, name string, env []string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f, err := lambdaharness.Start(bin, lambdaharness.Options{Name: "memprobe-" + name, Env: env})
	if err != nil {
		return 0, err
	}
	defer f.Stop()
	return f.WaitInit(ctx)
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
	init                       time.Duration // process start to the first request for an event
	initRSS, peakRSS, finalRSS int           // KiB
	initCPU, totalCPU          float64       // ms of user+system CPU (10 ms resolution)
	outcomes                   string        // counts of the request log lines' outcomes
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

// isServerError tells an HTTP API response with a 5xx status.
func isServerError(body []byte) bool {
	var resp struct {
		StatusCode int `json:"statusCode"`
	}
	return json.Unmarshal(body, &resp) == nil && resp.StatusCode >= 500
}

// probe runs one function over events and measures it.
func probe(bin, name string, env []string, events []json.RawMessage) (result, error) {
	if _, err := os.Stat(bin); err != nil {
		return result{}, fmt.Errorf("%w (run make build ARCH=<this machine's> BUILD_DIR=build/host first)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(len(events))*50*time.Millisecond+30*time.Second)
	defer cancel()
	f, err := lambdaharness.Start(bin, lambdaharness.Options{Name: "memprobe-" + name, Env: env, Deadline: 10 * time.Second})
	if err != nil {
		return result{}, err
	}
	defer f.Stop()
	var res result
	if res.init, err = f.WaitInit(ctx); err != nil {
		return result{}, err
	}
	// The process now waits for its first event: what it holds is init's.
	res.initRSS = rss(f.Pid(), "VmRSS")
	res.initCPU = cpuMillis(f.Pid())
	for _, ev := range events {
		r, err := f.Invoke(ctx, ev)
		if err != nil {
			return result{}, err
		}
		res.latencies = append(res.latencies, r.Latency)
		if r.Error || isServerError(r.Body) {
			res.errors++
			if res.firstError == "" {
				res.firstError = string(r.Body)
			}
		}
	}
	// Every request logs one line before it answers; wait until the last
	// one has come through the pipe.
	if err := f.Logs.WaitFor(ctx, func(s string) bool { return requestLines(s) >= len(events) }); err != nil {
		return result{}, err
	}
	res.peakRSS = rss(f.Pid(), "VmHWM")
	res.finalRSS = rss(f.Pid(), "VmRSS")
	res.totalCPU = cpuMillis(f.Pid())
	res.outcomes = outcomes(f.Logs.String())
	return res, nil
}

// requestLines counts the function's request log lines.
func requestLines(logs string) int {
	return strings.Count(logs, `"message":"request"`)
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
