package benchmark

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stampede-cache/stampede/internal/dynamolocal"
)

// repoRoot is the module root, two levels up from this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("no go.mod at %s: %v", dir, err)
	}
	return dir
}

// TestRunSmoke runs the service sections end to end at tiny sizes and
// writes the document and charts, so the command cannot rot. It checks
// that every figure the document needs was produced, not what the figures
// are. Under `make test` it uses the shared DynamoDB Local; alone, it
// starts its own as the command does.
func TestRunSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts DynamoDB Local: skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := Run(ctx, Options{
		ServerPath:       &ServerPathOptions{Concurrency: []int{1, 2}, OpsSerial: 4, OpsParallel: 4, Rounds: 2, Warmup: 2},
		Herd:             &HerdOptions{Sizes: []int{2}, Computations: []time.Duration{50 * time.Millisecond}, Timeout: 2 * time.Minute, LongPolling: true},
		Rate:             &RateOptions{Rates: []int{20}, Duration: 500 * time.Millisecond, Warmup: 100 * time.Millisecond, HotKeys: 2, WriteEvery: 100 * time.Millisecond, MaxInFlight: 16},
		Logf:             t.Logf,
		DynamoDBEndpoint: os.Getenv(dynamolocal.EndpointEnv),
	})
	if err != nil {
		t.Fatal(err)
	}

	sp := rep.ServerPath
	if sp == nil || len(sp.Ops) != 2*len((&bench{}).operations()) {
		t.Fatalf("server path: want every operation at both concurrencies, got %+v", sp)
	}
	for _, o := range sp.Ops {
		if o.Raw.Count == 0 || o.Server.Count == 0 || (o.Concurrency == 1 && o.Handler.Count == 0) {
			t.Errorf("%s at %d: a path has no samples: %+v", o.Op, o.Concurrency, o)
		}
		// A busy machine may answer a few requests with 503; a broken
		// set-up answers them all wrongly.
		for path, st := range map[string]PathStats{pathRaw: o.Raw, pathHandler: o.Handler, pathServer: o.Server} {
			if st.Count > 0 && st.Unexpected == st.Count {
				t.Errorf("%s at %d on the %s path: every answer was unexpected (set-up broken?)", o.Op, o.Concurrency, path)
			}
		}
		if o.Raw.DynamoDBPerOp < 1 {
			t.Errorf("%s at %d: the raw path sent %.2f DynamoDB requests per operation, want the captured one each time", o.Op, o.Concurrency, o.Raw.DynamoDBPerOp)
		}
	}
	if len(sp.Hop) != 2 {
		t.Errorf("want the hop measured at both concurrencies, got %+v", sp.Hop)
	}
	if len(rep.Herds) != 2 || rep.Herds[0].Errors+rep.Herds[1].Errors != 0 || rep.Herds[0].Computations < 1 || !rep.Herds[1].LongPolling {
		t.Errorf("herd: %+v", rep.Herds)
	}
	if len(rep.Rates) != 1 || rep.Rates[0].Scheduled == 0 || rep.Rates[0].Latencies.Count == 0 {
		t.Errorf("rate: %+v", rep.Rates)
	}

	checkWritten(t, rep, "## 1.", "## 2.", "## 3.")
}

// TestLambdaInitSmoke builds one function and the two floors and starts
// each under the Lambda Runtime API harness.
func TestLambdaInitSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Lambda binaries: skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	rep, err := Run(ctx, Options{
		Lambda: &LambdaOptions{RepoDir: repoRoot(t), Functions: []string{"./functions/get"}, Runs: 1},
		Logf:   t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	l := rep.Lambda
	if l == nil || len(l.Binaries) != 4 {
		t.Fatalf("want get, the floor, the request floor and hello, got %+v", l)
	}
	kinds := map[string]bool{}
	for _, b := range l.Binaries {
		kinds[b.Kind] = true
		if b.SizeBytes == 0 || b.Init <= 0 || b.InitCABundle <= 0 || b.PackageInit <= 0 {
			t.Errorf("%s: missing figures: %+v", b.Name, b)
		}
	}
	if !kinds["function"] || !kinds["floor"] || !kinds["request floor"] || !kinds["hello"] {
		t.Errorf("kinds: %v", kinds)
	}
	checkWritten(t, rep, "## 4.")
}

// checkWritten renders the document and charts and checks the sections
// are there.
func checkWritten(t *testing.T, rep *Report, sections ...string) {
	t.Helper()
	dir := t.TempDir()
	if _, err := WriteCharts(dir, rep, rep); err != nil {
		t.Fatal(err)
	}
	var doc bytes.Buffer
	if err := WriteMarkdown(&doc, rep, rep, "performance"); err != nil {
		t.Fatal(err)
	}
	for _, s := range sections {
		if !strings.Contains(doc.String(), s) {
			t.Errorf("the document lacks section %q:\n%s", s, doc.String())
		}
	}
	if !strings.Contains(doc.String(), "before:") {
		t.Error("with an earlier run given, the document has no \"before\" column")
	}
}
