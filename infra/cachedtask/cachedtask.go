// Package cachedtask is a Step Functions construct that wraps any task in
// Stampede's cache-and-reservation protocol, for use in your own CDK app.
//
// The states it builds, for one cache key:
//
//		Prepare ─► Get ─► Cache hit? ──yes──────────────────────────────────────► Done
//		            ▲        │no                                                   ▲
//		            │        ▼                                                     │
//		            │     Reserve ─► Acquired? ──yes─► Run task ══════════╗        │
//		            │                  │no            ║ task ─► finished ─╫─► Put and release
//		            └─── Wait ◄────────┘              ║ heartbeat loop    ║
//		          (the holder's heartbeat)            ╚═══════════════════╝
//		                                                     │ any error
//		                                                     ▼
//		                              Release after failure ─► Failed
//
//	  - hit: the cached entry is returned at once;
//	  - miss: the execution reserves the key (owner id: the execution's id);
//	  - acquired: it runs the task and, beside it in a Parallel state, a
//	    heartbeat loop that extends the reservation every heartbeat (the
//	    interval the service granted, from the reserve's answer), so a task
//	    of any length keeps its key. When the task ends, the execution stores
//	    the task's output URI and releases the reservation in one call (a put
//	    fenced by the reservation's owner and fence, with "release": true and
//	    an idempotency key, so that a retry of a put that landed but whose
//	    answer was lost succeeds), and returns the new entry;
//	  - not acquired (another execution holds the key): it waits the
//	    holder's heartbeat interval (from the reserve's answer) and looks the
//	    key up again, in a loop, until the holder has put the output (a hit)
//	    or its reservation has lapsed (then this execution acquires it);
//	  - any failure (the task's, a call's once its retries are exhausted, or
//	    the reservation lost to another execution while the task ran): it
//	    releases the reservation (best effort) and fails with the original
//	    Error and Cause;
//	  - the put finds that another writer got there first
//	    (Stampede.AlreadyExists): it releases and looks the key up again,
//	    which returns the other writer's entry.
//
// Every call to Stampede retries the Lambda service's transient errors and
// the service's own (RetryableErrors) with exponential backoff and full
// jitter.
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

// DefaultHeartbeatSeconds is the reservation heartbeat interval asked for
// when Props.HeartbeatSeconds is zero. It matches the service's default
// STAMPEDE_MAX_HEARTBEAT_SECONDS, the largest interval the service grants.
const DefaultHeartbeatSeconds = 10

// Error names the construct matches on (see docs/api.md) or raises.
const (
	ErrAlreadyExists = "Stampede.AlreadyExists"
	ErrThrottled     = "Stampede.Throttled"
	ErrUnavailable   = "Stampede.Unavailable"
	// ErrReservationLost fails an execution whose reservation another
	// execution took over while the task ran (its heartbeats were late or
	// failed for longer than the lease).
	ErrReservationLost = "CachedTask.ReservationLost"
	// ErrTaskFinished is how the task's branch of the Parallel state ends,
	// with the task's output URI and metadata as its Cause: failing is the
	// only way for one branch to stop the other (the heartbeat loop). The
	// construct catches it; it never ends an execution.
	ErrTaskFinished = "CachedTask.TaskFinished"
)

// Retry policy of every call to Stampede: 1 s, then doubling, capped at
// 20 s, full jitter, 6 retries (at most about a minute in all).
const (
	retryIntervalSeconds = 1
	retryBackoffRate     = 2
	retryMaxAttempts     = 6
	retryMaxDelaySeconds = 20
)

// RetryableErrors are the errors every call to Stampede retries: the Lambda
// service's transient errors (a throttled or failed invocation, a network
// error between Step Functions and Lambda) and the service's own
// (Stampede.Throttled: DynamoDB throttled; Stampede.Unavailable: DynamoDB
// or S3 did not answer in time). Every Stampede operation the construct
// calls is safe to repeat: get, reserve (an extension for the same owner)
// and release are idempotent, and the put-and-release carries an
// idempotency key.
func RetryableErrors() []string {
	return []string{
		"Lambda.TooManyRequestsException",
		"Lambda.ServiceException",
		"Lambda.AWSLambdaException",
		"Lambda.SdkClientException",
		"Lambda.ClientExecutionTimeoutException",
		ErrThrottled,
		ErrUnavailable,
	}
}

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
	// construct's input unchanged. It runs in a branch of a Parallel state,
	// beside the heartbeat loop; its end states must not have a Next.
	Task sfn.IChainable
	// OutputURIPath is a JSONPath into the task's output that selects the
	// URI to cache (a string). Default "$.output_uri".
	//
	// It (and MetadataPath) must exist in the task's output: a path that
	// selects nothing is a States.Runtime error, which no Catch catches,
	// so the execution fails at once and its reservation is left to lapse.
	// The URI and the metadata together must fit in a state's Cause
	// (32,768 characters as JSON): they travel out of the Parallel state
	// that way.
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

	// HeartbeatSeconds is the reservation's heartbeat interval asked of the
	// service, rounded up to whole seconds; default DefaultHeartbeatSeconds.
	// The service may grant less (STAMPEDE_MAX_HEARTBEAT_SECONDS): the
	// construct heartbeats at the interval granted, read from the reserve's
	// answer. The lease is the interval times the service's multiplier (3),
	// so a holder that dies is noticed within about four heartbeats.
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

	// The states, exposed for tests and for further customisation.
	Prepare       sfn.Pass
	Lookup        tasks.LambdaInvoke
	IsHit         sfn.Choice
	Reserve       tasks.LambdaInvoke
	IsAcquired    sfn.Choice
	WaitForHolder sfn.Wait
	// Run is the Parallel state holding the task's branch and the
	// heartbeat loop's.
	Run sfn.Parallel
	// The task's branch: TaskInput ─► Task ─► TaskOutput ─► EncodeOutput ─► TaskFinished.
	TaskInput    sfn.Pass
	TaskOutput   sfn.Pass
	EncodeOutput sfn.Pass
	TaskFinished sfn.Fail
	// The heartbeat loop: WaitHeartbeat ─► Heartbeat ─► IsStillHeld ─► WaitHeartbeat | ReservationLost.
	WaitHeartbeat   sfn.Wait
	Heartbeat       tasks.LambdaInvoke
	IsStillHeld     sfn.Choice
	ReservationLost sfn.Fail
	// DecodeOutput reads the task's output back from TaskFinished's Cause.
	DecodeOutput        sfn.Pass
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
//	 "lookup": {"found", "entry"}, "reservation": {"acquired", "reservation"},
//	 "run": {"Error", "Cause"}, "task": {"output": {"output_uri", "metadata"}},
//	 "error": {"Error", "Cause"}}
//
// and, inside the heartbeat branch, "heartbeat" (the last extension's
// answer) and "heartbeat_error".
const (
	pathInput          = "$.input"
	pathProject        = "$.project"
	pathDomain         = "$.domain"
	pathKey            = "$.key"
	pathLookup         = "$.lookup"
	pathFound          = "$.lookup.found"
	pathEntry          = "$.lookup.entry"
	pathReservation    = "$.reservation"
	pathAcquired       = "$.reservation.acquired"
	pathFence          = "$.reservation.reservation.fence"
	pathHeartbeat      = "$.reservation.reservation.heartbeat_interval_seconds"
	pathRun            = "$.run"
	pathTask           = "$.task"
	pathTaskOutput     = "$.task.output"
	pathError          = "$.error"
	pathReleaseErr     = "$.release_error"
	pathExtension      = "$.heartbeat"
	pathExtensionErr   = "$.heartbeat_error"
	pathEncodedOutput  = "$.encoded"
	pathExtendedFence  = "$.heartbeat.reservation.fence"
	pathExtendAcquired = "$.heartbeat.acquired"
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
	str := func(path string) *string { return sfn.JsonPath_StringAt(jsii.String(path)) }

	entryRef := map[string]interface{}{
		"project": str(pathProject),
		"domain":  str(pathDomain),
		"key":     str(pathKey),
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
		return tasks.NewLambdaInvoke(s, jsii.String(cid), &tasks.LambdaInvokeProps{
			StateName:           name(stateName),
			LambdaFunction:      fn,
			Payload:             payload,
			PayloadResponseOnly: jsii.Bool(true),
			ResultPath:          resultPath,
			ResultSelector:      resultSelector,
			// Replaced by the retrier below, which also covers
			// Lambda.TooManyRequestsException and jitters.
			RetryOnServiceExceptions: jsii.Bool(false),
		})
	}
	retry := func(t tasks.LambdaInvoke, maxAttempts, maxDelay float64) tasks.LambdaInvoke {
		t.AddRetry(&sfn.RetryProps{
			Errors:         jsii.Strings(RetryableErrors()...),
			Interval:       awscdk.Duration_Seconds(jsii.Number(retryIntervalSeconds)),
			BackoffRate:    jsii.Number(retryBackoffRate),
			MaxAttempts:    jsii.Number(maxAttempts),
			MaxDelay:       awscdk.Duration_Seconds(jsii.Number(maxDelay)),
			JitterStrategy: sfn.JitterType_FULL,
		})
		return t
	}
	call := func(cid, stateName string, fn awslambda.IFunction, payload sfn.TaskInput, resultPath *string, resultSelector *map[string]interface{}) tasks.LambdaInvoke {
		return retry(invoke(cid, stateName, fn, payload, resultPath, resultSelector), retryMaxAttempts, retryMaxDelaySeconds)
	}
	release := func(cid, stateName string) tasks.LambdaInvoke {
		return call(cid, stateName, p.ReleaseFunction,
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
			"key":     str(p.KeyPath),
		},
	})
	c.Lookup = call("Get", "Get", p.GetFunction, with(nil), jsii.String(pathLookup), nil)
	c.IsHit = sfn.NewChoice(s, jsii.String("IsHit"), &sfn.ChoiceProps{StateName: name("Cache hit?")})
	c.Reserve = call("Reserve", "Reserve", p.ReserveFunction,
		with(map[string]interface{}{
			"owner_id":                   sfn.JsonPath_ExecutionId(),
			"heartbeat_interval_seconds": heartbeat,
		}),
		jsii.String(pathReservation), nil)
	c.IsAcquired = sfn.NewChoice(s, jsii.String("IsAcquired"), &sfn.ChoiceProps{StateName: name("Reservation acquired?")})
	c.WaitForHolder = sfn.NewWait(s, jsii.String("WaitForHolder"), &sfn.WaitProps{
		StateName: name("Wait for the holder"),
		Comment:   jsii.String("Another execution holds the reservation: look again after one of its heartbeats (the holder's interval, from the reserve's answer)."),
		Time:      sfn.WaitTime_SecondsPath(jsii.String(pathHeartbeat)),
	})

	// The task's branch.
	c.TaskInput = sfn.NewPass(s, jsii.String("TaskInput"), &sfn.PassProps{
		StateName: name("Task input"),
		Comment:   jsii.String("Hands the task the construct's own input."),
		InputPath: jsii.String(pathInput),
	})
	taskOutput := map[string]interface{}{"output_uri": str(p.OutputURIPath)}
	if p.MetadataPath != "" {
		taskOutput["metadata"] = sfn.JsonPath_ObjectAt(jsii.String(p.MetadataPath))
	}
	c.TaskOutput = sfn.NewPass(s, jsii.String("TaskOutput"), &sfn.PassProps{
		StateName:  name("Task output"),
		Comment:    jsii.String("Selects the output URI (and metadata) in the task's output."),
		Parameters: &taskOutput,
	})
	c.EncodeOutput = sfn.NewPass(s, jsii.String("EncodeOutput"), &sfn.PassProps{
		StateName:  name("Encode the task output"),
		Parameters: &map[string]interface{}{"encoded": sfn.JsonPath_JsonToString(sfn.JsonPath_EntirePayload())},
	})
	c.TaskFinished = sfn.NewFail(s, jsii.String("TaskFinished"), &sfn.FailProps{
		StateName: name("Task finished"),
		Comment:   jsii.String("Ends the Parallel state, and so the heartbeat loop, carrying the task's output as the Cause; caught at once."),
		Error:     jsii.String(ErrTaskFinished),
		CausePath: jsii.String(pathEncodedOutput),
	})
	taskBranch := sfn.Chain_Start(c.TaskInput).Next(p.Task).Next(c.TaskOutput).Next(c.EncodeOutput).Next(c.TaskFinished)

	// The heartbeat branch: extend at the interval granted; a failed
	// extension is tried again at the next turn (the lease survives
	// several), a lost reservation ends the task.
	c.WaitHeartbeat = sfn.NewWait(s, jsii.String("WaitHeartbeat"), &sfn.WaitProps{
		StateName: name("Wait one heartbeat"),
		Time:      sfn.WaitTime_SecondsPath(jsii.String(pathHeartbeat)),
	})
	c.Heartbeat = retry(invoke("Heartbeat", "Heartbeat", p.ReserveFunction,
		with(map[string]interface{}{
			"owner_id":                   sfn.JsonPath_ExecutionId(),
			"heartbeat_interval_seconds": sfn.JsonPath_NumberAt(jsii.String(pathHeartbeat)),
		}),
		jsii.String(pathExtension), nil), heartbeatRetries(heartbeat), heartbeat)
	c.IsStillHeld = sfn.NewChoice(s, jsii.String("IsStillHeld"), &sfn.ChoiceProps{
		StateName: name("Still held?"),
		Comment:   jsii.String("Held with the same fence: the reservation never lapsed. Another owner, or a new fence after a lapse, means the fenced put would be refused."),
	})
	c.ReservationLost = sfn.NewFail(s, jsii.String("ReservationLost"), &sfn.FailProps{
		StateName: name("Reservation lost"),
		Error:     jsii.String(ErrReservationLost),
		Cause:     jsii.String("the reservation lapsed while the task ran (its heartbeats failed or came late) and the key changed hands"),
	})
	c.Heartbeat.AddCatch(c.WaitHeartbeat, &sfn.CatchProps{
		Errors:     &[]*string{sfn.Errors_ALL()},
		ResultPath: jsii.String(pathExtensionErr),
	})
	c.WaitHeartbeat.Next(c.Heartbeat)
	c.Heartbeat.Next(c.IsStillHeld)
	c.IsStillHeld.When(sfn.Condition_And(
		sfn.Condition_BooleanEquals(jsii.String(pathExtendAcquired), jsii.Bool(true)),
		sfn.Condition_NumberEqualsJsonPath(jsii.String(pathExtendedFence), jsii.String(pathFence)),
	), c.WaitHeartbeat, nil)
	c.IsStillHeld.Otherwise(c.ReservationLost)

	c.Run = sfn.NewParallel(s, jsii.String("Run"), &sfn.ParallelProps{
		StateName: name("Run task"),
		Comment:   jsii.String("Runs the task beside the heartbeat loop. Both branches end by failing: the task's with " + ErrTaskFinished + ", caught below."),
	})
	c.Run.Branch(taskBranch, c.WaitHeartbeat)
	c.DecodeOutput = sfn.NewPass(s, jsii.String("DecodeOutput"), &sfn.PassProps{
		StateName:  name("Decode the task output"),
		Parameters: &map[string]interface{}{"output": sfn.JsonPath_StringToJson(str(pathRun + ".Cause"))},
		ResultPath: jsii.String(pathTask),
	})

	putExtra := map[string]interface{}{
		"output_uri": str(pathTaskOutput + ".output_uri"),
		// Fenced by this execution's reservation, and released with the
		// same write.
		"owner_id": sfn.JsonPath_ExecutionId(),
		"fence":    sfn.JsonPath_NumberAt(jsii.String(pathFence)),
		"release":  true,
		// The same on every retry of this put, and different for every
		// acquisition (the fence): a retry whose first attempt landed is
		// answered with that attempt's entry. Hashed: the key may hold any
		// character, the idempotency key only visible ASCII.
		"idempotency_key": sfn.JsonPath_Hash(
			sfn.JsonPath_Format(jsii.String("{}#{}#{}#{}#{}"), sfn.JsonPath_ExecutionId(),
				str(pathProject), str(pathDomain), str(pathKey), str(pathFence)),
			jsii.String("SHA-256")),
	}
	if p.VerifyOutput {
		putExtra["verify_output"] = true
	}
	if p.MetadataPath != "" {
		putExtra["metadata"] = sfn.JsonPath_ObjectAt(jsii.String(pathTaskOutput + ".metadata"))
	}
	if p.TTLSeconds > 0 {
		putExtra["ttl_seconds"] = p.TTLSeconds
	}
	c.Put = call("Put", "Put and release", p.PutFunction, with(putExtra), jsii.String(pathLookup),
		&map[string]interface{}{"found": true, "entry": sfn.JsonPath_EntirePayload()})
	c.ReleaseAfterFailure = release("ReleaseAfterFailure", "Release after failure")
	c.ReleaseAndLookUp = release("ReleaseAndLookUp", "Release and look up")

	c.Done = sfn.NewPass(s, jsii.String("Done"), donePassProps(name("Done"), p.ResultPath))
	c.Failed = sfn.NewFail(s, jsii.String("Failed"), &sfn.FailProps{
		StateName: name("Failed"),
		Comment:   jsii.String("Fails with the original error and cause (the task's, or a call's)."),
		ErrorPath: jsii.String(pathError + ".Error"),
		CausePath: jsii.String(pathError + ".Cause"),
	})

	// Wiring. Every failure on the way releases whatever this execution
	// may hold (a release by a non-holder changes nothing) and fails.
	catchAll := func(t sfn.TaskStateBase) {
		t.AddCatch(c.ReleaseAfterFailure, &sfn.CatchProps{
			Errors:     &[]*string{sfn.Errors_ALL()},
			ResultPath: jsii.String(pathError),
		})
	}
	c.Prepare.Next(c.Lookup)
	catchAll(c.Lookup)
	c.Lookup.Next(c.IsHit)
	c.IsHit.When(sfn.Condition_BooleanEquals(jsii.String(pathFound), jsii.Bool(true)), c.Done, nil)
	c.IsHit.Otherwise(c.Reserve)
	// A reserve whose retries ran out may have landed all the same.
	catchAll(c.Reserve)
	c.Reserve.Next(c.IsAcquired)
	c.IsAcquired.When(sfn.Condition_BooleanEquals(jsii.String(pathAcquired), jsii.Bool(true)), c.Run, nil)
	c.IsAcquired.Otherwise(c.WaitForHolder)
	c.WaitForHolder.Next(c.Lookup)

	c.Run.AddCatch(c.DecodeOutput, &sfn.CatchProps{
		Errors:     jsii.Strings(ErrTaskFinished),
		ResultPath: jsii.String(pathRun),
	})
	c.Run.AddCatch(c.ReleaseAfterFailure, &sfn.CatchProps{
		Errors:     &[]*string{sfn.Errors_ALL()},
		ResultPath: jsii.String(pathError),
	})
	c.DecodeOutput.Next(c.Put)
	c.Put.AddCatch(c.ReleaseAndLookUp, &sfn.CatchProps{
		Errors:     jsii.Strings(ErrAlreadyExists),
		ResultPath: jsii.String(pathError),
	})
	catchAll(c.Put)
	c.Put.Next(c.Done)
	c.ReleaseAndLookUp.AddCatch(c.Lookup, &sfn.CatchProps{
		Errors:     &[]*string{sfn.Errors_ALL()},
		ResultPath: jsii.String(pathReleaseErr),
	})
	c.ReleaseAndLookUp.Next(c.Lookup)
	// Fail with the original error even if the release fails too.
	c.ReleaseAfterFailure.AddCatch(c.Failed, &sfn.CatchProps{
		Errors:     &[]*string{sfn.Errors_ALL()},
		ResultPath: jsii.String(pathReleaseErr),
	})
	c.ReleaseAfterFailure.Next(c.Failed)

	c.chain = sfn.Chain_Custom(c.Prepare, &[]sfn.INextable{c.Done}, c.Done)
	return c
}

// heartbeatRetries is how many times a heartbeat is retried: as many as
// fit, backoff included, in one heartbeat interval, so that a throttled
// extension still lands well within the lease (three intervals).
func heartbeatRetries(heartbeat float64) float64 {
	n, total := 0.0, 0.0
	for delay := float64(retryIntervalSeconds); ; delay *= retryBackoffRate {
		total += math.Min(delay, heartbeat)
		if total > heartbeat || n == retryMaxAttempts {
			break
		}
		n++
	}
	return math.Max(1, n)
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
