package cachedtask_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	sfn "github.com/aws/aws-cdk-go/awscdk/v2/awsstepfunctions"
	"github.com/aws/jsii-runtime-go"

	"github.com/stampede-cache/stampede/infra/cachedtask"
)

const arnPrefix = "arn:aws:lambda:eu-west-1:123456789012:function:stampede-"

// asl synthesizes a stack holding one state machine built by build and
// returns its definition, parsed.
func asl(t *testing.T, build func(stack awscdk.Stack, fns map[string]awslambda.IFunction) sfn.IChainable) map[string]any {
	t.Helper()
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(t.TempDir())})
	stack := awscdk.NewStack(app, jsii.String("Test"), &awscdk.StackProps{
		Env: &awscdk.Environment{Account: jsii.String("123456789012"), Region: jsii.String("eu-west-1")},
	})
	fns := map[string]awslambda.IFunction{}
	for _, op := range []string{"get", "put", "reserve", "release"} {
		fns[op] = awslambda.Function_FromFunctionArn(stack, jsii.String("Fn-"+op), jsii.String(arnPrefix+op))
	}
	sfn.NewStateMachine(stack, jsii.String("SM"), &sfn.StateMachineProps{
		DefinitionBody: sfn.DefinitionBody_FromChainable(build(stack, fns)),
	})
	tpl := assertions.Template_FromStack(stack, nil)
	sms := *tpl.FindResources(jsii.String("AWS::StepFunctions::StateMachine"), nil)
	if len(sms) != 1 {
		t.Fatalf("want 1 state machine, got %d", len(sms))
	}
	for _, r := range sms {
		def := (*r)["Properties"].(map[string]any)["DefinitionString"]
		var s string
		switch d := def.(type) {
		case string:
			s = d
		case map[string]any: // {"Fn::Join": ["", [parts...]]}
			for _, part := range d["Fn::Join"].([]any)[1].([]any) {
				if ps, ok := part.(string); ok {
					s += ps
				} else {
					s += "TOKEN"
				}
			}
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatalf("definition is not JSON: %v\n%s", err, s)
		}
		return m
	}
	return nil
}

func props(fns map[string]awslambda.IFunction, task sfn.IChainable) *cachedtask.Props {
	return &cachedtask.Props{
		GetFunction:     fns["get"],
		PutFunction:     fns["put"],
		ReserveFunction: fns["reserve"],
		ReleaseFunction: fns["release"],
		Project:         "ml",
		Domain:          "dev",
		KeyPath:         "$.key",
		Task:            task,
	}
}

func topState(t *testing.T, def map[string]any, name string) map[string]any {
	t.Helper()
	s, ok := def["States"].(map[string]any)[name].(map[string]any)
	if !ok {
		names := []string{}
		for n := range def["States"].(map[string]any) {
			names = append(names, n)
		}
		t.Fatalf("no state %q; have %q", name, names)
	}
	return s
}

// states returns every state of the definition, those of Parallel
// branches included, by name.
func states(def map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for name, st := range def["States"].(map[string]any) {
		s := st.(map[string]any)
		out[name] = s
		for _, b := range list(s["Branches"]) {
			for n, bs := range states(b.(map[string]any)) {
				out[n] = bs
			}
		}
	}
	return out
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

func TestProtocolStructure(t *testing.T) {
	def := asl(t, func(stack awscdk.Stack, fns map[string]awslambda.IFunction) sfn.IChainable {
		task := sfn.NewPass(stack, jsii.String("Work"), &sfn.PassProps{
			Parameters: &map[string]any{"uri": sfn.JsonPath_Format(jsii.String("s3://b/{}"), sfn.JsonPath_StringAt(jsii.String("$.key")))},
		})
		p := props(fns, task)
		p.OutputURIPath = "$.uri"
		p.HeartbeatSeconds = 4.2
		ct := cachedtask.New(stack, "C", p)
		return sfn.Chain_Start(ct).Next(sfn.NewSucceed(stack, jsii.String("End"), nil))
	})
	all := states(def)
	st := func(name string) map[string]any {
		t.Helper()
		s, ok := all[name]
		if !ok {
			t.Fatalf("no state %q", name)
		}
		return s
	}
	if got := def["StartAt"]; got != "C: Prepare" {
		t.Errorf("StartAt = %v", got)
	}
	next := map[string]string{ // state → its Next
		"C: Prepare":                "C: Get",
		"C: Get":                    "C: Cache hit?",
		"C: Reserve":                "C: Reservation acquired?",
		"C: Wait for the holder":    "C: Get",
		"C: Task input":             "Work",
		"Work":                      "C: Task output",
		"C: Task output":            "C: Encode the task output",
		"C: Encode the task output": "C: Task finished",
		"C: Wait one heartbeat":     "C: Heartbeat",
		"C: Heartbeat":              "C: Still held?",
		"C: Decode the task output": "C: Put and release",
		"C: Put and release":        "C: Done",
		"C: Release after failure":  "C: Failed",
		"C: Release and look up":    "C: Get",
		"C: Done":                   "End",
	}
	for name, want := range next {
		if got := st(name)["Next"]; got != want {
			t.Errorf("%s.Next = %v, want %s", name, got, want)
		}
	}

	hit := st("C: Cache hit?")
	choice := hit["Choices"].([]any)[0].(map[string]any)
	if choice["Variable"] != "$.lookup.found" || choice["BooleanEquals"] != true || choice["Next"] != "C: Done" || hit["Default"] != "C: Reserve" {
		t.Errorf("cache hit choice: %v", hit)
	}
	acq := st("C: Reservation acquired?")
	choice = acq["Choices"].([]any)[0].(map[string]any)
	if choice["Variable"] != "$.reservation.acquired" || choice["Next"] != "C: Run task" || acq["Default"] != "C: Wait for the holder" {
		t.Errorf("acquired choice: %v", acq)
	}
	// Waits follow the reservation the service answered with (the holder's
	// interval, or the one granted to this execution), not a constant.
	for _, name := range []string{"C: Wait for the holder", "C: Wait one heartbeat"} {
		if w := st(name); w["SecondsPath"] != "$.reservation.reservation.heartbeat_interval_seconds" || w["Seconds"] != nil {
			t.Errorf("%s = %v", name, w)
		}
	}

	reserve := st("C: Reserve")
	if reserve["Resource"] != arnPrefix+"reserve" {
		t.Errorf("reserve resource = %v", reserve["Resource"])
	}
	params := reserve["Parameters"].(map[string]any)
	if params["owner_id.$"] != "$$.Execution.Id" || params["heartbeat_interval_seconds"] != 5.0 || params["key.$"] != "$.key" || params["project.$"] != "$.project" {
		t.Errorf("reserve parameters = %v (want 4.2 s asked as 5)", params)
	}
	prep := st("C: Prepare")["Parameters"].(map[string]any)
	if prep["project"] != "ml" || prep["domain"] != "dev" || prep["key.$"] != "$.key" || prep["input.$"] != "$" {
		t.Errorf("prepare parameters = %v", prep)
	}

	// The Parallel: the task's branch and the heartbeat loop, ended by the
	// task's "finished" signal, which carries its output.
	run := st("C: Run task")
	branches := list(run["Branches"])
	if run["Type"] != "Parallel" || len(branches) != 2 || run["Next"] != nil ||
		branches[0].(map[string]any)["StartAt"] != "C: Task input" || branches[1].(map[string]any)["StartAt"] != "C: Wait one heartbeat" {
		t.Errorf("run = %v", run)
	}
	if in := st("C: Task input"); in["InputPath"] != "$.input" {
		t.Errorf("task input = %v", in)
	}
	if sel := st("C: Task output")["Parameters"].(map[string]any); sel["output_uri.$"] != "$.uri" {
		t.Errorf("task output = %v", sel)
	}
	if enc := st("C: Encode the task output")["Parameters"].(map[string]any); enc["encoded.$"] != "States.JsonToString($)" {
		t.Errorf("encode = %v", enc)
	}
	if f := st("C: Task finished"); f["Type"] != "Fail" || f["Error"] != cachedtask.ErrTaskFinished || f["CausePath"] != "$.encoded" {
		t.Errorf("task finished = %v", f)
	}
	catches := list(run["Catch"])
	if len(catches) != 2 || fmt.Sprint(catches[0].(map[string]any)["ErrorEquals"]) != "["+cachedtask.ErrTaskFinished+"]" ||
		catches[0].(map[string]any)["Next"] != "C: Decode the task output" || catches[0].(map[string]any)["ResultPath"] != "$.run" ||
		catches[1].(map[string]any)["Next"] != "C: Release after failure" || catches[1].(map[string]any)["ResultPath"] != "$.error" {
		t.Errorf("run catches = %v", catches)
	}
	if dec := st("C: Decode the task output"); dec["Parameters"].(map[string]any)["output.$"] != "States.StringToJson($.run.Cause)" || dec["ResultPath"] != "$.task" {
		t.Errorf("decode = %v", dec)
	}
	beat := st("C: Heartbeat")
	if p := beat["Parameters"].(map[string]any); beat["Resource"] != arnPrefix+"reserve" || p["owner_id.$"] != "$$.Execution.Id" ||
		p["heartbeat_interval_seconds.$"] != "$.reservation.reservation.heartbeat_interval_seconds" || beat["ResultPath"] != "$.heartbeat" {
		t.Errorf("heartbeat = %v", beat)
	}
	if c := list(beat["Catch"]); len(c) != 1 || c[0].(map[string]any)["Next"] != "C: Wait one heartbeat" {
		t.Errorf("a failed heartbeat must be tried again at the next turn: %v", c)
	}
	held := st("C: Still held?")
	rule := held["Choices"].([]any)[0].(map[string]any)
	and := fmt.Sprint(rule["And"])
	if rule["Next"] != "C: Wait one heartbeat" || held["Default"] != "C: Reservation lost" ||
		!strings.Contains(and, "Variable:$.heartbeat.acquired") || !strings.Contains(and, "NumericEqualsPath:$.reservation.reservation.fence") {
		t.Errorf("still held = %v", held)
	}
	if f := st("C: Reservation lost"); f["Type"] != "Fail" || f["Error"] != cachedtask.ErrReservationLost {
		t.Errorf("reservation lost = %v", f)
	}

	put := st("C: Put and release")
	if put["Resource"] != arnPrefix+"put" {
		t.Errorf("put resource = %v", put["Resource"])
	}
	// Fenced by the reservation this execution holds, released in the same
	// write, with an idempotency key stable across retries.
	if p := put["Parameters"].(map[string]any); p["output_uri.$"] != "$.task.output.output_uri" || p["owner_id.$"] != "$$.Execution.Id" ||
		p["fence.$"] != "$.reservation.reservation.fence" || p["release"] != true || p["verify_output"] != nil ||
		p["idempotency_key.$"] != "States.Hash(States.Format('{}#{}#{}#{}#{}', $$.Execution.Id, $.project, $.domain, $.key, $.reservation.reservation.fence), 'SHA-256')" {
		t.Errorf("put parameters = %v", p)
	}
	if sel := put["ResultSelector"].(map[string]any); sel["found"] != true || sel["entry.$"] != "$" || put["ResultPath"] != "$.lookup" {
		t.Errorf("put result = %v, %v", sel, put["ResultPath"])
	}
	catches = list(put["Catch"])
	if len(catches) != 2 || catches[0].(map[string]any)["Next"] != "C: Release and look up" || fmt.Sprint(catches[0].(map[string]any)["ErrorEquals"]) != "[Stampede.AlreadyExists]" {
		t.Errorf("put catches = %v", catches)
	}
	fail := st("C: Failed")
	if fail["Type"] != "Fail" || fail["ErrorPath"] != "$.error.Error" || fail["CausePath"] != "$.error.Cause" {
		t.Errorf("fail = %v", fail)
	}
	for _, name := range []string{"C: Release after failure", "C: Release and look up"} {
		s := st(name)
		if s["Resource"] != arnPrefix+"release" || s["Parameters"].(map[string]any)["owner_id.$"] != "$$.Execution.Id" {
			t.Errorf("%s = %v", name, s)
		}
		if _, ok := s["ResultPath"]; !ok || s["ResultPath"] != nil {
			t.Errorf("%s must discard its result, ResultPath = %v", name, s["ResultPath"])
		}
	}
	// Failures on the way release whatever may be held, then fail.
	for _, name := range []string{"C: Get", "C: Reserve", "C: Put and release"} {
		c := list(st(name)["Catch"])
		last := c[len(c)-1].(map[string]any)
		if fmt.Sprint(last["ErrorEquals"]) != "[States.ALL]" || last["Next"] != "C: Release after failure" || last["ResultPath"] != "$.error" {
			t.Errorf("%s catch = %v", name, c)
		}
	}
	if d := st("C: Done"); d["InputPath"] != "$.lookup.entry" {
		t.Errorf("done = %v", d)
	}
}

// TestRetries checks that every call to Stampede retries the Lambda
// service's transient errors and the service's own with exponential
// backoff and full jitter, and that a heartbeat's retries fit in one
// heartbeat interval.
func TestRetries(t *testing.T) {
	for _, tc := range []struct {
		heartbeat             float64
		beatAttempts, beatMax float64
	}{
		{1, 1, 1}, {4.2, 2, 5}, {10, 3, 10}, {60, 5, 60},
	} {
		t.Run(fmt.Sprint(tc.heartbeat), func(t *testing.T) {
			def := asl(t, func(stack awscdk.Stack, fns map[string]awslambda.IFunction) sfn.IChainable {
				p := props(fns, sfn.NewPass(stack, jsii.String("Work"), nil))
				p.HeartbeatSeconds = tc.heartbeat
				return cachedtask.New(stack, "C", p)
			})
			want := []any{"Lambda.TooManyRequestsException", "Lambda.ServiceException", "Lambda.AWSLambdaException",
				"Lambda.SdkClientException", "Lambda.ClientExecutionTimeoutException", "Stampede.Throttled", "Stampede.Unavailable"}
			calls := 0
			for name, s := range states(def) {
				if s["Type"] != "Task" {
					continue
				}
				calls++
				retries := list(s["Retry"])
				if len(retries) != 1 {
					t.Errorf("%s: %d retriers, want 1: %v", name, len(retries), retries)
					continue
				}
				r := retries[0].(map[string]any)
				attempts, maxDelay := 6.0, 20.0
				if name == "C: Heartbeat" {
					attempts, maxDelay = tc.beatAttempts, tc.beatMax
				}
				if fmt.Sprint(r["ErrorEquals"]) != fmt.Sprint(want) || r["JitterStrategy"] != "FULL" || r["BackoffRate"] != 2.0 ||
					r["IntervalSeconds"] != 1.0 || r["MaxAttempts"] != attempts || r["MaxDelaySeconds"] != maxDelay {
					t.Errorf("%s: retry %v, want %v with %v attempts up to %v s, full jitter", name, r, want, attempts, maxDelay)
				}
			}
			if calls != 6 {
				t.Errorf("%d task states, want 6 (get, reserve, heartbeat, put, two releases)", calls)
			}
		})
	}
}

func TestResultPath(t *testing.T) {
	for _, tc := range []struct {
		resultPath string
		want       map[string]any
	}{
		{"", map[string]any{"InputPath": "$.lookup.entry"}},
		{"$.cache.entry", map[string]any{"InputPath": "$.lookup.entry", "ResultPath": "$.input.cache.entry", "OutputPath": "$.input"}},
		{*sfn.JsonPath_DISCARD(), map[string]any{"OutputPath": "$.input"}},
	} {
		t.Run(strings.NewReplacer("$", "", ".", "_").Replace(tc.resultPath), func(t *testing.T) {
			def := asl(t, func(stack awscdk.Stack, fns map[string]awslambda.IFunction) sfn.IChainable {
				p := props(fns, sfn.NewPass(stack, jsii.String("Work"), nil))
				p.ResultPath = tc.resultPath
				p.StateNamePrefix = "X."
				return cachedtask.New(stack, "C", p)
			})
			done := topState(t, def, "X.Done")
			for k, v := range tc.want {
				if done[k] != v {
					t.Errorf("Done.%s = %v, want %v", k, done[k], v)
				}
			}
			if _, ok := done["Next"]; ok || done["End"] != true {
				t.Errorf("Done must end the machine: %v", done)
			}
		})
	}
}

func TestValidation(t *testing.T) {
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(t.TempDir())})
	stack := awscdk.NewStack(app, jsii.String("V"), nil)
	fn := awslambda.Function_FromFunctionArn(stack, jsii.String("F"), jsii.String(arnPrefix+"x"))
	fns := map[string]awslambda.IFunction{"get": fn, "put": fn, "reserve": fn, "release": fn}
	for name, mutate := range map[string]func(*cachedtask.Props){
		"no key path":     func(p *cachedtask.Props) { p.KeyPath = "key" },
		"no task":         func(p *cachedtask.Props) { p.Task = nil },
		"no function":     func(p *cachedtask.Props) { p.PutFunction = nil },
		"bad result path": func(p *cachedtask.Props) { p.ResultPath = "$.a[0]" },
	} {
		t.Run(name, func(t *testing.T) {
			p := props(fns, sfn.NewPass(stack, jsii.String("W"+strings.ReplaceAll(name, " ", "")), nil))
			mutate(p)
			defer func() {
				if recover() == nil {
					t.Errorf("New accepted invalid props")
				}
			}()
			cachedtask.New(stack, "C"+strings.ReplaceAll(name, " ", ""), p)
		})
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	jsii.Close() // stops the node process and removes its temp dir
	os.Exit(code)
}

func TestProjectAndDomainFromInput(t *testing.T) {
	def := asl(t, func(stack awscdk.Stack, fns map[string]awslambda.IFunction) sfn.IChainable {
		p := props(fns, sfn.NewPass(stack, jsii.String("Work"), nil))
		p.Project = *sfn.JsonPath_StringAt(jsii.String("$.meta.project"))
		p.Domain = *sfn.JsonPath_StringAt(jsii.String("$.meta.domain"))
		return cachedtask.New(stack, "C", p)
	})
	prep := topState(t, def, "C: Prepare")["Parameters"].(map[string]any)
	if prep["project.$"] != "$.meta.project" || prep["domain.$"] != "$.meta.domain" {
		t.Errorf("prepare parameters = %v", prep)
	}
}

// historyEvents is how many events a state adds to a Standard execution's
// history when it runs once without error: Entered and Exited, plus
// LambdaFunctionScheduled, Started and Succeeded for a Lambda task.
func historyEvents(s map[string]any) int {
	if s["Type"] == "Task" {
		return 5
	}
	return 2
}

// loopEvents follows the loop from start (Next, a Choice's Default, or with
// viaChoice a Choice's first rule) back to start and counts its events.
func loopEvents(t *testing.T, all map[string]map[string]any, start string, viaChoice bool) int {
	t.Helper()
	events, name := 0, start
	for i := 0; i < 10; i++ {
		s := all[name]
		events += historyEvents(s)
		switch {
		case s["Type"] == "Choice" && viaChoice:
			name = s["Choices"].([]any)[0].(map[string]any)["Next"].(string)
		case s["Type"] == "Choice":
			name = s["Default"].(string)
		default:
			name = s["Next"].(string)
		}
		if name == start {
			return events
		}
	}
	t.Fatalf("no loop from %s", start)
	return 0
}

// TestHistoryBudget computes how many turns of each loop fit in a Standard
// execution's history (25,000 events) and checks docs/step-functions.md
// states those figures.
func TestHistoryBudget(t *testing.T) {
	def := asl(t, func(stack awscdk.Stack, fns map[string]awslambda.IFunction) sfn.IChainable {
		return cachedtask.New(stack, "C", props(fns, sfn.NewPass(stack, jsii.String("Work"), nil)))
	})
	all := states(def)
	const limit = 25000
	wait := loopEvents(t, all, "C: Get", false)               // get, hit?, reserve, acquired?, wait
	beat := loopEvents(t, all, "C: Wait one heartbeat", true) // wait, heartbeat, still held?
	if wait != 16 || beat != 9 {
		t.Errorf("events per turn: wait loop %d, heartbeat loop %d; update docs/step-functions.md", wait, beat)
	}
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "step-functions.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(string(doc)), " ") // lines rewrapped
	for _, figure := range []string{
		fmt.Sprintf("%d events per turn", wait), thousands(limit / wait),
		fmt.Sprintf("%d events per heartbeat", beat), thousands(limit / beat),
	} {
		if !strings.Contains(text, figure) {
			t.Errorf("docs/step-functions.md does not say %q", figure)
		}
	}
}

// thousands formats n with a comma every three digits, as the docs do.
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
