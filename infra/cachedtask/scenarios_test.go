package cachedtask_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	sfn "github.com/aws/aws-cdk-go/awscdk/v2/awsstepfunctions"
	tasks "github.com/aws/aws-cdk-go/awscdk/v2/awsstepfunctionstasks"
	"github.com/aws/jsii-runtime-go"

	"github.com/stampede-cache/stampede/infra/cachedtask"
)

// repoRoot is the repository holding this module: the root module's
// stampede-direct serves the real handlers.
const repoRoot = "../.."

// scenarioCount is how many scenarios testdata/scenarios.mjs runs.
const scenarioCount = 15

// TestScenarios runs the construct's definition in an independent ASL
// interpreter (aws-local-stepfunctions, pinned in infra/package.json)
// against Stampede's real handlers: stampede-direct (cmd/stampede-direct in
// the root module) serves each function's transport.Handler.Invoke over
// DynamoDB Local, on a clock the interpreter's virtual time moves. The
// scenarios (testdata/scenarios.mjs): miss, hit, contention, a holder's
// own heartbeat, holder death, throttling and throttling beyond the
// retries, a lost answer and its control, a 5-minute task, a failing task,
// a lost race, heartbeats failing until the key changes hands, the state
// machine timeout, and ResultPath merging. Throttling and lost answers are
// injected in the interpreter's task overrides (a real engine cannot
// produce them); everything else is the service's own behaviour.
//
// It needs `npm ci --prefix infra` (make test-infra runs it), Java for
// DynamoDB Local, and the repository around this module.
func TestScenarios(t *testing.T) {
	if _, err := os.Stat(filepath.Join("..", "node_modules", "aws-local-stepfunctions")); err != nil {
		t.Skip("aws-local-stepfunctions is not installed: run npm ci --prefix infra (make test-infra does)")
	}
	if _, err := os.Stat(filepath.Join(repoRoot, "cmd", "stampede-direct")); err != nil {
		t.Skip("not inside the Stampede repository: cmd/stampede-direct serves the real handlers")
	}
	dir := t.TempDir()
	defs := map[string]any{}
	for name, resultPath := range map[string]string{"default": "", "merge": "$.cache"} {
		defs[name] = asl(t, scenarioConstruct(resultPath))
	}
	defsFile := filepath.Join(dir, "definitions.json")
	writeJSON(t, defsFile, defs)

	url := startDirectServer(t, dir)
	requireIdempotencyKeys(t, url)

	ctx, cancel := context.WithTimeout(context.Background(), 7*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join("testdata", "scenarios.mjs"), url, defsFile)
	out, err := cmd.CombinedOutput()
	t.Logf("scenarios against the real handlers:\n%s", out)
	if err != nil {
		t.Fatalf("scenarios failed: %v", err)
	}
	passed := 0
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "ok   ") {
			passed++
		}
	}
	if passed != scenarioCount {
		t.Errorf("%d scenarios passed, want %d", passed, scenarioCount)
	}
}

// scenarioConstruct is the construct the scenarios drive: id "C", around a
// Lambda task "Work" with a 15-minute timeout (the interpreter's default
// task timeout is 60 s; Step Functions has none).
func scenarioConstruct(resultPath string) func(awscdk.Stack, map[string]awslambda.IFunction) sfn.IChainable {
	return func(stack awscdk.Stack, fns map[string]awslambda.IFunction) sfn.IChainable {
		work := tasks.NewLambdaInvoke(stack, jsii.String("Work"), &tasks.LambdaInvokeProps{
			LambdaFunction:      awslambda.Function_FromFunctionArn(stack, jsii.String("WorkFn"), jsii.String(arnPrefix+"work")),
			PayloadResponseOnly: jsii.Bool(true),
			TaskTimeout:         sfn.Timeout_Duration(awscdk.Duration_Minutes(jsii.Number(15))),
		})
		p := props(fns, work)
		p.OutputURIPath = "$.uri"
		p.MetadataPath = "$.metadata"
		p.ResultPath = resultPath
		return cachedtask.New(stack, "C", p)
	}
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// startDirectServer builds and starts stampede-direct (which starts its
// own DynamoDB Local) and returns its URL; it stops when the test ends.
func startDirectServer(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "stampede-direct")
	build := exec.Command("go", "build", "-o", bin, "./cmd/stampede-direct")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build stampede-direct: %v\n%s", err, out)
	}
	logFile, err := os.Create(filepath.Join(dir, "stampede-direct.log"))
	if err != nil {
		t.Fatal(err)
	}
	srv := exec.Command(bin, "-log-level", "warn")
	srv.Dir = repoRoot // where scripts/dynamodb-local.sh is found
	// The lease the scenarios reason about: heartbeats of at most 10 s,
	// leases of three heartbeats.
	srv.Env = append(os.Environ(), "STAMPEDE_MAX_HEARTBEAT_SECONDS=10", "STAMPEDE_HEARTBEAT_MULTIPLIER=3",
		// A generous real-time budget per request: DynamoDB Local can be
		// slow on a loaded machine (its first write compiles its code),
		// and the scenarios' time is virtual anyway.
		"STAMPEDE_REQUEST_TIMEOUT=1m")
	srv.Stderr = logFile
	stdin, err := srv.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	t.Cleanup(func() {
		stdin.Close() // stampede-direct stops when its stdin closes
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = srv.Process.Kill()
			<-exited
		}
		logFile.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logFile.Name()); err == nil {
				t.Logf("stampede-direct's log:\n%s", tail(b, 8000))
			}
		}
	})
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case l, ok := <-line:
		var ready struct{ URL string }
		if !ok || json.Unmarshal([]byte(l), &ready) != nil || ready.URL == "" {
			b, _ := os.ReadFile(logFile.Name())
			t.Fatalf("stampede-direct did not start (%q):\n%s", l, b)
		}
		return ready.URL
	case <-time.After(5 * time.Minute):
		t.Fatal("stampede-direct did not start within 5 minutes")
	}
	return ""
}

// requireIdempotencyKeys skips the test while the service refuses the
// put's idempotency_key (issue 11's server side not merged yet): every
// scenario that stores an entry sends one.
func requireIdempotencyKeys(t *testing.T, url string) {
	t.Helper()
	body := `{"project":"ml","domain":"dev","key":"idempotency-probe","output_uri":"s3://stampede-outputs/ml/dev/probe","idempotency_key":"probe-1"}`
	resp, err := http.Post(url+"/invoke/put", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if bytes.Contains(b, []byte("Stampede.InvalidArgument")) && bytes.Contains(b, []byte("idempotency_key")) {
		t.Skipf("the service does not take idempotency_key yet (%s): the construct's put-and-release sends one", b)
	}
	if !bytes.Contains(b, []byte(`"result"`)) {
		t.Fatalf("probe put: %s", b)
	}
}

func tail(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return fmt.Sprintf("…%s", b[len(b)-n:])
}
