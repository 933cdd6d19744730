package benchmark

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/stampede-cache/stampede/internal/benchmark/rawdynamo"
)

// The paths a server-path operation is measured on.
const (
	pathRaw     = "raw"     // the captured DynamoDB request, sent by the SDK alone
	pathHandler = "handler" // the router called in process, no HTTP
	pathServer  = "server"  // HTTP over loopback to the real http.Server
)

// PathStats is one operation measured on one path.
type PathStats struct {
	Latencies
	OpsPerSec float64 `json:"ops_per_sec"`
	// DynamoDBPerOp counts DynamoDB requests (attempts) per operation.
	DynamoDBPerOp float64 `json:"dynamodb_per_op"`
	// AllocsPerOp is the process's heap allocations per operation
	// (runtime.MemStats.Mallocs); measured at concurrency 1 only.
	AllocsPerOp float64 `json:"allocs_per_op,omitempty"`
	// BytesPerOp is the heap bytes allocated per operation, likewise.
	BytesPerOp float64 `json:"bytes_per_op,omitempty"`
	// CPUWaitPerOp is the time this process's threads spent runnable but
	// waiting for a processor, per operation: on a shared machine, the
	// part of the latency that is the queue for a CPU.
	CPUWaitPerOp time.Duration `json:"cpu_wait_per_op_ns"`
	// Unexpected counts answers other than the operation's expected one.
	Unexpected int `json:"unexpected"`
	// TimeWait is how many more sockets to DynamoDB Local were in
	// TIME_WAIT after the run than before it (concurrency > 1 only).
	TimeWait int `json:"time_wait"`
}

// OpResult is one operation at one concurrency on every path.
type OpResult struct {
	Op          string    `json:"op"`
	Concurrency int       `json:"concurrency"`
	Raw         PathStats `json:"raw"`
	Handler     PathStats `json:"handler"`
	Server      PathStats `json:"server"`
}

// HopResult is one HTTP round trip over loopback to a handler that does
// nothing: the floor of the extra hop.
type HopResult struct {
	Concurrency int       `json:"concurrency"`
	Stats       PathStats `json:"stats"`
}

// ServerPathResult is section 1.
type ServerPathResult struct {
	Ops []OpResult  `json:"ops"`
	Hop []HopResult `json:"hop"`
	// TimeWaitDynamoDB is the number of sockets to DynamoDB Local in
	// TIME_WAIT after the runs at the highest concurrency.
	TimeWaitDynamoDB int `json:"time_wait_dynamodb"`
	// TimeWaitServer is the same for sockets to the Stampede server.
	TimeWaitServer int `json:"time_wait_server"`
}

// ServerPathOptions size section 1.
type ServerPathOptions struct {
	// Concurrency lists the numbers of concurrent clients (1 and 16).
	Concurrency []int
	// OpsSerial is the number of operations per path at concurrency 1;
	// OpsParallel at each higher concurrency.
	OpsSerial, OpsParallel int
	// Rounds alternates the paths this many times per cell, so a drift in
	// the machine's speed falls on both.
	Rounds int
	// Operations, when set, selects operations by name ("get hit", ...).
	Operations []string
	// Warmup is the number of untimed operations of each kind sent on each
	// path before the first measurement (DynamoDB Local's JIT warms up for
	// a long while), and a tenth of it (at least 5) again before each cell.
	Warmup int
}

// reqSpec is one HTTP request of the benchmark.
type reqSpec struct {
	method, path string
	body         []byte
}

func (r reqSpec) request(ctx context.Context, base string) *http.Request {
	var body io.Reader = http.NoBody
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, _ := http.NewRequestWithContext(ctx, r.method, base+r.path, body)
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

// operation is one measured operation.
type operation struct {
	name string
	// status is the HTTP answer expected.
	status int
	// rawFails is true when the raw request is refused by its condition
	// by design (a contended reservation).
	rawFails bool
	// spec builds the i-th request on path for worker w of run.
	spec func(path string, run, w, i int) reqSpec
	// prepare sets up the state the requests need (before each run).
	prepare func(ctx context.Context, specs []reqSpec) error
}

const (
	hitKeys       = 64
	heldKeys      = 16
	overwriteKeys = 4
	benchOwner    = "bench-owner"
	otherOwner    = "bench-contender"
)

func putBody(uri string, overwrite bool) []byte {
	if overwrite {
		return []byte(`{"output_uri":"` + uri + `","overwrite":true}`)
	}
	return []byte(`{"output_uri":"` + uri + `"}`)
}

func outputURI(key string) string {
	return "s3://" + benchBucket + "/" + benchProject + "/" + benchDomain + "/" + key
}

// operations lists the operations of section 1.
func (b *bench) operations() []operation {
	reserveBody := []byte(`{"owner_id":"` + benchOwner + `"}`)
	return []operation{
		{
			name: "get hit", status: http.StatusOK,
			spec: func(_ string, _, w, i int) reqSpec {
				return reqSpec{http.MethodGet, cachePath(fmt.Sprintf("hit-%d", (w*7+i)%hitKeys)), nil}
			},
			prepare: b.once("get hit", func(ctx context.Context) error {
				var specs []reqSpec
				for k := range hitKeys {
					key := fmt.Sprintf("hit-%d", k)
					specs = append(specs, reqSpec{http.MethodPut, cachePath(key), putBody(outputURI(key), true)})
				}
				return b.setup(ctx, specs, http.StatusOK, http.StatusCreated)
			}),
		},
		{
			name: "get miss", status: http.StatusNotFound,
			spec: func(_ string, run, w, i int) reqSpec {
				return reqSpec{http.MethodGet, cachePath(fmt.Sprintf("miss-%d-%d-%d", run, w, i)), nil}
			},
		},
		{
			name: "put new", status: http.StatusCreated,
			spec: func(path string, run, w, i int) reqSpec {
				key := fmt.Sprintf("new-%d-%d-%d-%s", run, w, i, path)
				return reqSpec{http.MethodPut, cachePath(key), putBody(outputURI(key), false)}
			},
		},
		{
			name: "put overwrite", status: http.StatusOK,
			spec: func(path string, _, w, i int) reqSpec {
				key := fmt.Sprintf("%s-ow-%d-%d", path, w, i%overwriteKeys)
				return reqSpec{http.MethodPut, cachePath(key), putBody(outputURI(key), true)}
			},
			prepare: func(ctx context.Context, specs []reqSpec) error {
				// Every key exists before the run, so each put overwrites.
				seen := map[string]bool{}
				var first []reqSpec
				for _, s := range specs {
					if !seen[s.path] {
						seen[s.path] = true
						first = append(first, s)
					}
				}
				return b.setup(ctx, first, http.StatusOK, http.StatusCreated)
			},
		},
		{
			name: "reserve acquire", status: http.StatusOK,
			spec: func(path string, run, w, i int) reqSpec {
				return reqSpec{http.MethodPost, reservationPath(fmt.Sprintf("%s-acq-%d-%d-%d", path, run, w, i)), reserveBody}
			},
		},
		{
			name: "reserve contended", status: http.StatusOK, rawFails: true,
			spec: func(_ string, _, w, i int) reqSpec {
				return reqSpec{http.MethodPost, reservationPath(fmt.Sprintf("held-%d", (w*5+i)%heldKeys)),
					[]byte(`{"owner_id":"` + otherOwner + `"}`)}
			},
			prepare: func(ctx context.Context, _ []reqSpec) error {
				// Take or extend the holder's reservations (30 s leases).
				var specs []reqSpec
				for k := range heldKeys {
					specs = append(specs, reqSpec{http.MethodPost, reservationPath(fmt.Sprintf("held-%d", k)), reserveBody})
				}
				return b.setup(ctx, specs, http.StatusOK)
			},
		},
		{
			name: "release", status: http.StatusOK,
			spec: func(path string, run, w, i int) reqSpec {
				return reqSpec{http.MethodDelete, reservationPath(fmt.Sprintf("%s-rel-%d-%d-%d", path, run, w, i)) + "?owner_id=" + benchOwner, nil}
			},
			prepare: func(ctx context.Context, specs []reqSpec) error {
				reserve := make([]reqSpec, len(specs))
				for i, s := range specs {
					p, _, _ := bytes.Cut([]byte(s.path), []byte("?"))
					reserve[i] = reqSpec{http.MethodPost, string(p), reserveBody}
				}
				return b.setup(ctx, reserve, http.StatusOK)
			},
		},
	}
}

// once runs setup the first time only.
func (b *bench) once(name string, setup func(context.Context) error) func(context.Context, []reqSpec) error {
	return func(ctx context.Context, _ []reqSpec) error {
		if b.prepared[name] {
			return nil
		}
		if err := setup(ctx); err != nil {
			return err
		}
		b.prepared[name] = true
		return nil
	}
}

// setup sends requests through the router in process, a few at a time,
// and checks each answer is one of want.
func (b *bench) setup(ctx context.Context, specs []reqSpec, want ...int) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	work := make(chan reqSpec)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range work {
				status := b.setupOne(ctx, s)
				if !containsInt(want, status) {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("set-up %s %s: status %d, want %v", s.method, s.path, status, want)
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, s := range specs {
		work <- s
	}
	close(work)
	wg.Wait()
	return first
}

// setupOne sends one set-up request, again while the service answers
// that it is busy (a cold DynamoDB Local on a loaded machine can exceed
// the request budget), and returns the last status.
func (b *bench) setupOne(ctx context.Context, s reqSpec) int {
	backoff := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		w := discardResponse{header: http.Header{}}
		b.svc.Router.ServeHTTP(&w, s.request(ctx, ""))
		busy := w.status == http.StatusServiceUnavailable || w.status == http.StatusTooManyRequests
		if !busy || attempt == 5 || ctx.Err() != nil {
			return w.status
		}
		time.Sleep(backoff)
		backoff *= 2
	}
}

func containsInt(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// runServerPath measures section 1.
func (b *bench) runServerPath(ctx context.Context, o ServerPathOptions) (ServerPathResult, error) {
	var res ServerPathResult
	hc := b.loadClient(64)
	defer hc.CloseIdleConnections()
	ops := b.operations()
	if len(o.Operations) > 0 {
		ops = slices.DeleteFunc(ops, func(op operation) bool { return !slices.Contains(o.Operations, op.name) })
		if len(ops) == 0 {
			return res, fmt.Errorf("no operation named %q", o.Operations)
		}
	}
	if o.Warmup > 0 {
		b.logf("server path: warming up, %d operations of each kind on each path", o.Warmup)
		for _, op := range ops {
			if err := b.warm(ctx, hc, op, 4, o.Warmup); err != nil {
				return res, fmt.Errorf("warm-up %s: %w", op.name, err)
			}
		}
	}
	for _, c := range o.Concurrency {
		n := o.OpsParallel
		if c == 1 {
			n = o.OpsSerial
		}
		for _, op := range ops {
			b.logf("server path: %s, %d client(s), %d operations per path", op.name, c, n)
			if err := b.warm(ctx, hc, op, c, max(o.Warmup/10, 5)); err != nil {
				return res, fmt.Errorf("warm-up %s: %w", op.name, err)
			}
			r, err := b.measureOp(ctx, hc, op, c, n, max(o.Rounds, 1))
			if err != nil {
				return res, fmt.Errorf("%s at %d: %w", op.name, c, err)
			}
			res.Ops = append(res.Ops, r)
		}
		if c > 1 {
			res.TimeWaitDynamoDB = timeWaitSockets(b.svc.DynamoDBPort)
			res.TimeWaitServer = timeWaitSockets(serverPort(b.svc.URL))
		}
		hop, err := b.measureHop(ctx, c, n)
		if err != nil {
			return res, err
		}
		res.Hop = append(res.Hop, hop)
	}
	return res, nil
}

// loadClient is the load generator's HTTP client, with enough idle
// connections that it never churns sockets itself.
func (b *bench) loadClient(conns int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = conns * 2
	t.MaxIdleConnsPerHost = conns
	return &http.Client{Transport: t, Timeout: 30 * time.Second}
}

// warm sends n untimed operations on each path, c at a time.
func (b *bench) warm(ctx context.Context, hc *http.Client, op operation, c, n int) error {
	_, err := b.measureOp(ctx, hc, op, c, n, 1)
	return err
}

// measureOp runs one operation at concurrency c, n operations per path,
// alternating the paths round by round (and their order, so that neither
// always follows the other).
func (b *bench) measureOp(ctx context.Context, hc *http.Client, op operation, c, n, rounds int) (OpResult, error) {
	b.run++
	paths := []string{pathRaw, pathServer}
	if c == 1 {
		paths = []string{pathRaw, pathHandler, pathServer}
	}
	res := OpResult{Op: op.name, Concurrency: c}
	acc := map[string]*pathAcc{}
	for _, p := range paths {
		acc[p] = &pathAcc{}
	}
	perRound := max(n/rounds, 1)
	for round := range rounds {
		if round > 0 {
			slices.Reverse(paths)
		}
		for _, path := range paths {
			specs := make([][]reqSpec, c)
			var all []reqSpec
			for i := range perRound {
				w := i % c
				s := op.spec(path, b.run*rounds+round, w, i/c)
				specs[w] = append(specs[w], s)
				all = append(all, s)
			}
			if op.prepare != nil {
				if err := op.prepare(ctx, all); err != nil {
					return res, err
				}
			}
			if err := b.measurePath(ctx, hc, op, path, specs, acc[path]); err != nil {
				return res, err
			}
		}
	}
	res.Raw = acc[pathRaw].stats()
	res.Handler = acc[pathHandler].stats()
	res.Server = acc[pathServer].stats()
	return res, nil
}

// pathAcc accumulates one path's runs.
type pathAcc struct {
	samples    []time.Duration
	wall       time.Duration
	ops        int
	dynamo     int64
	mallocs    uint64
	bytes      uint64
	unexpected int
	timeWait   int
	cpuWait    time.Duration
}

func (a *pathAcc) stats() PathStats {
	if a == nil || a.ops == 0 {
		return PathStats{}
	}
	s := PathStats{
		Latencies:     summarize(a.samples),
		OpsPerSec:     float64(a.ops) / a.wall.Seconds(),
		DynamoDBPerOp: float64(a.dynamo) / float64(a.ops),
		Unexpected:    a.unexpected,
		TimeWait:      a.timeWait,
		CPUWaitPerOp:  a.cpuWait / time.Duration(a.ops),
	}
	if a.mallocs > 0 {
		s.AllocsPerOp = float64(a.mallocs) / float64(a.ops)
		s.BytesPerOp = float64(a.bytes) / float64(a.ops)
	}
	return s
}

// measurePath sends specs[w] from worker w, all workers at once, and adds
// the figures to acc.
func (b *bench) measurePath(ctx context.Context, hc *http.Client, op operation, path string, specs [][]reqSpec, acc *pathAcc) error {
	// Everything a request needs is built before the clock starts.
	calls := make([][]func() bool, len(specs))
	for w, list := range specs {
		for _, s := range list {
			call, err := b.call(ctx, hc, op, path, s)
			if err != nil {
				return err
			}
			calls[w] = append(calls[w], call)
		}
	}
	counter := b.svc.serverDB
	if path == pathRaw {
		counter = b.svc.rawDB
	}
	serial := len(specs) == 1
	twBefore := 0
	if !serial {
		twBefore = timeWaitSockets(b.svc.DynamoDBPort)
	}
	var ms0, ms1 runtime.MemStats
	if serial {
		runtime.GC()
		runtime.ReadMemStats(&ms0)
	}
	before := counter.Snapshot()
	waited := runQueueDelay()
	results := make([][]time.Duration, len(calls))
	bad := make([]int, len(calls))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, len(calls[w]))
			<-start
			for _, call := range calls[w] {
				t0 := time.Now()
				ok := call()
				lat = append(lat, time.Since(t0))
				if !ok {
					bad[w]++
				}
			}
			results[w] = lat
		}()
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	wall := time.Since(t0)
	acc.cpuWait += runQueueDelay() - waited
	after := counter.Snapshot()
	if serial {
		runtime.ReadMemStats(&ms1)
		acc.mallocs += ms1.Mallocs - ms0.Mallocs
		acc.bytes += ms1.TotalAlloc - ms0.TotalAlloc
	} else {
		acc.timeWait += max(timeWaitSockets(b.svc.DynamoDBPort)-twBefore, 0)
	}
	for w := range results {
		acc.samples = append(acc.samples, results[w]...)
		acc.ops += len(results[w])
		acc.unexpected += bad[w]
	}
	acc.wall += wall
	acc.dynamo += after.Sub(before).Total()
	return ctx.Err()
}

// call prepares one request on path; the returned function sends it and
// reports whether the answer was the expected one.
func (b *bench) call(ctx context.Context, hc *http.Client, op operation, path string, s reqSpec) (func() bool, error) {
	switch path {
	case pathRaw:
		req, err := b.svc.captureRequest(s.request(ctx, ""))
		if err != nil {
			return nil, err
		}
		return func() bool {
			err := rawdynamo.Send(ctx, b.svc.raw, req)
			if op.rawFails {
				return rawdynamo.ConditionFailed(err)
			}
			return err == nil
		}, nil
	case pathHandler:
		return func() bool {
			w := discardResponse{header: http.Header{}}
			b.svc.Router.ServeHTTP(&w, s.request(ctx, ""))
			return w.status == op.status
		}, nil
	default:
		return func() bool {
			resp, err := hc.Do(s.request(ctx, b.svc.URL))
			if err != nil {
				return false
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode == op.status
		}, nil
	}
}

// measureHop times HTTP round trips over loopback to a handler that
// answers a fixed small JSON body: the cost of the hop alone.
func (b *bench) measureHop(ctx context.Context, c, n int) (HopResult, error) {
	body := []byte(`{"ok":true}`)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return HopResult{}, err
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	hc := b.loadClient(64)
	defer hc.CloseIdleConnections()
	url := "http://" + ln.Addr().String()
	specs := make([][]reqSpec, c)
	for i := range n {
		specs[i%c] = append(specs[i%c], reqSpec{http.MethodGet, "/v1/projects/bench/domains/perf/cache/hop", nil})
	}
	op := operation{name: "hop", status: http.StatusOK}
	acc := &pathAcc{}
	hop := &bench{svc: &service{URL: url, serverDB: &rawdynamo.Counter{}, DynamoDBPort: b.svc.DynamoDBPort}, logf: b.logf}
	if err := hop.measurePath(ctx, hc, op, pathServer, specs, acc); err != nil {
		return HopResult{}, err
	}
	st := acc.stats()
	st.TimeWait = 0
	return HopResult{Concurrency: c, Stats: st}, nil
}

func serverPort(url string) int {
	p, err := portOf(url)
	if err != nil {
		return 0
	}
	return p
}
