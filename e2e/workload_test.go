package e2e_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/stampede-cache/stampede/internal/apimodel"
)

// workload is one seeded run: concurrent clients doing random operations on
// a few keys of one proof server.
type workload struct {
	seed         uint64
	clients      int
	opsPerClient int
	keys         []string
	// timeout bounds each HTTP attempt on the client's side.
	timeout time.Duration
	// retries re-sends a write whose outcome is unknown, with the same
	// Idempotency-Key, up to this many times.
	retries int
	// resendAfter holds a re-send until this long after the operation's
	// call: an attempt the network delayed past its budget can still reach
	// DynamoDB until then, and a re-send answered before it lands cannot
	// account for it (docs/reliability.md).
	resendAfter time.Duration
	// idempotencyShare is the share of writes that carry an
	// Idempotency-Key (every retried write does).
	idempotencyShare float64
	// faults, when set, plans the DynamoDB faults of each operation.
	faults *faultPlan
}

// record is one operation as it happened.
type record struct {
	client int
	// tag identifies the operation to the fault plan.
	tag string
	in  apimodel.Input
	out apimodel.Output
	// call and ret bound the operation, all its attempts included.
	call, ret time.Time
	req       httpRequest
	// attempts are the answers, the last one deciding.
	attempts []answer
	// violation is what the answer got wrong regardless of state.
	violation error
	// fault is the label of the fault planned for the first attempt.
	fault string
	// relaxed marks a retried operation whose answer the model cannot hold
	// it to (see splitRetries); it is checked as unknown.
	relaxed bool
	// For an unknown outcome, what the proxy saw (see landings.bound):
	// noEffect says none of its requests reached DynamoDB; landedBy, when
	// set, is when DynamoDB had answered all that did.
	noEffect bool
	landedBy time.Time
}

func (r record) isWrite() bool { return r.in.Op != apimodel.Get && r.in.Op != apimodel.Inspect }

// outcome names the final answer for counting: operation, status, and for
// a reserve whether it was acquired.
func (r record) outcome() string {
	a := r.attempts[len(r.attempts)-1]
	label := string(r.in.Op) + ":" + a.label()
	if r.in.Op == apimodel.Reserve && a.err == nil && a.status == http.StatusOK {
		if r.out.Acquired {
			label += "-acquired"
		} else {
			label += "-contended"
		}
	}
	return label
}

// proofClient is one client's memory: what it last saw of each key.
type proofClient struct {
	id       int
	owner    string
	rng      *rand.Rand
	versions map[string]int64
	fences   map[string]int64
	n        int
}

// next draws the client's next operation.
func (c *proofClient) next(keys []string, run string) apimodel.Input {
	key := keys[c.rng.IntN(len(keys))]
	in := apimodel.Input{Key: key}
	c.n++
	uri := fmt.Sprintf("s3://proof-outputs/%s/c%d-%d", run, c.id, c.n)
	seen := c.versions[key]
	if seen == 0 {
		seen = 1
	}
	switch x := c.rng.IntN(100); {
	case x < 16:
		in.Op = apimodel.Get
	case x < 21:
		in.Op, in.IfNoneMatch = apimodel.Get, seen
	case x < 29:
		in.Op, in.URI, in.TTL = apimodel.Put, uri, c.rng.IntN(3) == 0
	case x < 36:
		in.Op, in.URI, in.Overwrite = apimodel.Put, uri, true
	case x < 42:
		in.Op, in.URI, in.IfMatch = apimodel.Put, uri, seen
		if c.rng.IntN(5) == 0 && seen > 1 {
			in.IfMatch = seen - 1
		}
	case x < 52:
		in.Op, in.URI, in.Owner = apimodel.Put, uri, c.owner
		in.Overwrite = c.rng.IntN(2) == 0
		in.Release = c.rng.IntN(5) < 2
		if c.rng.IntN(10) < 7 {
			in.Fence = c.fences[key]
		}
	case x < 58:
		in.Op = apimodel.Delete
	case x < 62:
		in.Op, in.IfMatch = apimodel.Delete, seen
	case x < 77:
		in.Op, in.Owner, in.LeaseMs = apimodel.Reserve, c.owner, proofLeaseMs
	case x < 88:
		in.Op, in.Owner = apimodel.Release, c.owner
	default:
		in.Op = apimodel.Inspect
	}
	return in
}

// learn remembers what an answer showed.
func (c *proofClient) learn(in apimodel.Input, out apimodel.Output) {
	if out.Unknown {
		return
	}
	if e := out.Entry; e != nil {
		c.versions[in.Key] = e.Version
	}
	if r := out.Reservation; r != nil && out.Acquired {
		c.fences[in.Key] = r.Fence
	}
}

// run drives the workload and returns every operation, in no order.
func (w workload) run(t *testing.T, srv *proofServer) []record {
	t.Helper()
	run := fmt.Sprintf("s%d", w.seed)
	var mu sync.Mutex
	var records []record
	var wg sync.WaitGroup
	for id := range w.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &proofClient{
				id:       id,
				owner:    fmt.Sprintf("owner-%d", id),
				rng:      rand.New(rand.NewPCG(w.seed, uint64(id))),
				versions: map[string]int64{},
				fences:   map[string]int64{},
			}
			mine := make([]record, 0, w.opsPerClient)
			for range w.opsPerClient {
				in := c.next(w.keys, run)
				tag := fmt.Sprintf("%s-c%d-%d", run, id, c.n)
				rec := w.do(srv, c, in, tag)
				c.learn(rec.in, rec.out)
				mine = append(mine, rec)
			}
			mu.Lock()
			records = append(records, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return records
}

// do performs one operation, retrying an unknown write with the same
// Idempotency-Key.
func (w workload) do(srv *proofServer, c *proofClient, in apimodel.Input, tag string) record {
	rec := record{client: c.id, tag: tag, in: in}
	idem := ""
	if in.Op != apimodel.Get && in.Op != apimodel.Inspect && (w.retries > 0 || c.rng.Float64() < w.idempotencyShare) {
		idem = "proof-" + tag
	}
	rec.req = srv.request(in, idem)
	if w.faults != nil {
		rec.fault = w.faults.plan(w.seed, tag)
	}
	rec.call = time.Now()
	callMs := rec.call.UnixMilli()
	for attempt := 0; ; attempt++ {
		attemptTag := tag
		if attempt > 0 {
			// Faults are planned for the first attempt only.
			attemptTag = fmt.Sprintf("%s-retry%d", tag, attempt)
			time.Sleep(max(time.Until(rec.call.Add(w.resendAfter)), 0) + time.Duration(20*attempt)*time.Millisecond)
		}
		a := srv.send(rec.req, attemptTag, w.timeout)
		rec.ret = a.got
		rec.attempts = append(rec.attempts, a)
		rec.out, rec.violation = interpret(in, a, callMs, rec.ret.UnixMilli())
		if attempt > 0 && !rec.out.Unknown && rec.out.Status == http.StatusTooManyRequests {
			// The retry was throttled, but an earlier attempt may have
			// landed.
			rec.out.Unknown = true
		}
		if !rec.out.Unknown || idem == "" || attempt >= w.retries || rec.violation != nil {
			return rec
		}
	}
}

// splitRetries turns the attempts of a re-sent operation into separate
// operations where the server judges them separately:
//
//   - A reserve takes no Idempotency-Key: a re-send by the same owner is an
//     extension of its own (docs/api.md), so each earlier attempt is an
//     operation of unknown outcome and the last one stands on its own.
//   - An Idempotency-Key answers what the first successful attempt earned
//     only while the key has seen fewer than 4 other successful writes
//     since; after more, a re-send is judged afresh. When more than 3 other
//     writes of the key overlap a re-sent operation, each of its attempts
//     is checked as an operation of unknown outcome.
//
// It returns the records and the number of operations relaxed the second
// way.
func splitRetries(records []record) ([]record, int) {
	byKey := map[string][]int{}
	for i, r := range records {
		if r.isWrite() {
			byKey[r.in.Key] = append(byKey[r.in.Key], i)
		}
	}
	attempt := func(r record, a answer) record {
		part := r
		part.call, part.ret = a.sent, a.got
		part.attempts = []answer{a}
		part.out = apimodel.Output{Unknown: true, Status: a.status, ReturnMs: a.got.UnixMilli()}
		if a.err != nil {
			part.out.ReturnMs = 1 << 62
		}
		return part
	}
	var out []record
	relaxed := 0
	for i, r := range records {
		if len(r.attempts) < 2 {
			out = append(out, r)
			continue
		}
		overlapping := 0
		for _, j := range byKey[r.in.Key] {
			o := records[j]
			if j != i && o.call.Before(r.ret) && o.ret.After(r.call) {
				overlapping++
			}
		}
		switch {
		case overlapping > 3:
			relaxed++
			for _, a := range r.attempts {
				part := attempt(r, a)
				part.relaxed = true
				out = append(out, part)
			}
		case r.in.Op == apimodel.Reserve:
			last := len(r.attempts) - 1
			for _, a := range r.attempts[:last] {
				out = append(out, attempt(r, a))
			}
			final := r
			final.call = r.attempts[last].sent
			final.attempts = r.attempts[last:]
			out = append(out, final)
		default:
			out = append(out, r)
		}
	}
	return out, relaxed
}

// history turns records into porcupine's history. Reads whose outcome is
// unknown are left out (they change nothing); a write whose outcome is
// unknown may take effect until settle after its last answer (a request
// the network delayed lands late), so it stays pending until then.
func history(records []record, settle time.Duration) []porcupine.Operation {
	sort.Slice(records, func(i, j int) bool { return records[i].call.Before(records[j].call) })
	var start, end time.Time
	for i, r := range records {
		if i == 0 || r.call.Before(start) {
			start = r.call
		}
		if r.ret.After(end) {
			end = r.ret
		}
	}
	ops := make([]porcupine.Operation, 0, len(records))
	for _, r := range records {
		if r.out.Unknown && (!r.isWrite() || r.noEffect) {
			continue
		}
		op := porcupine.Operation{
			ClientId: r.client,
			Input:    withCall(r.in, r.call),
			Call:     r.call.Sub(start).Nanoseconds(),
			Output:   r.out,
			Return:   r.ret.Sub(start).Nanoseconds(),
			Metadata: &opMeta{text: r.exchange()},
		}
		if r.out.Unknown {
			pending := end
			switch last := r.attempts[len(r.attempts)-1]; {
			case !r.landedBy.IsZero():
				pending = r.landedBy
			case last.err == nil && r.ret.Add(settle).Before(end):
				// The server answered: its requests are out by now, and
				// land within settle.
				pending = r.ret.Add(settle)
			}
			op.Return = max(pending.Sub(start).Nanoseconds()+1, op.Return)
		}
		ops = append(ops, op)
	}
	return ops
}

// exchange renders the operation's request and answers.
func (r record) exchange() string {
	var b strings.Builder
	b.WriteString(r.req.String())
	for _, a := range r.attempts {
		fmt.Fprintf(&b, "\n→ %s", abbreviate(a.String()))
	}
	if r.fault != "" {
		fmt.Fprintf(&b, "\n(fault planned: %s)", r.fault)
	}
	if r.relaxed {
		b.WriteString("\n(checked as unknown: more than 3 other writes overlapped its retries)")
	}
	return b.String()
}

func withCall(in apimodel.Input, call time.Time) apimodel.Input {
	in.CallMs = call.UnixMilli()
	return in
}

// tally counts answers by operation and status.
type tally map[string]int

func (t tally) String() string {
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, t[k])
	}
	return strings.Join(parts, " ")
}

// groups collects failures by kind, to report each kind once with a count
// and its first example.
type groups map[string]*group

type group struct {
	n       int
	example string
}

func (g groups) add(kind, example string) {
	if g[kind] == nil {
		g[kind] = &group{example: example}
	}
	g[kind].n++
}

func (g groups) report(t *testing.T) {
	t.Helper()
	kinds := make([]string, 0, len(g))
	for k := range g {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		t.Errorf("%d × %s; e.g.\n      %s", g[k].n, k, g[k].example)
	}
}

// reportViolations fails the test with every answer that broke the
// contract regardless of state, grouped by kind, with one example each.
func reportViolations(t *testing.T, records []record) {
	t.Helper()
	g := groups{}
	for _, r := range records {
		if r.violation == nil {
			continue
		}
		kind := string(r.in.Op) + ": " + r.violation.Error()
		if i := strings.IndexAny(kind, "0123456789{\""); i > 0 && len(kind) > 80 {
			kind = kind[:i]
		}
		g.add("answers broke docs/api.md ("+kind+")", fmt.Sprintf("request: %s\n      got: %s\n      wrong: %v", r.req, abbreviate(r.attempts[len(r.attempts)-1].String()), r.violation))
	}
	g.report(t)
}

// seedsFromEnv returns the seeds of STAMPEDE_PROOF_SEEDS (comma-separated)
// or the defaults.
func seedsFromEnv(t *testing.T, defaults ...uint64) []uint64 {
	v := os.Getenv("STAMPEDE_PROOF_SEEDS")
	if v == "" {
		return defaults
	}
	var seeds []uint64
	for _, s := range strings.Split(v, ",") {
		n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
		if err != nil {
			t.Fatalf("STAMPEDE_PROOF_SEEDS: %v", err)
		}
		seeds = append(seeds, n)
	}
	return seeds
}

// opsFromEnv returns STAMPEDE_PROOF_OPS (operations per client) or def.
func opsFromEnv(t *testing.T, def int) int {
	v := os.Getenv("STAMPEDE_PROOF_OPS")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("STAMPEDE_PROOF_OPS: want a positive integer, got %q", v)
	}
	return n
}
