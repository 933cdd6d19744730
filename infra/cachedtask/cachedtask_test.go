package cachedtask_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	sfn "github.com/aws/aws-cdk-go/awscdk/v2/awsstepfunctions"
	tasks "github.com/aws/aws-cdk-go/awscdk/v2/awsstepfunctionstasks"
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

func state(t *testing.T, def map[string]any, name string) map[string]any {
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
	if got := def["StartAt"]; got != "C: Prepare" {
		t.Errorf("StartAt = %v", got)
	}
	want := map[string]string{ // state → its Next
		"C: Prepare":               "C: Get",
		"C: Get":                   "C: Cache hit?",
		"C: Reserve":               "C: Reservation acquired?",
		"C: Wait for the holder":   "C: Get",
		"C: Run task":              "C: Put and release",
		"C: Put and release":       "C: Done",
		"C: Release after failure": "C: Failed",
		"C: Release and look up":   "C: Get",
		"C: Done":                  "End",
	}
	for name, next := range want {
		if got := state(t, def, name)["Next"]; got != next {
			t.Errorf("%s.Next = %v, want %s", name, got, next)
		}
	}

	hit := state(t, def, "C: Cache hit?")
	choice := hit["Choices"].([]any)[0].(map[string]any)
	if choice["Variable"] != "$.lookup.found" || choice["BooleanEquals"] != true || choice["Next"] != "C: Done" || hit["Default"] != "C: Reserve" {
		t.Errorf("cache hit choice: %v", hit)
	}
	acq := state(t, def, "C: Reservation acquired?")
	choice = acq["Choices"].([]any)[0].(map[string]any)
	if choice["Variable"] != "$.reservation.acquired" || choice["Next"] != "C: Run task" || acq["Default"] != "C: Wait for the holder" {
		t.Errorf("acquired choice: %v", acq)
	}
	if w := state(t, def, "C: Wait for the holder"); w["Seconds"] != 5.0 {
		t.Errorf("wait = %v, want 5 s (4.2 rounded up)", w["Seconds"])
	}

	reserve := state(t, def, "C: Reserve")
	if reserve["Resource"] != arnPrefix+"reserve" {
		t.Errorf("reserve resource = %v", reserve["Resource"])
	}
	params := reserve["Parameters"].(map[string]any)
	if params["owner_id.$"] != "$$.Execution.Id" || params["heartbeat_interval_seconds"] != 5.0 || params["key.$"] != "$.key" || params["project.$"] != "$.project" {
		t.Errorf("reserve parameters = %v", params)
	}
	prep := state(t, def, "C: Prepare")["Parameters"].(map[string]any)
	if prep["project"] != "ml" || prep["domain"] != "dev" || prep["key.$"] != "$.key" || prep["input.$"] != "$" {
		t.Errorf("prepare parameters = %v", prep)
	}

	run := state(t, def, "C: Run task")
	if run["Type"] != "Parallel" || run["InputPath"] != "$.input" || run["ResultPath"] != "$.task" {
		t.Errorf("run = %v", run)
	}
	if sel := run["ResultSelector"].(map[string]any); sel["output_uri.$"] != "$[0].uri" {
		t.Errorf("run result selector = %v", sel)
	}
	catch := run["Catch"].([]any)[0].(map[string]any)
	if catch["Next"] != "C: Release after failure" || catch["ResultPath"] != "$.error" || fmt.Sprint(catch["ErrorEquals"]) != "[States.ALL]" {
		t.Errorf("run catch = %v", catch)
	}
	put := state(t, def, "C: Put and release")
	if put["Resource"] != arnPrefix+"put" {
		t.Errorf("put resource = %v", put["Resource"])
	}
	// Fenced by the reservation this execution holds, released in the same
	// write.
	if p := put["Parameters"].(map[string]any); p["output_uri.$"] != "$.task.output_uri" || p["owner_id.$"] != "$$.Execution.Id" ||
		p["fence.$"] != "$.reservation.reservation.fence" || p["release"] != true || p["verify_output"] != nil {
		t.Errorf("put parameters = %v", p)
	}
	if sel := put["ResultSelector"].(map[string]any); sel["found"] != true || sel["entry.$"] != "$" || put["ResultPath"] != "$.lookup" {
		t.Errorf("put result = %v, %v", sel, put["ResultPath"])
	}
	catches := put["Catch"].([]any)
	if len(catches) != 2 || catches[0].(map[string]any)["Next"] != "C: Release and look up" || fmt.Sprint(catches[0].(map[string]any)["ErrorEquals"]) != "[Stampede.AlreadyExists]" {
		t.Errorf("put catches = %v", catches)
	}
	fail := state(t, def, "C: Failed")
	if fail["Type"] != "Fail" || fail["ErrorPath"] != "$.error.Error" || fail["CausePath"] != "$.error.Cause" {
		t.Errorf("fail = %v", fail)
	}
	for _, name := range []string{"C: Release after failure", "C: Release and look up"} {
		s := state(t, def, name)
		if s["Resource"] != arnPrefix+"release" || s["Parameters"].(map[string]any)["owner_id.$"] != "$$.Execution.Id" {
			t.Errorf("%s = %v", name, s)
		}
		if _, ok := s["ResultPath"]; !ok || s["ResultPath"] != nil {
			t.Errorf("%s must discard its result, ResultPath = %v", name, s["ResultPath"])
		}
	}
	retries := state(t, def, "C: Get")["Retry"].([]any)
	found := false
	for _, r := range retries {
		if strings.Contains(fmt.Sprint(r.(map[string]any)["ErrorEquals"]), "Stampede.Throttled") {
			found = true
		}
	}
	if !found {
		t.Errorf("get has no retry on Stampede.Throttled: %v", retries)
	}
	if d := state(t, def, "C: Done"); d["InputPath"] != "$.lookup.entry" {
		t.Errorf("done = %v", d)
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
			done := state(t, def, "X.Done")
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
	prep := state(t, def, "C: Prepare")["Parameters"].(map[string]any)
	if prep["project.$"] != "$.meta.project" || prep["domain.$"] != "$.meta.domain" {
		t.Errorf("prepare parameters = %v", prep)
	}
}

// TestProtocolSimulated runs the construct's definition in an independent
// ASL interpreter (aws-local-stepfunctions, pinned in infra/package.json)
// against a model of the service: see testdata/simulate.mjs for the paths
// it drives. It needs `npm ci --prefix infra`, which `make test-infra`
// runs.
func TestProtocolSimulated(t *testing.T) {
	if _, err := os.Stat(filepath.Join("..", "node_modules", "aws-local-stepfunctions")); err != nil {
		t.Skip("aws-local-stepfunctions is not installed: run npm ci --prefix infra (make test-infra does)")
	}
	build := func(resultPath string) func(awscdk.Stack, map[string]awslambda.IFunction) sfn.IChainable {
		return func(stack awscdk.Stack, fns map[string]awslambda.IFunction) sfn.IChainable {
			work := tasks.NewLambdaInvoke(stack, jsii.String("Work"), &tasks.LambdaInvokeProps{
				LambdaFunction:      awslambda.Function_FromFunctionArn(stack, jsii.String("WorkFn"), jsii.String(arnPrefix+"work")),
				PayloadResponseOnly: jsii.Bool(true),
			})
			p := props(fns, work)
			p.OutputURIPath = "$.uri"
			p.MetadataPath = "$.metadata"
			p.ResultPath = resultPath
			return cachedtask.New(stack, "C", p)
		}
	}
	dir := t.TempDir()
	var files []string
	for i, rp := range []string{"", "$.cache"} {
		b, _ := json.Marshal(asl(t, build(rp)))
		f := filepath.Join(dir, fmt.Sprintf("definition-%d.json", i))
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append([]string{filepath.Join("testdata", "simulate.mjs")}, files...)...)
	out, err := cmd.CombinedOutput()
	t.Logf("simulation:\n%s", out)
	if err != nil {
		t.Fatalf("simulation failed: %v", err)
	}
}
