package cachedtask_test

import (
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	sfn "github.com/aws/aws-cdk-go/awscdk/v2/awsstepfunctions"
	tasks "github.com/aws/aws-cdk-go/awscdk/v2/awsstepfunctionstasks"
	"github.com/aws/jsii-runtime-go"

	"github.com/stampede-cache/stampede/infra/cachedtask"
)

// A training step cached by Stampede, in a user's own stack (the sample of
// docs/step-functions.md, compiled here). The functions come from a
// deployed Stampede stack's outputs.
func Example() {
	out, _ := os.MkdirTemp("", "cdk.out") // (cdk.out by default; a temp dir in the test)
	defer os.RemoveAll(out)
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(out)})
	stack := awscdk.NewStack(app, jsii.String("Pipeline"), nil)
	fn := func(id, arn string) awslambda.IFunction {
		return awslambda.Function_FromFunctionArn(stack, jsii.String(id), jsii.String(arn))
	}
	const arn = "arn:aws:lambda:eu-west-1:123456789012:function:"
	trainer := fn("Trainer", arn+"trainer") // returns {"model_uri": "s3://..."}

	key := sfn.NewPass(stack, jsii.String("Key"), &sfn.PassProps{
		Parameters: &map[string]interface{}{
			"params":   sfn.JsonPath_ObjectAt(jsii.String("$.params")),
			"cacheKey": sfn.JsonPath_Hash(sfn.JsonPath_JsonToString(sfn.JsonPath_ObjectAt(jsii.String("$.params"))), jsii.String("SHA-256")),
		},
	})
	train := tasks.NewLambdaInvoke(stack, jsii.String("Train"), &tasks.LambdaInvokeProps{
		LambdaFunction:      trainer,
		PayloadResponseOnly: jsii.Bool(true),
	})
	cached := cachedtask.New(stack, "CachedTrain", &cachedtask.Props{
		GetFunction:     fn("StampedeGet", arn+"stampede-prod-get"),
		PutFunction:     fn("StampedePut", arn+"stampede-prod-put"),
		ReserveFunction: fn("StampedeReserve", arn+"stampede-prod-reserve"),
		ReleaseFunction: fn("StampedeRelease", arn+"stampede-prod-release"),
		Project:         "ml",
		Domain:          "production",
		KeyPath:         "$.cacheKey",
		Task:            train,
		OutputURIPath:   "$.model_uri",
		ResultPath:      "$.model",
	})
	evaluate := sfn.NewSucceed(stack, jsii.String("Evaluate"), nil)
	sfn.NewStateMachine(stack, jsii.String("StateMachine"), &sfn.StateMachineProps{
		DefinitionBody: sfn.DefinitionBody_FromChainable(key.Next(cached).Next(evaluate)),
		Timeout:        awscdk.Duration_Hours(jsii.Number(6)),
	})
	// Output:
}
