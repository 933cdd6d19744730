package lambdaharness_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/stampede-cache/stampede/internal/lambdaharness"
)

// envRole makes the test binary act as a Lambda function.
const envRole = "LAMBDAHARNESS_TEST_ROLE"

func TestMain(m *testing.M) {
	switch os.Getenv(envRole) {
	case "echo":
		fmt.Println("init")
		lambda.Start(echo)
	case "crash":
		fmt.Println("crashing during init")
		os.Exit(3)
	default:
		os.Exit(m.Run())
	}
}

// echo answers its event with the request id, the time left before the
// deadline, and the event; an event {"fail":"…"} fails with that message.
func echo(ctx context.Context, event json.RawMessage) (any, error) {
	var in struct{ Fail string }
	_ = json.Unmarshal(event, &in)
	if in.Fail != "" {
		return nil, errors.New(in.Fail)
	}
	lc, _ := lambdacontext.FromContext(ctx)
	deadline, _ := ctx.Deadline()
	return map[string]any{
		"request_id": lc.AwsRequestID,
		"left_ms":    time.Until(deadline).Milliseconds(),
		"event":      event,
		"env":        os.Getenv("EXTRA"),
		"function":   lambdacontext.FunctionName,
	}, nil
}

func start(t *testing.T, role string, opts lambdaharness.Options) *lambdaharness.Function {
	t.Helper()
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	opts.Env = append(opts.Env, envRole+"="+role)
	f, err := lambdaharness.Start(bin, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	return f
}

func TestInvoke(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f := start(t, "echo", lambdaharness.Options{Name: "echoer", Env: []string{"EXTRA=x"}, Deadline: time.Minute})
	initTime, err := f.WaitInit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if initTime <= 0 {
		t.Errorf("init took %v", initTime)
	}
	if f.Pid() <= 0 {
		t.Errorf("pid %d", f.Pid())
	}
	ids := map[string]bool{}
	for i := range 3 {
		r, err := f.Invoke(ctx, []byte(fmt.Sprintf(`{"n":%d}`, i)))
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			RequestID string          `json:"request_id"`
			LeftMS    int64           `json:"left_ms"`
			Event     json.RawMessage `json:"event"`
			Env       string          `json:"env"`
			Function  string          `json:"function"`
		}
		if err := json.Unmarshal(r.Body, &out); err != nil || r.Error {
			t.Fatalf("reply %+v: %v", r, err)
		}
		if out.RequestID == "" || ids[out.RequestID] {
			t.Errorf("request id %q: empty or reused", out.RequestID)
		}
		ids[out.RequestID] = true
		if out.LeftMS <= 0 || out.LeftMS > time.Minute.Milliseconds() {
			t.Errorf("time left %d ms, want within the minute's deadline", out.LeftMS)
		}
		if string(out.Event) != fmt.Sprintf(`{"n":%d}`, i) || out.Env != "x" || out.Function != "echoer" {
			t.Errorf("reply %s", r.Body)
		}
		if r.Latency <= 0 {
			t.Errorf("latency %v", r.Latency)
		}
	}
	r, err := f.Invoke(ctx, []byte(`{"fail":"on purpose"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !r.Error || !strings.Contains(string(r.Body), "on purpose") || !strings.Contains(string(r.Body), "errorType") {
		t.Errorf("failure reply %+v %s", r, r.Body)
	}
	if lines := f.Logs.Lines(); len(lines) == 0 || lines[0] != "init" {
		t.Errorf("logs %q", f.Logs.String())
	}
}

func TestInitFailure(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f := start(t, "crash", lambdaharness.Options{})
	_, err := f.WaitInit(ctx)
	if err == nil || !strings.Contains(err.Error(), "exited during init") || !strings.Contains(err.Error(), "crashing during init") {
		t.Fatalf("WaitInit: %v", err)
	}
	if _, err := f.Invoke(ctx, []byte(`{}`)); err == nil {
		t.Fatal("Invoke of an exited function succeeded")
	}
}
