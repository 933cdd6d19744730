package stack

import (
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Function describes one of Stampede's functions: its name (the folder
// under functions/ and build/), and every IAM action it may perform. This
// table is the single place where permissions are decided; the stack
// grants exactly these actions, on exactly the table (DynamoDB), the outputs
// bucket's objects and the bucket itself (S3), and the tests assert the
// synthesized policies against it.
type Function struct {
	Name        string
	Description string
	// TableActions are granted on the table's ARN only (no index ARNs:
	// the table has no indexes).
	TableActions []string
	// ObjectActions are granted on the outputs bucket's objects
	// (arn:aws:s3:::<bucket>/*).
	ObjectActions []string
	// BucketActions are granted on the outputs bucket's ARN.
	BucketActions []string
	// HTTP routes served by the function.
	Routes []Route
	// Operations the function serves, as its metrics name them (the
	// Operation dimension).
	Operations []string
	// Direct is set for a function that also serves direct invocations
	// (Step Functions, aws lambda invoke: a JSON payload, no API
	// Gateway). The flyte function serves its API routes only.
	Direct bool
}

// Route is one HTTP method on one path of the API.
type Route struct {
	Method string
	Path   string
}

// The API's paths (see docs/api.md).
const (
	CachePath        = "/v1/projects/{project}/domains/{domain}/cache/{key+}"
	ReservationsPath = "/v1/projects/{project}/domains/{domain}/reservations/{key+}"
	// FlytePath prefixes the methods of Flyte's cache service
	// (flyteidl2.cacheservice.v2.CacheService, docs/flyte.md): one POST
	// route per method, all to the flyte function.
	FlytePath = "/flyteidl2.cacheservice.v2.CacheService/"
)

// EnvOutputExpirationDays tells the functions after how many days the
// outputs bucket expires its objects ("0": never): the service caps the
// lifetime of entries pointing into the bucket by it, so that no entry
// outlives its object.
const EnvOutputExpirationDays = "STAMPEDE_OUTPUT_EXPIRATION_DAYS"

// Functions lists Stampede's six functions: one per operation of the
// HTTP API (get, put, delete, reserve, release), and flyte, which serves
// every method of Flyte's cache service. Flyte's protocol (protobuf over
// Connect, gRPC-Web and gRPC) has a function of its own so that its code
// stays out of the five others' binaries, their size and their cold start
// (issue 14); Flyte's calls share one pool of warm environments.
//
// The store keeps one item per (project, domain, key), holding the entry
// and the reservation, so every write, the fenced put included, is one
// conditional UpdateItem (internal/dynamostore): no DeleteItem, no
// TransactWriteItems.
//
//   - get reads the item (GetItem), checks that a managed output still
//     exists (HeadObject, authorised as s3:GetObject) and drops an entry
//     whose output is gone (a conditional UpdateItem); it also serves the
//     reservation's inspection (GET …/reservations/{key+}, op inspect: a
//     GetItem);
//   - put writes the entry (UpdateItem), may check its output first
//     (HeadObject) and deletes the managed output it replaces
//     (s3:DeleteObject);
//   - delete removes the entry (UpdateItem) and, if asked, its managed
//     output (s3:DeleteObject);
//   - reserve and release update the reservation (UpdateItem);
//   - flyte runs get, put, delete, reserve and release for Flyte: at most
//     the union of those functions' actions, less what Flyte's protocol
//     never asks for. It has no verify (Get) nor verify_output (Put), so
//     it never calls HeadObject: no s3:GetObject (which would also let it
//     read every output's content) and no s3:ListBucket. Put's
//     overwrite.delete_blob deletes the replaced output (s3:DeleteObject);
//     Delete never touches objects. The tests read internal/flyte and
//     fail if it starts to verify.
//
// s3:ListBucket on the bucket lets HeadObject of a missing object answer
// 404: without it S3 answers 403, which the service cannot tell from a
// real denial, and a get of an entry whose output has expired would fail
// instead of dropping the entry.
func Functions() []Function {
	return []Function{
		{
			Name:          "get",
			Operations:    []string{"get", "inspect"},
			Description:   "Stampede: look a cache entry up, or inspect a reservation",
			TableActions:  []string{"dynamodb:GetItem", "dynamodb:UpdateItem"},
			ObjectActions: []string{"s3:GetObject"},
			BucketActions: []string{"s3:ListBucket"},
			// The reservation's inspection (op inspect) is a read of the
			// same item: GetItem, already granted.
			Routes: []Route{{"GET", CachePath}, {"GET", ReservationsPath}},
			Direct: true,
		},
		{
			Name:          "put",
			Operations:    []string{"put"},
			Description:   "Stampede: store a cache entry",
			TableActions:  []string{"dynamodb:UpdateItem"},
			ObjectActions: []string{"s3:GetObject", "s3:DeleteObject"},
			BucketActions: []string{"s3:ListBucket"},
			Routes:        []Route{{"PUT", CachePath}},
			Direct:        true,
		},
		{
			Name:          "delete",
			Operations:    []string{"delete"},
			Description:   "Stampede: delete a cache entry",
			TableActions:  []string{"dynamodb:UpdateItem"},
			ObjectActions: []string{"s3:DeleteObject"},
			Routes:        []Route{{"DELETE", CachePath}},
			Direct:        true,
		},
		{
			Name:         "reserve",
			Operations:   []string{"reserve"},
			Description:  "Stampede: reserve a key, or extend a held reservation",
			TableActions: []string{"dynamodb:UpdateItem"},
			Routes:       []Route{{"POST", ReservationsPath}},
			Direct:       true,
		},
		{
			Name:         "release",
			Operations:   []string{"release"},
			Description:  "Stampede: release a held reservation",
			TableActions: []string{"dynamodb:UpdateItem"},
			Routes:       []Route{{"DELETE", ReservationsPath}},
			Direct:       true,
		},
		{
			Name:          "flyte",
			Operations:    []string{"get", "put", "delete", "reserve", "release"},
			Description:   "Stampede: Flyte's cache service (every operation)",
			TableActions:  []string{"dynamodb:GetItem", "dynamodb:UpdateItem"},
			ObjectActions: []string{"s3:DeleteObject"},
			Routes: []Route{
				{"POST", FlytePath + "Get"},
				{"POST", FlytePath + "Put"},
				{"POST", FlytePath + "Delete"},
				{"POST", FlytePath + "GetOrExtendReservation"},
				{"POST", FlytePath + "ReleaseReservation"},
			},
		},
	}
}

// FlyteBinaryMediaTypes are the binary content types of Flyte's calls.
func FlyteBinaryMediaTypes() []string {
	return []string{"application/proto", "application/grpc-web+proto"}
}

// FunctionByName returns the entry of Functions named name.
func FunctionByName(name string) (Function, bool) {
	for _, f := range Functions() {
		if f.Name == name {
			return f, true
		}
	}
	return Function{}, false
}

// Title is the function's name with an upper-case initial, for
// construct ids and output names ("Get").
func (f Function) Title() string { return string(f.Name[0]-'a'+'A') + f.Name[1:] }

// newFunction creates one function with its own role, log group and
// exactly its own permissions.
func (s *Stampede) newFunction(scope constructs.Construct, f Function, cfg Config) awslambda.Function {
	id := f.Title()
	name := fmt.Sprintf("stampede-%s-%s", cfg.Env, f.Name)
	removal := awscdk.RemovalPolicy_DESTROY
	if cfg.Prod() {
		removal = awscdk.RemovalPolicy_RETAIN
	}
	logGroup := awslogs.NewLogGroup(scope, jsii.String(id+"Logs"), &awslogs.LogGroupProps{
		LogGroupName:  jsii.String("/aws/lambda/" + name),
		Retention:     retention(cfg.LogRetentionDays),
		RemovalPolicy: removal,
	})

	// The role carries no managed policy (AWSLambdaBasicExecutionRole
	// would allow logs:* actions on every log group): only the statements
	// below.
	role := awsiam.NewRole(scope, jsii.String(id+"Role"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		Description: jsii.String(fmt.Sprintf("Stampede %s: the %s function", cfg.Env, f.Name)),
	})
	statements := []awsiam.PolicyStatement{
		// The log group exists (created above), so no CreateLogGroup. Its
		// ARN attribute ends in ":*", the log streams within the group:
		// the narrowest resource that PutLogEvents accepts.
		awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("WriteOwnLogs"),
			Actions:   jsii.Strings("logs:CreateLogStream", "logs:PutLogEvents"),
			Resources: jsii.Strings(*logGroup.LogGroupArn()),
		}),
		awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("Table"),
			Actions:   jsii.Strings(f.TableActions...),
			Resources: jsii.Strings(*s.Table.TableArn()),
		}),
	}
	if len(f.ObjectActions) > 0 {
		statements = append(statements, awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:     jsii.String("OutputObjects"),
			Actions: jsii.Strings(f.ObjectActions...),
			// S3 object actions are authorised on object ARNs; "<bucket
			// ARN>/*" (every object of this one bucket) is the only
			// pattern resource in the function policies, and the
			// narrowest that covers the keys clients choose.
			Resources: jsii.Strings(*s.Bucket.ArnForObjects(jsii.String("*"))),
		}))
	}
	if len(f.BucketActions) > 0 {
		statements = append(statements, awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("OutputsBucket"),
			Actions:   jsii.Strings(f.BucketActions...),
			Resources: jsii.Strings(*s.Bucket.BucketArn()),
		}))
	}
	policy := awsiam.NewPolicy(scope, jsii.String(id+"Policy"), &awsiam.PolicyProps{
		Roles:      &[]awsiam.IRole{role},
		Statements: &statements,
	})

	arch := awslambda.Architecture_ARM_64()
	if cfg.Architecture == ArchX8664 {
		arch = awslambda.Architecture_X86_64()
	}
	fn := awslambda.NewFunction(scope, jsii.String(id), &awslambda.FunctionProps{
		FunctionName: jsii.String(name),
		Description:  jsii.String(f.Description),
		Runtime:      awslambda.Runtime_PROVIDED_AL2023(),
		Architecture: arch,
		Handler:      jsii.String("bootstrap"),
		// Built by `make build`; synthesis neither needs Docker nor runs
		// a Go build (CheckAssets has verified the folder).
		Code: awslambda.Code_FromAsset(jsii.String(filepath.Join(cfg.AssetDir, f.Name)), nil),
		// From a measurement: see DefaultMemoryMB.
		MemorySize: jsii.Number(float64(cfg.MemoryMB)),
		Timeout:    awscdk.Duration_Seconds(jsii.Number(float64(cfg.TimeoutSeconds))),
		Role:       role,
		// The functions write one JSON line per request (log/slog); the
		// JSON format makes Lambda's own lines (START, REPORT) JSON too,
		// and the metric filters read both.
		LoggingFormat:         awslambda.LoggingFormat_JSON,
		LogGroup:              logGroup,
		ApplicationLogLevelV2: applicationLogLevel(cfg.LogLevel),
		SystemLogLevelV2:      awslambda.SystemLogLevel_INFO,
		Environment: &map[string]*string{
			"STAMPEDE_TABLE":                 s.Table.TableName(),
			"STAMPEDE_HEARTBEAT_MULTIPLIER":  jsii.String(strconv.Itoa(cfg.HeartbeatMultiplier)),
			"STAMPEDE_MAX_HEARTBEAT_SECONDS": jsii.String(strconv.Itoa(cfg.MaxHeartbeatSeconds)),
			"STAMPEDE_LOG_LEVEL":             jsii.String(cfg.LogLevel),
			"STAMPEDE_MANAGED_BUCKETS":       s.Bucket.BucketName(),
			EnvOutputExpirationDays:          jsii.String(strconv.Itoa(cfg.OutputsExpirationDays)),
		},
		// Lambda records each invocation's segment; CDK grants the two
		// X-Ray actions it needs (on "*": X-Ray has no resource ARNs).
		Tracing:                      awslambda.Tracing_ACTIVE,
		ReservedConcurrentExecutions: reservedConcurrency(cfg),
	})
	// The policy must be attached before the function can run with it.
	fn.Node().AddDependency(policy)
	s.LogGroups[f.Name] = logGroup
	s.policies[f.Name] = policy
	return fn
}

// reservedConcurrency is each function's reserved concurrency, or nil for
// none.
func reservedConcurrency(cfg Config) *float64 {
	if cfg.ReservedConcurrency == 0 {
		return nil
	}
	return jsii.Number(float64(cfg.ReservedConcurrency))
}

func applicationLogLevel(level string) awslambda.ApplicationLogLevel {
	switch level {
	case "debug":
		return awslambda.ApplicationLogLevel_DEBUG
	case "warn":
		return awslambda.ApplicationLogLevel_WARN
	case "error":
		return awslambda.ApplicationLogLevel_ERROR
	}
	return awslambda.ApplicationLogLevel_INFO
}

// retention maps a number of days onto the nearest retention CloudWatch
// Logs offers at or above it.
func retention(days int) awslogs.RetentionDays {
	for _, r := range []struct {
		days int
		r    awslogs.RetentionDays
	}{
		{1, awslogs.RetentionDays_ONE_DAY}, {3, awslogs.RetentionDays_THREE_DAYS},
		{5, awslogs.RetentionDays_FIVE_DAYS}, {7, awslogs.RetentionDays_ONE_WEEK},
		{14, awslogs.RetentionDays_TWO_WEEKS}, {30, awslogs.RetentionDays_ONE_MONTH},
		{60, awslogs.RetentionDays_TWO_MONTHS}, {90, awslogs.RetentionDays_THREE_MONTHS},
		{120, awslogs.RetentionDays_FOUR_MONTHS}, {150, awslogs.RetentionDays_FIVE_MONTHS},
		{180, awslogs.RetentionDays_SIX_MONTHS}, {365, awslogs.RetentionDays_ONE_YEAR},
		{400, awslogs.RetentionDays_THIRTEEN_MONTHS}, {545, awslogs.RetentionDays_EIGHTEEN_MONTHS},
		{731, awslogs.RetentionDays_TWO_YEARS}, {1096, awslogs.RetentionDays_THREE_YEARS},
		{1827, awslogs.RetentionDays_FIVE_YEARS}, {2192, awslogs.RetentionDays_SIX_YEARS},
		{2557, awslogs.RetentionDays_SEVEN_YEARS}, {2922, awslogs.RetentionDays_EIGHT_YEARS},
		{3288, awslogs.RetentionDays_NINE_YEARS}, {3653, awslogs.RetentionDays_TEN_YEARS},
	} {
		if days <= r.days {
			return r.r
		}
	}
	return awslogs.RetentionDays_TEN_YEARS
}
