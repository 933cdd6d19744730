package e2e_test

import (
	"fmt"
	"testing"
	"time"
)

// proofKeys are the keys each run contends on: a plain one, one with a
// slash, and one that needs percent-encoding.
var proofKeys = []string{"k0", "dir/k1", "k2 ü#%?&=+"}

// TestLinearizability runs concurrent clients over the HTTP API and checks
// every answer against the sequential model of docs/api.md (internal/apimodel)
// with porcupine: get, put (create, overwrite, If-Match, fenced,
// put-and-release), delete (plain and If-Match), reserve, release and
// inspect, on keys whose reservations expire and are taken over during the
// run. Versions and fences are checked to grow, never to take given values.
func TestLinearizability(t *testing.T) {
	skipOnDeployment(t)
	t.Parallel()
	total := 0
	for _, seed := range seedsFromEnv(t, 1, 2, 3) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			srv := newProofServer(t, proofOptions{})
			w := workload{
				seed:             seed,
				clients:          12,
				opsPerClient:     opsFromEnv(t, 230),
				keys:             proofKeys,
				timeout:          30 * time.Second,
				idempotencyShare: 0.5,
			}
			begin := time.Now()
			records := w.run(t, srv)
			t.Logf("%d operations by %d clients on %d keys in %s", len(records), w.clients, len(w.keys), time.Since(begin).Round(time.Millisecond))
			answers := tally{}
			unknown, acked := 0, 0
			for _, r := range records {
				answers[r.outcome()]++
				if acknowledgedWrite(r) {
					acked++
				}
				if r.out.Unknown && r.violation == nil {
					unknown++
					t.Logf("unknown outcome without faults: request: %s\n      got: %s", r.req, r.attempts[len(r.attempts)-1])
				}
			}
			// Nothing is faulted, but a loaded machine may still stall a
			// request past its budget or its lease (503, as documented);
			// more than a few such answers is a bug, not load.
			if unknown > len(records)/50 {
				t.Errorf("%d of %d answers were unknown (503 or none) from a healthy server", unknown, len(records))
			}
			t.Logf("answers: %s", answers)
			reportViolations(t, records)
			srv.reportServerChecks(t)
			ops := history(records, 3*time.Second)
			if checkHistory(t, t.Name(), ops, time.Minute) {
				t.Logf("acknowledged writes verified (linearizable, read back by later operations): %d", acked)
			}
			total += len(ops)
		})
	}
	t.Logf("operations checked: %d", total)
}
