// Package cachedtask is a Step Functions construct that wraps any task in
// Stampede's cache-and-reservation protocol, for use in your own CDK app.
//
// The states it builds, for one cache key:
//
//	Prepare ─► Get ─► Cache hit? ──yes─────────────────────────────► Done
//	            ▲        │no                                          ▲
//	            │        ▼                                            │
//	            │     Reserve ─► Acquired? ──yes─► Run task ─► Put and release
//	            │                  │no               │ error      │ error
//	            └─── Wait ◄────────┘                 ▼            ▼
//	                 (one heartbeat)            Release after failure ─► Failed
//
// - hit: the cached entry is returned at once;
// - miss: the execution reserves the key (owner id: the execution's id);
//   - acquired: it runs the task, then stores the task's output URI and
//     releases the reservation in one call (a put fenced by the
//     reservation's owner and fence, with "release": true), and returns the
//     new entry;
//   - not acquired (another execution holds the key): it waits about one
//     heartbeat and looks the key up again, in a loop, until the holder has
//     put the output (a hit) or its reservation has lapsed (then this
//     execution acquires it);
//   - the task, or the put, fails: it releases the reservation (best effort)
//     and fails with the task's (or the put's) own Error and Cause; a put
//     fails with Stampede.FailedPrecondition when the reservation lapsed
//     while the task ran and another execution took it over;
//   - the put finds that another writer got there first
//     (Stampede.AlreadyExists): it releases and looks the key up again,
//     which returns the other writer's entry.
//
// Whatever the path, the construct's output has one shape: the cache entry
// ({"project","domain","key","output_uri","metadata","created_at",...}),
// placed at Props.ResultPath ("$", the whole output, by default).
//
// The construct uses only classic JSONPath features (no JSONata, no
// variables), so it runs on every Step Functions flavour and emulator that
// supports Lambda task states, Choice, Wait and Parallel.
package cachedtask

import (
	"fmt"
	"math"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	sfn "github.com/aws/aws-cdk-go/awscdk/v2/awsstepfunctions"
	tasks "github.com/aws/aws-cdk-go/awscdk/v2/awsstepfunctionstasks"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// DefaultHeartbeatSeconds is the reservation heartbeat interval used when
// Props.HeartbeatSeconds is zero. It matches the service's default
// STAMPEDE_MAX_HEARTBEAT_SECONDS, the largest interval the service accepts.
const DefaultHeartbeatSeconds = 10

// Error names the construct matches on; see the service's API reference.
const (
	ErrAlreadyExists = "Stampede.AlreadyExists"
	ErrThrottled     = "Stampede.Throttled"
	ErrUnavailable   = "Stampede.Unavailable"
)

// Props configure a CachedTask.
type Props struct {
	// The Stampede functions, e.g. from the Stampede stack's outputs via
	// awslambda.Function_FromFunctionArn, or the stack's own Functions.
	GetFunction     awslambda.IFunction
	PutFunction     awslambda.IFunction
	ReserveFunction awslambda.IFunction
	ReleaseFunction awslambda.IFunction

	// Project and Domain of the cache entry: literal strings, or references
	// into the state input made with sfn.JsonPath_StringAt.
	Project string
	Domain  string
	// KeyPath is a JSONPath into the state input that selects the cache key
	// (a string), e.g. "$.cacheKey". Build the key from the task's inputs
	// with an earlier Pass state (States.Format, States.Hash) if need be.
	KeyPath string

	// Task is the work to cache: any chain of states. It receives the
	// construct's input unchanged. It runs inside a Parallel state so that
	// any error it raises is caught; its end states must not have a Next.
	Task sfn.IChainable
	// OutputURIPath is a JSONPath into the task's output that selects the
	// URI to cache (a string). Default "$.output_uri".
	//
	// It (and MetadataPath) must exist in the task's output: a path that
	// selects nothing is a States.Runtime error, which no Catch catches,
	// so the execution fails at once and its reservation is left to lapse.
	OutputURIPath string
	// MetadataPath optionally selects the entry's metadata in the task's
	// output: an object {"source": {"project", "domain", "name",
	// "version"}, "labels": {string: string}} (see docs/api.md).
	MetadataPath string
	// TTLSeconds, if positive, is sent as the put's ttl_seconds.
	TTLSeconds float64
	// VerifyOutput makes the put check that the output object exists
	// (the put's verify_output).
	VerifyOutput bool

	// HeartbeatSeconds is the reservation's heartbeat interval, and how
	// long a waiting execution sleeps before it looks the key up again.
	// Rounded up to whole seconds. Default DefaultHeartbeatSeconds.
	//
	// The construct does not heartbeat while the task runs: a task that
	// runs longer than the service's lease (heartbeat × multiplier, 30 s
	// by default) may see a waiting execution take the key over; its
	// fenced put then fails (Stampede.FailedPrecondition) and so does the
	// execution, while the other one runs the task and stores the entry.
	// Size the heartbeat (and the stack's maxHeartbeatSeconds) to cover
	// the task.
	HeartbeatSeconds float64

	// ResultPath places the cache entry in the construct's input, like a
	// state's ResultPath: "$" (default) outputs the entry alone, "$.cache"
	// outputs the input with the entry at .cache, and sfn.JsonPath_DISCARD
	// outputs the input unchanged. Only "$", DISCARD and simple dotted
	// paths ("$.a.b") are supported.
	ResultPath string

	// StateNamePrefix prefixes every state's name, which must be unique in
	// a state machine. Default: the construct's id followed by ": ".
	StateNamePrefix string
}

// CachedTask is the protocol around one task. It implements
// sfn.IChainable: use it anywhere a chain is accepted (e.g.
// sfn.DefinitionBody_FromChainable, sfn.Chain_Start(...).Next(ct), or
// ct.Next(...)).
type CachedTask struct {
	chain sfn.Chain
	id    string

	// The states, exposed for tests and for further customisation
	// (e.g. AddRetry on Lookup).
	Prepare             sfn.Pass
	Lookup              tasks.LambdaInvoke
	IsHit               sfn.Choice
	Reserve             tasks.LambdaInvoke
	IsAcquired          sfn.Choice
	WaitForHolder       sfn.Wait
	Run                 sfn.Parallel
	Put                 tasks.LambdaInvoke
	ReleaseAfterFailure tasks.LambdaInvoke
	ReleaseAndLookUp    tasks.LambdaInvoke
	Done                sfn.Pass
	Failed              sfn.Fail
}

var _ sfn.IChainable = (*CachedTask)(nil)

// Id is the chainable's descriptive identifier.
func (c *CachedTask) Id() *string { return jsii.String(c.id) }

// StartState is the first state of the protocol.
func (c *CachedTask) StartState() sfn.State { return c.chain.StartState() }

// EndStates are the states a following state is attached to (just Done).
func (c *CachedTask) EndStates() *[]sfn.INextable { return c.chain.EndStates() }

// Next continues with the given state once the entry is available.
func (c *CachedTask) Next(next sfn.IChainable) sfn.Chain { return c.chain.Next(next) }

// Chain returns the protocol as a plain sfn.Chain.
func (c *CachedTask) Chain() sfn.Chain { return c.chain }

// Working state, between Prepare and Done:
//
//	{"input": <the construct's input>, "project", "domain", "key",
//	 "lookup": {"found", "entry"}, "reservation": {...},
//	 "task": {"output_uri", "metadata"}, "error": {"Error", "Cause"}}
const (
	pathInput       = "$.input"
	pathProject     = "$.project"
	pathDomain      = "$.domain"
	pathKey         = "$.key"
	pathLookup      = "$.lookup"
	pathFound       = "$.lookup.found"
	pathEntry       = "$.lookup.entry"
	pathReservation = "$.reservation"
	pathAcquired    = "$.reservation.acquired"
	pathFence       = "$.reservation.reservation.fence"
	pathTask        = "$.task"
	pathError       = "$.error"
	pathReleaseErr  = "$.release_error"
)

// New builds the protocol around props.Task under scope.
func New(scope constructs.Construct, id string, props *Props) *CachedTask {
	p, err := validate(props)
	if err != nil {
		panic(fmt.Sprintf("cachedtask %q: %v", id, err))
	}
	s := constructs.NewConstruct(scope, jsii.String(id))
	prefix := p.StateNamePrefix
	if prefix == "" {
		prefix = id + ": "
	}
	name := func(n string) *string { return jsii.String(prefix + n) }
	heartbeat := math.Max(1, math.Ceil(p.HeartbeatSeconds))

	entryRef := map[string]interface{}{
		"project": sfn.JsonPath_StringAt(jsii.String(pathProject)),
		"domain":  sfn.JsonPath_StringAt(jsii.String(pathDomain)),
		"key":     sfn.JsonPath_StringAt(jsii.String(pathKey)),
	}
	with := func(extra map[string]interface{}) sfn.TaskInput {
		m := map[string]interface{}{}
		for k, v := range entryRef {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return sfn.TaskInput_FromObject(&m)
	}
	invoke := func(cid, stateName string, fn awslambda.IFunction, payload sfn.TaskInput, resultPath *string, resultSelector *map[string]interface{}) tasks.LambdaInvoke {
		t := tasks.NewLambdaInvoke(s, jsii.String(cid), &tasks.LambdaInvokeProps{
			StateName:           name(stateName),
			LambdaFunction:      fn,
			Payload:             payload,
			PayloadResponseOnly: jsii.Bool(true),
			ResultPath:          resultPath,
			ResultSelector:      resultSelector,
		})
		// The service's own transient errors; the Lambda service's
		// (Lambda.ServiceException etc.) are retried by LambdaInvoke.
		t.AddRetry(&sfn.RetryProps{
			Errors:         jsii.Strings(ErrThrottled, ErrUnavailable),
			Interval:       awscdk.Duration_Seconds(jsii.Number(1)),
			BackoffRate:    jsii.Number(2),
			MaxAttempts:    jsii.Number(5),
			JitterStrategy: sfn.JitterType_FULL,
		})
		return t
	}
	release := func(cid, stateName string) tasks.LambdaInvoke {
		return invoke(cid, stateName, p.ReleaseFunction,
			with(map[string]interface{}{"owner_id": sfn.JsonPath_ExecutionId()}),
			sfn.JsonPath_DISCARD(), nil)
	}

	c := &CachedTask{id: id}
	c.Prepare = sfn.NewPass(s, jsii.String("Prepare"), &sfn.PassProps{
		StateName: name("Prepare"),
		Comment:   jsii.String("Keeps the input aside and resolves the entry's project, domain and key."),
		Parameters: &map[string]interface{}{
			"input":   sfn.JsonPath_EntirePayload(),
			"project": jsii.String(p.Project),
			"domain":  jsii.String(p.Domain),
			"key":     sfn.JsonPath_StringAt(jsii.String(p.KeyPath)),
		},
	})
	c.Lookup = invoke("Get", "Get", p.GetFunction, with(nil), jsii.String(pathLookup), nil)
	c.IsHit = sfn.NewChoice(s, jsii.String("IsHit"), &sfn.ChoiceProps{StateName: name("Cache hit?")})
	c.Reserve = invoke("Reserve", "Reserve", p.ReserveFunction,
		with(map[string]interface{}{
			"owner_id":                   sfn.JsonPath_ExecutionId(),
			"heartbeat_interval_seconds": heartbeat,
		}),
		jsii.String(pathReservation), nil)
	c.IsAcquired = sfn.NewChoice(s, jsii.String("IsAcquired"), &sfn.ChoiceProps{StateName: name("Reservation acquired?")})
	c.WaitForHolder = sfn.NewWait(s, jsii.String("WaitForHolder"), &sfn.WaitProps{
		StateName: name("Wait for the holder"),
		Comment:   jsii.String("Another execution holds the reservation: look again after about one heartbeat."),
		Time:      sfn.WaitTime_Duration(awscdk.Duration_Seconds(jsii.Number(heartbeat))),
	})

	taskResult := map[string]interface{}{
		"output_uri": sfn.JsonPath_StringAt(jsii.String(branchPath(p.OutputURIPath))),
	}
	putExtra := map[string]interface{}{
		"output_uri": sfn.JsonPath_StringAt(jsii.String(pathTask + ".output_uri")),
		// Fenced by this execution's reservation, and released with the
		// same write.
		"owner_id": sfn.JsonPath_ExecutionId(),
		"fence":    sfn.JsonPath_NumberAt(jsii.String(pathFence)),
		"release":  true,
	}
	if p.VerifyOutput {
		putExtra["verify_output"] = true
	}
	if p.MetadataPath != "" {
		taskResult["metadata"] = sfn.JsonPath_ObjectAt(jsii.String(branchPath(p.MetadataPath)))
		putExtra["metadata"] = sfn.JsonPath_ObjectAt(jsii.String(pathTask + ".metadata"))
	}
	if p.TTLSeconds > 0 {
		putExtra["ttl_seconds"] = p.TTLSeconds
	}
	c.Run = sfn.NewParallel(s, jsii.String("Run"), &sfn.ParallelProps{
		StateName:      name("Run task"),
		Comment:        jsii.String("Runs the task on the construct's input; the Parallel lets any error of the task be caught."),
		InputPath:      jsii.String(pathInput),
		ResultSelector: &taskResult,
		ResultPath:     jsii.String(pathTask),
	})
	c.Run.Branch(p.Task)

	c.Put = invoke("Put", "Put and release", p.PutFunction, with(putExtra), jsii.String(pathLookup),
		&map[string]interface{}{"found": true, "entry": sfn.JsonPath_EntirePayload()})
	c.ReleaseAfterFailure = release("ReleaseAfterFailure", "Release after failure")
	c.ReleaseAndLookUp = release("ReleaseAndLookUp", "Release and look up")

	c.Done = sfn.NewPass(s, jsii.String("Done"), donePassProps(name("Done"), p.ResultPath))
	c.Failed = sfn.NewFail(s, jsii.String("Failed"), &sfn.FailProps{
		StateName: name("Failed"),
		Comment:   jsii.String("Fails with the task's (or the put's) own error and cause."),
		ErrorPath: jsii.String(pathError + ".Error"),
		CausePath: jsii.String(pathError + ".Cause"),
	})

	// Wiring.
	c.Prepare.Next(c.Lookup)
	c.Lookup.Next(c.IsHit)
	c.IsHit.When(sfn.Condition_BooleanEquals(jsii.String(pathFound), jsii.Bool(true)), c.Done, nil)
	c.IsHit.Otherwise(c.Reserve)
	c.Reserve.Next(c.IsAcquired)
	c.IsAcquired.When(sfn.Condition_BooleanEquals(jsii.String(pathAcquired), jsii.Bool(true)), c.Run, nil)
	c.IsAcquired.Otherwise(c.WaitForHolder)
	c.WaitForHolder.Next(c.Lookup)

	c.Run.AddCatch(c.ReleaseAfterFailure, &sfn.CatchProps{
		Errors:     &[]*string{sfn.Errors_ALL()},
		ResultPath: jsii.String(pathError),
	})
	c.Run.Next(c.Put)
	c.Put.AddCatch(c.ReleaseAndLookUp, &sfn.CatchProps{
		Errors:     jsii.Strings(ErrAlreadyExists),
		ResultPath: jsii.String(pathError),
	})
	c.Put.AddCatch(c.ReleaseAfterFailure, &sfn.CatchProps{
		Errors:     &[]*string{sfn.Errors_ALL()},
		ResultPath: jsii.String(pathError),
	})
	c.Put.Next(c.Done)
	c.ReleaseAndLookUp.AddCatch(c.Lookup, &sfn.CatchProps{
		Errors:     &[]*string{sfn.Errors_ALL()},
		ResultPath: jsii.String(pathReleaseErr),
	})
	c.ReleaseAndLookUp.Next(c.Lookup)
	// Fail with the task's error even if the release fails too.
	c.ReleaseAfterFailure.AddCatch(c.Failed, &sfn.CatchProps{
		Errors:     &[]*string{sfn.Errors_ALL()},
		ResultPath: jsii.String(pathReleaseErr),
	})
	c.ReleaseAfterFailure.Next(c.Failed)

	c.chain = sfn.Chain_Custom(c.Prepare, &[]sfn.INextable{c.Done}, c.Done)
	return c
}

func validate(props *Props) (Props, error) {
	if props == nil {
		return Props{}, fmt.Errorf("props are required")
	}
	p := *props
	switch {
	case p.GetFunction == nil || p.PutFunction == nil || p.ReserveFunction == nil || p.ReleaseFunction == nil:
		return p, fmt.Errorf("GetFunction, PutFunction, ReserveFunction and ReleaseFunction are required")
	case p.Task == nil:
		return p, fmt.Errorf("task is required")
	case p.Project == "" || p.Domain == "":
		return p, fmt.Errorf("project and domain are required")
	case !isPath(p.KeyPath):
		return p, fmt.Errorf("KeyPath must be a JSONPath starting with $, got %q", p.KeyPath)
	case p.HeartbeatSeconds < 0:
		return p, fmt.Errorf("HeartbeatSeconds must not be negative")
	}
	if p.OutputURIPath == "" {
		p.OutputURIPath = "$.output_uri"
	}
	if !isPath(p.OutputURIPath) {
		return p, fmt.Errorf("OutputURIPath must be a JSONPath starting with $, got %q", p.OutputURIPath)
	}
	if p.MetadataPath != "" && !isPath(p.MetadataPath) {
		return p, fmt.Errorf("MetadataPath must be a JSONPath starting with $, got %q", p.MetadataPath)
	}
	if p.HeartbeatSeconds == 0 {
		p.HeartbeatSeconds = DefaultHeartbeatSeconds
	}
	if p.ResultPath == "" {
		p.ResultPath = "$"
	}
	if p.ResultPath != "$" && p.ResultPath != *sfn.JsonPath_DISCARD() && !isDotted(p.ResultPath) {
		return p, fmt.Errorf(`ResultPath must be "$", sfn.JsonPath_DISCARD or a dotted path like "$.a.b", got %q`, p.ResultPath)
	}
	return p, nil
}

func isPath(s string) bool {
	return s == "$" || strings.HasPrefix(s, "$.") || strings.HasPrefix(s, "$[")
}

func isDotted(s string) bool {
	if !strings.HasPrefix(s, "$.") {
		return false
	}
	for _, part := range strings.Split(s[2:], ".") {
		if part == "" || strings.ContainsAny(part, "[]*'\" @$") {
			return false
		}
	}
	return true
}

// branchPath turns a JSONPath into the task's output into one into the
// Parallel state's result, an array holding the task's output.
func branchPath(p string) string { return "$[0]" + strings.TrimPrefix(p, "$") }

// donePassProps builds the final state, which places the entry (at
// $.lookup.entry on both the hit and the miss path) at the user's
// ResultPath. ResultPath applies to the state's raw input, so
// "$.input.<path>" followed by OutputPath "$.input" merges the entry into
// the construct's original input.
func donePassProps(stateName *string, resultPath string) *sfn.PassProps {
	props := &sfn.PassProps{StateName: stateName, Comment: jsii.String("Outputs the cache entry at the construct's ResultPath.")}
	switch resultPath {
	case "$":
		props.InputPath = jsii.String(pathEntry)
	case *sfn.JsonPath_DISCARD():
		props.OutputPath = jsii.String(pathInput)
	default:
		props.InputPath = jsii.String(pathEntry)
		props.ResultPath = jsii.String(pathInput + strings.TrimPrefix(resultPath, "$"))
		props.OutputPath = jsii.String(pathInput)
	}
	return props
}
