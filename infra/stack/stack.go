// Package stack is Stampede's CDK stack: the table, the outputs bucket, the
// six functions, the API (HTTP or REST), alarms, a dashboard and,
// optionally, an example cached-task state machine.
//
// The app in infra/ builds one stack per environment ("Stampede-<env>")
// from the CDK context (see Config). Your own CDK app can embed the stack
// too: call New with a Config of your own.
package stack

import (
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	apigw "github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	sfn "github.com/aws/aws-cdk-go/awscdk/v2/awsstepfunctions"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Table schema, shared with the service core (internal/).
const (
	PartitionKey = "pk"
	SortKey      = "sk"
	TTLAttribute = "ttl"
)

// Stampede is the synthesized stack and its main resources.
type Stampede struct {
	Stack  awscdk.Stack
	Config Config
	Table  awsdynamodb.Table
	// Bucket holds task outputs that Stampede manages (it may verify and
	// delete its objects): STAMPEDE_MANAGED_BUCKETS.
	Bucket awss3.Bucket
	// Functions by name: get, put, delete, reserve, release, flyte.
	Functions map[string]awslambda.Function
	LogGroups map[string]awslogs.LogGroup
	// APIURL is the API's base URL (ends in "/"); callers append
	// "v1/projects/...".
	APIURL *string
	// AccessLogs receives the API stage's access logs (one JSON line per
	// request: caller, source IP, request id, route, status, latency).
	AccessLogs awslogs.LogGroup
	// apiMetrics are the API's own metrics, for alarms and the dashboard.
	apiMetrics apiMetrics
	// policies are the functions' own policies, by function name.
	policies map[string]awsiam.Policy
	// restAPI is the REST API, in the REST variant.
	restAPI apigw.RestApi
	// ExampleStateMachine is set when Config.Example is.
	ExampleStateMachine sfn.StateMachine
}

// FromContext builds the environment's stack, "Stampede-<env>", in app
// from the app's context: the entry point of infra/main.go, and of the
// tests. It fails when the context is invalid or the function binaries
// have not been built.
func FromContext(app awscdk.App) (*Stampede, error) {
	cfg, err := ConfigFromContext(app.Node())
	if err != nil {
		return nil, err
	}
	if err := cfg.CheckAssets(); err != nil {
		return nil, err
	}
	props := &awscdk.StackProps{
		Description: jsii.String(fmt.Sprintf("Stampede (%s): cache and reservation service for workflow task outputs", cfg.Env)),
		Tags:        &map[string]*string{"project": jsii.String("stampede"), "environment": jsii.String(cfg.Env)},
	}
	// Environment-agnostic unless the CDK CLI has credentials to resolve
	// the account and region: `make synth` needs no AWS account.
	if account, region := os.Getenv("CDK_DEFAULT_ACCOUNT"), os.Getenv("CDK_DEFAULT_REGION"); account != "" && region != "" {
		props.Env = &awscdk.Environment{Account: jsii.String(account), Region: jsii.String(region)}
	}
	return New(app, cfg.StackName(), props, cfg), nil
}

// New builds the stack with cfg (see ConfigFromContext for the defaults;
// the caller is responsible for cfg.CheckAssets).
func New(scope constructs.Construct, id string, props *awscdk.StackProps, cfg Config) *Stampede {
	st := awscdk.NewStack(scope, jsii.String(id), props)
	s := &Stampede{
		Stack:     st,
		Config:    cfg,
		Functions: map[string]awslambda.Function{},
		LogGroups: map[string]awslogs.LogGroup{},
		policies:  map[string]awsiam.Policy{},
	}

	removal := awscdk.RemovalPolicy_DESTROY
	if cfg.Prod() {
		removal = awscdk.RemovalPolicy_RETAIN
	}
	s.Table = awsdynamodb.NewTable(st, jsii.String("Table"), &awsdynamodb.TableProps{
		PartitionKey:        &awsdynamodb.Attribute{Name: jsii.String(PartitionKey), Type: awsdynamodb.AttributeType_STRING},
		SortKey:             &awsdynamodb.Attribute{Name: jsii.String(SortKey), Type: awsdynamodb.AttributeType_STRING},
		BillingMode:         awsdynamodb.BillingMode_PAY_PER_REQUEST,
		TimeToLiveAttribute: jsii.String(TTLAttribute),
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{
			PointInTimeRecoveryEnabled: jsii.Bool(true),
		},
		// Server-side encryption with the AWS managed key (aws/dynamodb):
		// explicit in the template, auditable in CloudTrail, and no key
		// policy to manage. Callers need no KMS permission for it.
		Encryption:         awsdynamodb.TableEncryption_AWS_MANAGED,
		DeletionProtection: jsii.Bool(cfg.Prod()),
		RemovalPolicy:      removal,
	})

	lifecycle := []*awss3.LifecycleRule{
		{
			Id:                                  jsii.String("abort-incomplete-uploads"),
			AbortIncompleteMultipartUploadAfter: awscdk.Duration_Days(jsii.Number(7)),
		},
		{
			// Versioning keeps what a put's delete_blob, a delete, an
			// overwrite or the expiry below removes, for so many days;
			// then the delete markers left alone go too.
			Id:                          jsii.String("expire-noncurrent-versions"),
			NoncurrentVersionExpiration: awscdk.Duration_Days(jsii.Number(float64(cfg.NoncurrentVersionExpirationDays))),
			ExpiredObjectDeleteMarker:   jsii.Bool(true),
		},
	}
	if cfg.OutputsExpirationDays > 0 {
		// The functions cap the lifetime of entries pointing into the
		// bucket by the same figure (STAMPEDE_OUTPUT_EXPIRATION_DAYS).
		lifecycle = append(lifecycle, &awss3.LifecycleRule{
			Id:         jsii.String("expire-outputs"),
			Expiration: awscdk.Duration_Days(jsii.Number(float64(cfg.OutputsExpirationDays))),
		})
	}
	s.Bucket = awss3.NewBucket(st, jsii.String("Outputs"), &awss3.BucketProps{
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		Encryption:        awss3.BucketEncryption_S3_MANAGED,
		EnforceSSL:        jsii.Bool(true),
		ObjectOwnership:   awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		// Objects live under <project>/<domain>/..., and Stampede deletes
		// only its caller's own; versions make a deletion recoverable.
		Versioned:      jsii.Bool(true),
		LifecycleRules: &lifecycle,
		// No autoDeleteObjects: its custom resource would bring a role
		// with wildcard S3 actions. Empty the bucket (every version)
		// before destroying a non-prod stack (docs/deploy.md).
		RemovalPolicy: removal,
	})

	for _, f := range Functions() {
		s.Functions[f.Name] = s.newFunction(st, f, cfg)
	}

	switch cfg.API {
	case APIREST:
		s.newRestAPI(st, cfg)
	default:
		s.newHTTPAPI(st, cfg)
	}
	s.newMonitoring(st, cfg)
	if cfg.Example {
		s.newExample(st, cfg)
	}
	s.suppressNagFindings(cfg)

	output := func(id string, value *string, description string) {
		awscdk.NewCfnOutput(st, jsii.String(id), &awscdk.CfnOutputProps{Value: value, Description: jsii.String(description)})
	}
	output("ApiUrl", s.APIURL, "Base URL of the API: append v1/projects/{project}/domains/{domain}/...; sign requests with SigV4 (service execute-api).")
	output("TableName", s.Table.TableName(), "DynamoDB table of cache entries and reservations.")
	output("OutputsBucketName", s.Bucket.BucketName(), "S3 bucket for task outputs that Stampede manages.")
	for _, f := range Functions() {
		description := fmt.Sprintf("The %s function, for direct invocation (e.g. from Step Functions).", f.Name)
		if !f.Direct {
			description = fmt.Sprintf("The %s function (called through the API only: it refuses direct invocations).", f.Name)
		}
		output(f.Title()+"FunctionArn", s.Functions[f.Name].FunctionArn(), description)
	}
	return s
}
