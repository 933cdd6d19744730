package e2e_test

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"

	"github.com/stampede-cache/stampede/internal/apimodel"
	"github.com/stampede-cache/stampede/internal/faultproxy"
)

// faultBudget is the request budget of the server under faults: short, so
// the faults that outlast it (delay, hang, blackhole) cost little time.
const faultBudget = 2 * time.Second

// faultDelay is how long a delay fault holds a request: past the budget.
const faultDelay = faultBudget + faultBudget/2

// faultSettle bounds how long after its last answer an operation whose
// outcome is unknown can still take effect: its requests left the server
// within the budget, and the proxy holds none longer than faultDelay.
const faultSettle = faultDelay + 3*time.Second

// plannedFault is the fault an operation's DynamoDB requests meet.
type plannedFault struct {
	label string
	fault faultproxy.Fault
	// every faults every DynamoDB request of the operation (the SDK's
	// retries too), not only its first.
	every bool
}

// faultChoices are the faults of the run: each of the kinds, on the
// first attempt (the SDK may retry past it) and, where that differs, on
// every attempt.
func faultChoices(budget time.Duration) []plannedFault {
	after500 := faultproxy.DynamoDBError(http.StatusInternalServerError, "InternalServerError", "Internal server error", true)
	return []plannedFault{
		{label: "drop-response", fault: faultproxy.Fault{Kind: faultproxy.DropResponse}},
		{label: "hang-response", fault: faultproxy.Fault{Kind: faultproxy.HangResponse}},
		{label: "delay-past-budget", fault: faultproxy.Fault{Kind: faultproxy.Delay, Delay: faultDelay}},
		{label: "reset", fault: faultproxy.Fault{Kind: faultproxy.Reset}},
		{label: "reset-every", fault: faultproxy.Fault{Kind: faultproxy.Reset}, every: true},
		{label: "blackhole", fault: faultproxy.Fault{Kind: faultproxy.Blackhole}},
		{label: "500", fault: faultproxy.DynamoDBError(http.StatusInternalServerError, "InternalServerError", "Internal server error", false)},
		{label: "502", fault: faultproxy.HTTPError(http.StatusBadGateway)},
		{label: "504", fault: faultproxy.HTTPError(http.StatusGatewayTimeout)},
		{label: "502-every", fault: faultproxy.HTTPError(http.StatusBadGateway), every: true},
		{label: "500-after-write", fault: after500},
		{label: "throttle-every", fault: faultproxy.Throttle(), every: true},
	}
}

// faultPlan decides, per operation, the fault its DynamoDB requests meet,
// as a function of the seed and the operation's tag, and applies it in the
// proxy by the tag each DynamoDB request carries.
type faultPlan struct {
	rate    float64
	choices []plannedFault

	mu       sync.Mutex
	planned  map[string]plannedFault
	attempts map[string]int
	injected map[string]bool
}

func newFaultPlan(rate float64, choices []plannedFault) *faultPlan {
	return &faultPlan{rate: rate, choices: choices, planned: map[string]plannedFault{},
		attempts: map[string]int{}, injected: map[string]bool{}}
}

// plan draws the fault of the operation tagged tag; "" for none.
func (p *faultPlan) plan(seed uint64, tag string) string {
	h := fnv.New64a()
	h.Write([]byte(tag))
	r := rand.New(rand.NewPCG(seed, h.Sum64()))
	if r.Float64() >= p.rate {
		return ""
	}
	c := p.choices[r.IntN(len(p.choices))]
	p.mu.Lock()
	p.planned[tag] = c
	p.mu.Unlock()
	return c.label
}

// wasInjected reports whether the operation's planned fault happened (an
// operation refused before reaching DynamoDB meets none).
func (p *faultPlan) wasInjected(tag string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.injected[tag]
}

func (p *faultPlan) rules() faultproxy.Rules {
	return faultproxy.Rules{Request: func(r faultproxy.Request) faultproxy.Fault {
		tag := r.Header.Get(opTagHeader)
		p.mu.Lock()
		defer p.mu.Unlock()
		c, ok := p.planned[tag]
		if !ok {
			return faultproxy.Fault{}
		}
		p.attempts[tag]++
		if p.attempts[tag] > 1 && !c.every {
			return faultproxy.Fault{}
		}
		p.injected[tag] = true
		return c.fault
	}}
}

// landings records, per request tag, what the proxy forwarded to DynamoDB
// and when DynamoDB had answered it: a write whose answer was lost took
// effect, if at all, before DynamoDB answered its last request, and not at
// all if none of its requests got through.
type landings struct {
	mu   sync.Mutex
	tags map[string]*landing
}

type landing struct {
	forwarded, served int
	last              time.Time
}

func newLandings() *landings { return &landings{tags: map[string]*landing{}} }

func (l *landings) get(r faultproxy.Request) *landing {
	tag := r.Header.Get(opTagHeader)
	x := l.tags[tag]
	if x == nil {
		x = &landing{}
		l.tags[tag] = x
	}
	return x
}

func (l *landings) forwarded(r faultproxy.Request) {
	l.mu.Lock()
	l.get(r).forwarded++
	l.mu.Unlock()
}

func (l *landings) served(r faultproxy.Request, _ int) {
	l.mu.Lock()
	x := l.get(r)
	x.served++
	x.last = time.Now()
	l.mu.Unlock()
}

// bound narrows each unknown outcome by what the proxy saw of its
// attempts, once every request has settled. Only attempts the server
// answered count: by then it sends nothing more for them.
func (l *landings) bound(records []record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range records {
		r := &records[i]
		if !r.out.Unknown {
			continue
		}
		forwarded, last, known := 0, time.Time{}, true
		for _, a := range r.attempts {
			x := l.tags[a.tag]
			if a.err != nil || a.tag == "" || x != nil && x.served < x.forwarded {
				known = false
				break
			}
			if x != nil {
				forwarded += x.forwarded
				if x.last.After(last) {
					last = x.last
				}
			}
		}
		switch {
		case !known:
		case forwarded == 0:
			r.noEffect = true
		default:
			r.landedBy = last
		}
	}
}

// TestLinearizabilityUnderFaults is TestLinearizability with the store's
// DynamoDB traffic through a fault proxy: each operation meets, with some
// probability, a dropped or hung response, a delay past the request budget,
// a reset, a blackhole, a DynamoDB 500/502/504 (before or after the write
// took effect) or throttling. An answer of 503 (or none) may have taken
// effect or not; writes so answered are re-sent with their Idempotency-Key;
// every other answer must be linearizable. Then the faults stop: the server
// must answer again by itself, and every key is read back, through the API
// and raw from the table.
//
// Runs mostly wait out budgets, so they run in parallel with each other and
// with TestLinearizability.
func TestLinearizabilityUnderFaults(t *testing.T) {
	skipOnDeployment(t)
	t.Parallel()
	var total atomic.Int64
	t.Cleanup(func() { t.Logf("operations checked under faults: %d", total.Load()) })
	for _, seed := range seedsFromEnv(t, 11, 12) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			total.Add(int64(faultRun(t, seed)))
		})
	}
}

func faultRun(t *testing.T, seed uint64) int {
	seen := newLandings()
	srv := newProofServer(t, proofOptions{proxy: true, budget: faultBudget, landings: seen})
	plan := newFaultPlan(0.2, faultChoices(faultBudget))
	srv.proxy.SetRules(plan.rules())
	clientTimeout := 3*faultBudget + 5*time.Second
	w := workload{
		seed:         seed,
		clients:      10,
		opsPerClient: opsFromEnv(t, 100),
		keys:         proofKeys,
		timeout:      clientTimeout,
		retries:      2,
		resendAfter:  faultSettle,
		faults:       plan,
	}
	begin := time.Now()
	records := w.run(t, srv)
	faulted := time.Since(begin)

	// The faults clear: the server must recover by itself.
	srv.proxy.Heal()
	heal := workload{seed: seed + 1000, clients: w.clients, opsPerClient: 15, keys: proofKeys, timeout: clientTimeout, idempotencyShare: 0.5}
	healed := heal.run(t, srv)
	for _, r := range healed {
		if r.out.Unknown && r.violation == nil {
			t.Errorf("after the faults cleared: request: %s\n      got: %s\n      want: a definite answer", r.req, r.attempts[len(r.attempts)-1])
		}
	}
	// Requests the proxy delayed land by now.
	time.Sleep(2 * faultBudget)
	final := readBack(t, srv, w.clients)
	all, relaxed := splitRetries(append(append(records, healed...), final...))
	seen.bound(all)

	reportViolations(t, all)
	srv.reportServerChecks(t)
	ops := history(all, faultSettle)
	linearizable := checkHistory(t, t.Name(), ops, time.Minute)
	rawMatches := compareRaw(t, srv, final)

	// Figures.
	stats := srv.proxy.Stats()
	t.Logf("%d operations under faults in %s, %d after; %d checked (%d retried writes split into attempts of unknown outcome)",
		len(records), faulted.Round(time.Millisecond), len(healed)+len(final), len(ops), relaxed)
	t.Logf("proxy: %s", stats)
	first, final2 := map[string]tally{}, map[string]tally{}
	slowest := map[string]time.Duration{}
	wrong := groups{}
	unknown, acked := 0, 0
	for _, r := range records {
		if r.out.Unknown {
			unknown++
		}
		if acknowledgedWrite(r) {
			acked++
		}
		if r.fault == "" || !plan.wasInjected(r.tag) {
			continue
		}
		if first[r.fault] == nil {
			first[r.fault], final2[r.fault] = tally{}, tally{}
		}
		a := r.attempts[0]
		first[r.fault][a.label()]++
		final2[r.fault][r.attempts[len(r.attempts)-1].label()]++
		slowest[r.fault] = max(slowest[r.fault], a.got.Sub(a.sent))
		switch {
		case a.err != nil:
			wrong.add(r.fault+": no answer", fmt.Sprintf("request: %s\n      got: no answer within %s\n      want: an answer within the %s budget", r.req, w.timeout, faultBudget))
		case r.fault == "throttle-every" && a.status != http.StatusTooManyRequests:
			wrong.add(r.fault+": not 429", fmt.Sprintf("request: %s (DynamoDB throttles every attempt)\n      got: %s\n      want: 429 throttled (docs/reliability.md: throttling → 429, nothing happened)", r.req, abbreviate(a.String())))
		}
	}
	wrong.report(t)
	labels := make([]string, 0, len(first))
	for l := range first {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	for _, l := range labels {
		t.Logf("fault %-18s first answer: %-40s (slowest %s) after retries: %s", l, first[l], slowest[l].Round(time.Millisecond), final2[l])
	}
	for _, r := range append(healed, final...) {
		if acknowledgedWrite(r) {
			acked++
		}
	}
	t.Logf("unknown outcomes: %d; acknowledged writes: %d; keys read back: %d", unknown, acked, len(proofKeys))
	if linearizable && rawMatches {
		t.Logf("acknowledged writes verified (linearizable with the final read-back, which matches the table): %d", acked)
	}
	return len(ops)
}

// acknowledgedWrite reports whether r is a write the server said it did.
func acknowledgedWrite(r record) bool {
	if r.out.Unknown || r.out.Status >= 300 {
		return false
	}
	switch r.in.Op {
	case apimodel.Put:
		return true
	case apimodel.Delete:
		return r.out.Deleted
	case apimodel.Reserve:
		return r.out.Acquired
	case apimodel.Release:
		return r.out.Released
	}
	return false
}

// readBack reads every key's entry and reservation through the API, one
// client after all others finished.
func readBack(t *testing.T, srv *proofServer, client int) []record {
	t.Helper()
	var out []record
	for _, key := range proofKeys {
		for _, op := range []apimodel.Op{apimodel.Get, apimodel.Inspect} {
			in := apimodel.Input{Op: op, Key: key}
			rec := record{client: client, in: in, req: srv.request(in, "")}
			rec.call = time.Now()
			a := srv.send(rec.req, "", 30*time.Second)
			rec.ret = time.Now()
			rec.attempts = []answer{a}
			rec.out, rec.violation = interpret(in, a, rec.call.UnixMilli(), rec.ret.UnixMilli())
			if rec.out.Unknown {
				t.Errorf("read back: request: %s\n      got: %s\n      want: a definite answer", rec.req, a)
			}
			out = append(out, rec)
		}
	}
	return out
}

// compareRaw checks each key's final entry, as the API showed it, against
// the item in the table.
func compareRaw(t *testing.T, srv *proofServer, final []record) bool {
	t.Helper()
	ok := true
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, r := range final {
		if r.in.Op != apimodel.Get || r.out.Unknown {
			continue
		}
		item, err := srv.rawItem(ctx, r.in.Key)
		if err != nil {
			t.Fatalf("raw read of %q: %v", r.in.Key, err)
		}
		var raw struct {
			OutputURI *string `dynamodbav:"output_uri"`
			Version   int64   `dynamodbav:"version"`
		}
		if err := attributevalue.UnmarshalMap(item, &raw); err != nil {
			t.Fatalf("raw item of %q: %v", r.in.Key, err)
		}
		switch {
		case r.out.Entry == nil && raw.OutputURI != nil:
			ok = false
			t.Errorf("key %q: the API answers 404 but the table holds entry %s v%d", r.in.Key, *raw.OutputURI, raw.Version)
		case r.out.Entry != nil && (raw.OutputURI == nil || *raw.OutputURI != r.out.Entry.URI || raw.Version != r.out.Entry.Version):
			ok = false
			t.Errorf("key %q: the API answers %s v%d but the table holds %v v%d", r.in.Key, r.out.Entry.URI, r.out.Entry.Version, raw.OutputURI, raw.Version)
		}
	}
	return ok
}
