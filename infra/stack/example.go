package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	sfn "github.com/aws/aws-cdk-go/awscdk/v2/awsstepfunctions"
	tasks "github.com/aws/aws-cdk-go/awscdk/v2/awsstepfunctionstasks"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/stampede-cache/stampede/infra/cachedtask"
)

// ExampleProject is the project of the example state machine's entries.
const ExampleProject = "examples"

// ExampleTimeoutHours bounds an execution of the example state machine.
const ExampleTimeoutHours = 1

// newExample adds a state machine that caches a trivial task: it writes a
// small object to the outputs bucket (a Step Functions SDK integration, so
// no extra function or asset) and returns its URI. Start it with
// {"key": "any-key"}: the first execution for a key runs the task, later
// ones return the cached entry, and concurrent ones wait for the first.
// docs/step-functions.md shows its definition.
func (s *Stampede) newExample(scope constructs.Construct, cfg Config) {
	// The documented layout, <project>/<domain>/...: the service deletes
	// and verifies only objects under the entry's own project and domain.
	prefix := ExampleProject + "/" + cfg.Env + "/"
	objectKey := sfn.JsonPath_Format(jsii.String(prefix+"{}"), sfn.JsonPath_StringAt(jsii.String("$.key")))
	write := tasks.NewCallAwsService(scope, jsii.String("ExampleWrite"), &tasks.CallAwsServiceProps{
		StateName: jsii.String("Example task: write the output"),
		Service:   jsii.String("s3"),
		Action:    jsii.String("putObject"),
		IamAction: jsii.String("s3:PutObject"),
		// Only the example's own prefix.
		IamResources: jsii.Strings(*s.Bucket.ArnForObjects(jsii.String(prefix + "*"))),
		Parameters: &map[string]interface{}{
			"Bucket": s.Bucket.BucketName(),
			"Key":    objectKey,
			"Body":   sfn.JsonPath_Format(jsii.String("computed by {} at {}"), sfn.JsonPath_ExecutionId(), sfn.JsonPath_StateEnteredTime()),
		},
		ResultPath: sfn.JsonPath_DISCARD(),
	})
	uri := sfn.NewPass(scope, jsii.String("ExampleUri"), &sfn.PassProps{
		StateName: jsii.String("Example task: its output URI"),
		Parameters: &map[string]interface{}{
			"output_uri": sfn.JsonPath_Format(jsii.String("s3://{}/"+prefix+"{}"),
				jsii.String(*s.Bucket.BucketName()), sfn.JsonPath_StringAt(jsii.String("$.key"))),
			"metadata": map[string]interface{}{
				"source": map[string]interface{}{"project": ExampleProject, "domain": cfg.Env, "name": "example-task"},
				"labels": map[string]interface{}{"execution": sfn.JsonPath_ExecutionId()},
			},
		},
	})
	ct := cachedtask.New(scope, "Example", &cachedtask.Props{
		GetFunction:      s.Functions["get"],
		PutFunction:      s.Functions["put"],
		ReserveFunction:  s.Functions["reserve"],
		ReleaseFunction:  s.Functions["release"],
		Project:          ExampleProject,
		Domain:           cfg.Env,
		KeyPath:          "$.key",
		Task:             write.Next(uri),
		OutputURIPath:    "$.output_uri",
		MetadataPath:     "$.metadata",
		HeartbeatSeconds: float64(min(cfg.MaxHeartbeatSeconds, cachedtask.DefaultHeartbeatSeconds)),
	})
	removal := awscdk.RemovalPolicy_DESTROY
	if cfg.Prod() {
		removal = awscdk.RemovalPolicy_RETAIN
	}
	name := "stampede-" + cfg.Env + "-example"
	s.ExampleStateMachine = sfn.NewStateMachine(scope, jsii.String("ExampleStateMachine"), &sfn.StateMachineProps{
		StateMachineName: jsii.String(name),
		Comment:          jsii.String("Stampede example: a task cached with the cachedtask construct"),
		DefinitionBody:   sfn.DefinitionBody_FromChainable(ct),
		// A bound on the wait loop too. A timed-out execution runs no
		// Catch: a reservation it held lapses by itself (three heartbeats).
		Timeout: awscdk.Duration_Hours(jsii.Number(ExampleTimeoutHours)),
		// Every state's input and output, in a log group of its own (the
		// /aws/vendedlogs/ prefix keeps the log group's resource policy
		// small), and an X-Ray trace per execution.
		Logs: &sfn.LogOptions{
			Destination: awslogs.NewLogGroup(scope, jsii.String("ExampleLogs"), &awslogs.LogGroupProps{
				LogGroupName:  jsii.String("/aws/vendedlogs/states/" + name),
				Retention:     retention(cfg.LogRetentionDays),
				RemovalPolicy: removal,
			}),
			Level:                sfn.LogLevel_ALL,
			IncludeExecutionData: jsii.Bool(true),
		},
		TracingEnabled: jsii.Bool(true),
	})
	awscdk.NewCfnOutput(scope, jsii.String("ExampleStateMachineArn"), &awscdk.CfnOutputProps{
		Value:       s.ExampleStateMachine.StateMachineArn(),
		Description: jsii.String(`Example cached-task state machine; start it with {"key": "..."}.`),
	})
}
