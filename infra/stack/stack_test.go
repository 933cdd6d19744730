package stack_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/stampede-cache/stampede/infra/internal/contractfacts"
	"github.com/stampede-cache/stampede/infra/stack"
)

func TestResourceCounts(t *testing.T) {
	common := map[string]int{
		"AWS::DynamoDB::Table":       1,
		"AWS::S3::Bucket":            1,
		"AWS::S3::BucketPolicy":      1,
		"AWS::Lambda::Function":      6,  // get, put, delete, reserve, release; flyte
		"AWS::Logs::LogGroup":        7,  // one per function, the API's access logs
		"AWS::Logs::MetricFilter":    0,  // the functions emit metrics (EMF)
		"AWS::CloudWatch::Alarm":     20, // errors, throttles, p99 duration per function; API 5xx and p99 latency
		"AWS::CloudWatch::Dashboard": 1,
		"AWS::Lambda::Permission":    11, // one per route (6 of the HTTP/JSON API, 5 of Flyte's): API Gateway may invoke that function only
	}
	httpAPI := map[string]int{
		"AWS::ApiGatewayV2::Api":         1,
		"AWS::ApiGatewayV2::Stage":       1,
		"AWS::ApiGatewayV2::Route":       11,
		"AWS::ApiGatewayV2::Integration": 6, // one per function
		"AWS::ApiGateway::RestApi":       0,
	}
	restAPI := map[string]int{
		"AWS::ApiGatewayV2::Api":     0,
		"AWS::ApiGateway::RestApi":   1,
		"AWS::ApiGateway::Method":    11,
		"AWS::ApiGateway::Resource":  15, // v1/projects/{project}/domains/{domain}/{cache,reservations}/{key+}; flyteidl2.cacheservice.v2.CacheService/{5 methods}
		"AWS::ApiGateway::Stage":     1,
		"AWS::ApiGateway::Account":   0, // no account-wide CloudWatch role
		"AWS::ApiGateway::ApiKey":    0,
		"AWS::ApiGateway::UsagePlan": 0,
	}
	restWithRole := map[string]int{}
	for k, n := range restAPI {
		restWithRole[k] = n
	}
	restWithRole["AWS::ApiGateway::Account"] = 1
	for _, tc := range []struct {
		v                   *variant
		api                 map[string]int
		roles, policies     int
		stateMach, logGroup int
	}{
		// Each function's role: its own policy and CDK's default policy
		// (X-Ray); the example state machine's role: a default policy.
		{devHTTP, httpAPI, 6, 12, 0, 0},
		{prod, httpAPI, 6, 12, 0, 0},
		{stagingREST, restAPI, 6, 12, 0, 0},
		{example, httpAPI, 7, 13, 1, 1},
		{restRole, restWithRole, 7, 12, 0, 0},
	} {
		t.Run(tc.v.name, func(t *testing.T) {
			tpl := tc.v.template(t)
			want := map[string]int{
				"AWS::IAM::Role":                   tc.roles,
				"AWS::IAM::Policy":                 tc.policies,
				"AWS::IAM::ManagedPolicy":          0,
				"AWS::StepFunctions::StateMachine": tc.stateMach,
			}
			for k, n := range common {
				want[k] = n
			}
			want["AWS::Logs::LogGroup"] += tc.logGroup
			for k, n := range tc.api {
				want[k] = n
			}
			for typ, n := range want {
				check(t, typ, func() { tpl.ResourceCountIs(jsii.String(typ), jsii.Number(float64(n))) })
			}
			// Nothing else: a new resource type must be added here
			// deliberately (e.g. no custom resource, no extra function).
			allowed := map[string]bool{"AWS::CDK::Metadata": true, "AWS::ApiGateway::Deployment": true}
			for typ := range want {
				allowed[typ] = true
			}
			for id, r := range tc.v.resources(t) {
				if !allowed[r["Type"].(string)] {
					t.Errorf("unexpected resource %s of type %s", id, r["Type"])
				}
			}
		})
	}
}

func TestStackNames(t *testing.T) {
	for v, want := range map[*variant]string{devHTTP: "Stampede-dev", prod: "Stampede-prod", stagingREST: "Stampede-staging"} {
		v.load(t)
		if v.stack != want {
			t.Errorf("%s: stack name %q, want %q", v.name, v.stack, want)
		}
	}
}

func TestFunctions(t *testing.T) {
	for _, tc := range []struct {
		v                   *variant
		env, arch, log      string
		memory              float64
		expiration          string
		reservedConcurrency any // nil: none
	}{
		{v: devHTTP, env: "dev", arch: "arm64", log: "info", memory: stack.DefaultMemoryMB, expiration: "30", reservedConcurrency: 10.0},
		{v: prod, env: "prod", arch: "arm64", log: "info", memory: stack.DefaultMemoryMB, expiration: "90", reservedConcurrency: 100.0},
		{v: stagingREST, env: "staging", arch: "x86_64", log: "debug", memory: 512, expiration: "0"},
	} {
		tpl := tc.v.template(t)
		table := tc.v.logicalID(t, "AWS::DynamoDB::Table", "Table")
		bucket := tc.v.logicalID(t, "AWS::S3::Bucket", "Outputs")
		for _, f := range stack.Functions() {
			t.Run(tc.v.name+"/"+f.Name, func(t *testing.T) {
				logs := tc.v.logicalID(t, "AWS::Logs::LogGroup", f.Title()+"Logs")
				check(t, "function properties", func() {
					tpl.HasResourceProperties(jsii.String("AWS::Lambda::Function"), assertions.Match_ObjectLike(&map[string]any{
						"FunctionName":  fmt.Sprintf("stampede-%s-%s", tc.env, f.Name),
						"Runtime":       "provided.al2023",
						"Architectures": []any{tc.arch},
						"Handler":       "bootstrap",
						"MemorySize":    tc.memory,
						"Timeout":       10,
						"TracingConfig": map[string]any{"Mode": "Active"},
						"LoggingConfig": map[string]any{
							"LogFormat":           "JSON",
							"LogGroup":            map[string]any{"Ref": logs},
							"ApplicationLogLevel": strings.ToUpper(tc.log),
						},
						"Environment": map[string]any{"Variables": map[string]any{
							"STAMPEDE_TABLE":                  map[string]any{"Ref": table},
							"STAMPEDE_HEARTBEAT_MULTIPLIER":   "3",
							"STAMPEDE_MAX_HEARTBEAT_SECONDS":  "10",
							"STAMPEDE_LOG_LEVEL":              tc.log,
							"STAMPEDE_MANAGED_BUCKETS":        map[string]any{"Ref": bucket},
							"STAMPEDE_OUTPUT_EXPIRATION_DAYS": tc.expiration,
						}},
					}))
				})
				id := tc.v.logicalID(t, "AWS::Lambda::Function", f.Title())
				props := tc.v.resources(t)[id]["Properties"].(map[string]any)
				if got := props["ReservedConcurrentExecutions"]; got != tc.reservedConcurrency {
					t.Errorf("reserved concurrency %v, want %v", got, tc.reservedConcurrency)
				}
				// The code is the asset built by `make build`, staged
				// from the asset folder: an S3 object, never inline.
				code := props["Code"].(map[string]any)
				if _, ok := code["S3Key"]; !ok || code["ZipFile"] != nil {
					t.Errorf("code is not an asset: %v", code)
				}
			})
		}
	}
}

// policyActions maps each action a role may perform to the resources it
// may perform it on (flattened), over every policy attached to the role.
func policyActions(t *testing.T, v *variant, role string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, props := range v.ofType(t, "AWS::IAM::Policy") {
		attached := false
		for _, r := range list(props["Roles"]) {
			if flat(r) == "${"+role+"}" {
				attached = true
			}
		}
		if !attached {
			continue
		}
		for _, s := range list(props["PolicyDocument"].(map[string]any)["Statement"]) {
			st := s.(map[string]any)
			if st["Effect"] != "Allow" || st["NotAction"] != nil || st["NotResource"] != nil || st["Condition"] != nil {
				t.Errorf("role %s: unexpected statement %v", role, st)
			}
			for _, a := range list(st["Action"]) {
				for _, r := range list(st["Resource"]) {
					out[a.(string)] = append(out[a.(string)], flat(r))
				}
			}
		}
	}
	return out
}

// TestLeastPrivilege checks that each function's role may perform exactly
// its own actions (stack.Functions), on exactly the table, the bucket's
// objects and its own log group, and nothing else.
func TestLeastPrivilege(t *testing.T) {
	for _, v := range variants {
		table := v.logicalID(t, "AWS::DynamoDB::Table", "Table")
		bucket := v.logicalID(t, "AWS::S3::Bucket", "Outputs")
		for _, f := range stack.Functions() {
			t.Run(v.name+"/"+f.Name, func(t *testing.T) {
				fnID := v.logicalID(t, "AWS::Lambda::Function", f.Title())
				fn := v.resources(t)[fnID]["Properties"].(map[string]any)
				roleArn := flat(fn["Role"])
				role := strings.TrimSuffix(strings.TrimPrefix(roleArn, "${"), ".Arn}")
				roleProps := v.resources(t)[role]["Properties"].(map[string]any)
				if roleProps["ManagedPolicyArns"] != nil || roleProps["Policies"] != nil {
					t.Errorf("role %s has managed or inline policies: %v", role, roleProps)
				}
				trust := flat(roleProps["AssumeRolePolicyDocument"])
				if !strings.Contains(trust, `"Service":"lambda.amazonaws.com"`) {
					t.Errorf("role %s trust policy: %s", role, trust)
				}

				want := map[string][]string{
					"logs:CreateLogStream": {"${" + v.logicalID(t, "AWS::Logs::LogGroup", f.Title()+"Logs") + ".Arn}"},
					"logs:PutLogEvents":    {"${" + v.logicalID(t, "AWS::Logs::LogGroup", f.Title()+"Logs") + ".Arn}"},
					// Active tracing; X-Ray has no resource ARNs.
					"xray:PutTraceSegments":    {"*"},
					"xray:PutTelemetryRecords": {"*"},
				}
				for _, a := range f.TableActions {
					want[a] = []string{"${" + table + ".Arn}"}
				}
				for _, a := range f.ObjectActions {
					want[a] = []string{"${" + bucket + ".Arn}/*"}
				}
				for _, a := range f.BucketActions {
					want[a] = []string{"${" + bucket + ".Arn}"}
				}
				got := policyActions(t, v, role)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("role %s:\n got  %v\n want %v", role, got, want)
				}
			})
		}
	}
}

// The permissions, written out independently of stack.Functions, so that
// a change of the table is a deliberate change of this test too.
func TestPermissionTable(t *testing.T) {
	want := map[string][]string{
		"get":     {"dynamodb:GetItem", "dynamodb:UpdateItem", "s3:GetObject", "s3:ListBucket"},
		"put":     {"dynamodb:UpdateItem", "s3:DeleteObject", "s3:GetObject", "s3:ListBucket"},
		"delete":  {"dynamodb:UpdateItem", "s3:DeleteObject"},
		"reserve": {"dynamodb:UpdateItem"},
		"release": {"dynamodb:UpdateItem"},
		"flyte":   {"dynamodb:GetItem", "dynamodb:UpdateItem", "s3:DeleteObject"},
	}
	if len(stack.Functions()) != len(want) {
		t.Fatalf("%d functions, want %d", len(stack.Functions()), len(want))
	}
	for _, f := range stack.Functions() {
		got := sorted(append(append(append([]string{}, f.TableActions...), f.ObjectActions...), f.BucketActions...))
		if !reflect.DeepEqual(got, want[f.Name]) {
			t.Errorf("%s: actions %v, want %v", f.Name, got, want[f.Name])
		}
	}
}

// starActions may be granted on "*" only: they have no resource-level
// permissions (X-Ray; CloudWatch Logs' delivery to a state machine's log
// group).
var starActions = map[string]bool{
	"xray:PutTraceSegments": true, "xray:PutTelemetryRecords": true,
	"xray:GetSamplingRules": true, "xray:GetSamplingTargets": true,
	"logs:CreateLogDelivery": true, "logs:GetLogDelivery": true, "logs:UpdateLogDelivery": true,
	"logs:DeleteLogDelivery": true, "logs:ListLogDeliveries": true, "logs:PutResourcePolicy": true,
	"logs:DescribeResourcePolicies": true, "logs:DescribeLogGroups": true,
}

// TestNoWildcards checks every Allow statement of every IAM policy in
// every variant: no wildcard in an action; "*" only for actions that have
// no resource-level permissions; the only other patterns are the ones
// listed (objects of the outputs bucket, the example's prefix of it, and
// the versions of a function, which CDK's LambdaInvoke task adds).
func TestNoWildcards(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			bucket := v.logicalID(t, "AWS::S3::Bucket", "Outputs")
			fns := map[string]bool{}
			for id := range v.ofType(t, "AWS::Lambda::Function") {
				fns["${"+id+".Arn}:*"] = true
			}
			allowedPatterns := map[string]bool{
				"${" + bucket + ".Arn}/*":              true,
				"${" + bucket + ".Arn}/examples/dev/*": true,
			}
			var docs []any
			for _, p := range v.ofType(t, "AWS::IAM::Policy") {
				docs = append(docs, p["PolicyDocument"])
			}
			for id, p := range v.ofType(t, "AWS::IAM::Role") {
				for _, inline := range list(p["Policies"]) {
					docs = append(docs, inline.(map[string]any)["PolicyDocument"])
				}
				managed := flat(p["ManagedPolicyArns"])
				// API Gateway's account role: the managed policy API
				// Gateway documents for it (apiGatewayCloudWatchRole=true).
				if p["ManagedPolicyArns"] != nil && !(strings.HasPrefix(id, "RestApiCloudWatchRole") && strings.Contains(managed, "policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs")) {
					t.Errorf("role %s has managed policies: %v", id, managed)
				}
			}
			for _, d := range docs {
				for _, s := range list(d.(map[string]any)["Statement"]) {
					st := s.(map[string]any)
					if st["Effect"] != "Allow" {
						continue
					}
					for _, a := range list(st["Action"]) {
						if strings.Contains(a.(string), "*") {
							t.Errorf("wildcard action %q", a)
						}
					}
					if st["NotAction"] != nil || st["NotResource"] != nil {
						t.Errorf("NotAction/NotResource: %v", st)
					}
					for _, r := range list(st["Resource"]) {
						res := flat(r)
						if res == "*" {
							for _, a := range list(st["Action"]) {
								if !starActions[a.(string)] {
									t.Errorf("%s on every resource", a)
								}
							}
							continue
						}
						if strings.Contains(res, "*") && !allowedPatterns[res] && !fns[res] {
							t.Errorf("wildcard resource %q", res)
						}
					}
				}
			}
			// The bucket policy only denies (EnforceSSL's s3:* deny on
			// insecure transport): it grants nothing.
			for _, p := range v.ofType(t, "AWS::S3::BucketPolicy") {
				for _, s := range list(p["PolicyDocument"].(map[string]any)["Statement"]) {
					st := s.(map[string]any)
					cond := flat(st["Condition"])
					if st["Effect"] != "Deny" || !strings.Contains(cond, `"aws:SecureTransport":"false"`) {
						t.Errorf("bucket policy statement: %v", st)
					}
				}
			}
		})
	}
}

func TestTable(t *testing.T) {
	for _, tc := range []struct {
		v          *variant
		protected  bool
		policy     string
		bucketKeep string
	}{
		{devHTTP, false, "Delete", "Delete"},
		{stagingREST, false, "Delete", "Delete"},
		{prod, true, "Retain", "Retain"},
	} {
		t.Run(tc.v.name, func(t *testing.T) {
			tpl := tc.v.template(t)
			check(t, "table", func() {
				tpl.HasResource(jsii.String("AWS::DynamoDB::Table"), &map[string]any{
					"DeletionPolicy":      tc.policy,
					"UpdateReplacePolicy": tc.policy,
					"Properties": map[string]any{
						"KeySchema": []any{
							map[string]any{"AttributeName": "pk", "KeyType": "HASH"},
							map[string]any{"AttributeName": "sk", "KeyType": "RANGE"},
						},
						"AttributeDefinitions": []any{
							map[string]any{"AttributeName": "pk", "AttributeType": "S"},
							map[string]any{"AttributeName": "sk", "AttributeType": "S"},
						},
						"BillingMode":                      "PAY_PER_REQUEST",
						"TimeToLiveSpecification":          map[string]any{"AttributeName": "ttl", "Enabled": true},
						"PointInTimeRecoverySpecification": map[string]any{"PointInTimeRecoveryEnabled": true},
						"SSESpecification":                 map[string]any{"SSEEnabled": true},
						"DeletionProtectionEnabled":        tc.protected,
					},
				})
			})
			check(t, "bucket", func() {
				tpl.HasResource(jsii.String("AWS::S3::Bucket"), &map[string]any{"DeletionPolicy": tc.bucketKeep})
			})
			for id, r := range tc.v.resources(t) {
				if r["Type"] == "AWS::Logs::LogGroup" && r["DeletionPolicy"] != tc.policy {
					t.Errorf("log group %s: DeletionPolicy %v, want %s", id, r["DeletionPolicy"], tc.policy)
				}
			}
		})
	}
}

func TestBucket(t *testing.T) {
	for _, tc := range []struct {
		v                  *variant
		expiry, noncurrent float64 // expiry 0: no expiration rule
	}{
		{devHTTP, 30, 7}, {prod, 90, 30}, {stagingREST, 0, 3},
	} {
		t.Run(tc.v.name, func(t *testing.T) {
			tpl := tc.v.template(t)
			check(t, "bucket", func() {
				tpl.HasResourceProperties(jsii.String("AWS::S3::Bucket"), &map[string]any{
					"PublicAccessBlockConfiguration": map[string]any{
						"BlockPublicAcls": true, "BlockPublicPolicy": true, "IgnorePublicAcls": true, "RestrictPublicBuckets": true,
					},
					"BucketEncryption": map[string]any{"ServerSideEncryptionConfiguration": []any{
						map[string]any{"ServerSideEncryptionByDefault": map[string]any{"SSEAlgorithm": "AES256"}},
					}},
					// A deletion (delete_blob, expiry) keeps the previous
					// version for a while.
					"VersioningConfiguration": map[string]any{"Status": "Enabled"},
				})
			})
			for _, props := range tc.v.ofType(t, "AWS::S3::Bucket") {
				var expiry, noncurrent, markers any
				for _, r := range list(props["LifecycleConfiguration"].(map[string]any)["Rules"]) {
					rule := r.(map[string]any)
					if e, ok := rule["ExpirationInDays"]; ok {
						expiry = e
					}
					if n, ok := rule["NoncurrentVersionExpiration"].(map[string]any); ok {
						noncurrent, markers = n["NoncurrentDays"], rule["ExpiredObjectDeleteMarker"]
					}
					if rule["Status"] != "Enabled" {
						t.Errorf("rule %v is not enabled", rule)
					}
				}
				if tc.expiry == 0 && expiry != nil || tc.expiry != 0 && expiry != tc.expiry {
					t.Errorf("expiration %v days, want %v", expiry, tc.expiry)
				}
				if noncurrent != tc.noncurrent || markers != true {
					t.Errorf("noncurrent versions expire after %v days (delete markers removed: %v), want %v", noncurrent, markers, tc.noncurrent)
				}
			}
		})
	}
}

// routeKeys are the contract's routes, each with the function serving it.
var routeKeys = map[string]string{
	"GET " + stack.CachePath:           "get",
	"PUT " + stack.CachePath:           "put",
	"DELETE " + stack.CachePath:        "delete",
	"POST " + stack.ReservationsPath:   "reserve",
	"DELETE " + stack.ReservationsPath: "release",
	"GET " + stack.ReservationsPath:    "get", // op inspect
	// Flyte's cache service: every method to the flyte function.
	"POST " + stack.FlytePath + "Get":                    "flyte",
	"POST " + stack.FlytePath + "Put":                    "flyte",
	"POST " + stack.FlytePath + "Delete":                 "flyte",
	"POST " + stack.FlytePath + "GetOrExtendReservation": "flyte",
	"POST " + stack.FlytePath + "ReleaseReservation":     "flyte",
}

func TestHTTPRoutesRequireIAM(t *testing.T) {
	for _, v := range []*variant{devHTTP, prod, example} {
		t.Run(v.name, func(t *testing.T) {
			integrations := v.ofType(t, "AWS::ApiGatewayV2::Integration")
			got := map[string]string{}
			for id, r := range v.ofType(t, "AWS::ApiGatewayV2::Route") {
				if r["AuthorizationType"] != "AWS_IAM" {
					t.Errorf("route %s (%v): AuthorizationType %v, want AWS_IAM", id, r["RouteKey"], r["AuthorizationType"])
				}
				target := strings.TrimSuffix(strings.TrimPrefix(flat(r["Target"]), "integrations/${"), "}")
				integ, ok := integrations[target]
				if !ok {
					t.Fatalf("route %v: target %v", r["RouteKey"], r["Target"])
				}
				if integ["IntegrationType"] != "AWS_PROXY" || integ["PayloadFormatVersion"] != "2.0" {
					t.Errorf("integration %s: %v", target, integ)
				}
				fn := strings.TrimSuffix(strings.TrimPrefix(flat(integ["IntegrationUri"]), "${"), ".Arn}")
				got[r["RouteKey"].(string)] = fn
			}
			want := map[string]string{}
			for k, f := range routeKeys {
				fs, _ := stack.FunctionByName(f)
				want[k] = v.logicalID(t, "AWS::Lambda::Function", fs.Title())
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("routes:\n got  %v\n want %v", got, want)
			}
			rate, burst := 100.0, 200.0
			if v == prod {
				rate, burst = 1000, 2000
			}
			check(t, "default stage", func() {
				v.template(t).HasResourceProperties(jsii.String("AWS::ApiGatewayV2::Stage"), &map[string]any{
					"StageName": "$default", "AutoDeploy": true,
					"DefaultRouteSettings": map[string]any{"ThrottlingRateLimit": rate, "ThrottlingBurstLimit": burst},
				})
			})
			checkAccessLogs(t, v, "AWS::ApiGatewayV2::Stage", "$context.routeKey")
		})
	}
}

func TestRESTMethodsRequireIAM(t *testing.T) {
	v := stagingREST
	resources := v.ofType(t, "AWS::ApiGateway::Resource")
	api := v.logicalID(t, "AWS::ApiGateway::RestApi", "RestApi")
	var path func(ref any) string
	path = func(ref any) string {
		s := flat(ref)
		if s == "${"+api+".RootResourceId}" {
			return ""
		}
		id := strings.TrimSuffix(strings.TrimPrefix(s, "${"), "}")
		r, ok := resources[id]
		if !ok {
			t.Fatalf("unknown resource %s", s)
		}
		return path(r["ParentId"]) + "/" + r["PathPart"].(string)
	}
	got := map[string]string{}
	for id, m := range v.ofType(t, "AWS::ApiGateway::Method") {
		if m["AuthorizationType"] != "AWS_IAM" {
			t.Errorf("method %s: AuthorizationType %v, want AWS_IAM", id, m["AuthorizationType"])
		}
		integ := m["Integration"].(map[string]any)
		if integ["Type"] != "AWS_PROXY" || integ["IntegrationHttpMethod"] != "POST" {
			t.Errorf("method %s: integration %v", id, integ)
		}
		uri := flat(integ["Uri"])
		fn := uri[strings.Index(uri, "functions/${")+len("functions/${") : strings.Index(uri, ".Arn}/invocations")]
		got[m["HttpMethod"].(string)+" "+path(m["ResourceId"])] = fn
	}
	want := map[string]string{}
	for k, f := range routeKeys {
		fs, _ := stack.FunctionByName(f)
		want[k] = v.logicalID(t, "AWS::Lambda::Function", fs.Title())
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("methods:\n got  %v\n want %v", got, want)
	}
	tpl := v.template(t)
	check(t, "binary media types", func() {
		tpl.HasResourceProperties(jsii.String("AWS::ApiGateway::RestApi"), &map[string]any{
			"BinaryMediaTypes": stack.FlyteBinaryMediaTypes(),
		})
	})
	check(t, "stage", func() {
		tpl.HasResourceProperties(jsii.String("AWS::ApiGateway::Stage"), &map[string]any{
			"StageName":      "staging",
			"TracingEnabled": true,
			"MethodSettings": []any{map[string]any{
				"HttpMethod": "*", "ResourcePath": "/*", "ThrottlingRateLimit": 50, "ThrottlingBurstLimit": 75,
			}},
		})
	})
	checkAccessLogs(t, v, "AWS::ApiGateway::Stage", "$context.resourcePath")
	check(t, "regional endpoint", func() {
		tpl.HasResourceProperties(jsii.String("AWS::ApiGateway::RestApi"), &map[string]any{
			"EndpointConfiguration": map[string]any{"Types": []any{"REGIONAL"}},
		})
	})
	// Each function may be invoked by this API's stage, on its own
	// method and path only (path parameters are "*" in the ARN).
	perms := map[string]string{}
	for _, p := range v.ofType(t, "AWS::Lambda::Permission") {
		src := flat(p["SourceArn"])
		i := strings.Index(src, "${"+api+"}/${RestApiDeploymentStagestaging")
		if p["Principal"] != "apigateway.amazonaws.com" || i < 0 {
			t.Errorf("permission %v", p)
			continue
		}
		route := src[strings.Index(src[i+3:], "}/")+i+3+2:]
		route = route[strings.Index(route, "}/")+2:]
		perms[route] = strings.TrimSuffix(strings.TrimPrefix(flat(p["FunctionName"]), "${"), ".Arn}")
	}
	wantPerms := map[string]string{}
	for k, f := range want {
		method, path, _ := strings.Cut(k, " ")
		for _, param := range []string{"{project}", "{domain}", "{key+}"} {
			path = strings.ReplaceAll(path, param, "*")
		}
		wantPerms[method+path] = f
	}
	if !reflect.DeepEqual(perms, wantPerms) {
		t.Errorf("invoke permissions:\n got  %v\n want %v", perms, wantPerms)
	}
}

func TestLogGroups(t *testing.T) {
	for _, tc := range []struct {
		v         *variant
		env       string
		retention float64
	}{{devHTTP, "dev", 14}, {prod, "prod", 90}, {stagingREST, "staging", 14}} {
		names := []string{"/aws/apigateway/stampede-" + tc.env + "/access"}
		for _, f := range stack.Functions() {
			names = append(names, "/aws/lambda/stampede-"+tc.env+"-"+f.Name)
		}
		for _, name := range names {
			check(t, tc.v.name+" "+name, func() {
				tc.v.template(t).HasResourceProperties(jsii.String("AWS::Logs::LogGroup"), &map[string]any{
					"LogGroupName":    name,
					"RetentionInDays": tc.retention,
				})
			})
		}
	}
}

// checkAccessLogs checks that the API stage writes one JSON line per
// request into the access log group, naming the caller, source IP, request
// id, route, status and latency.
func checkAccessLogs(t *testing.T, v *variant, stageType, route string) {
	t.Helper()
	logs := v.logicalID(t, "AWS::Logs::LogGroup", "ApiAccessLogs")
	for id, p := range v.ofType(t, stageType) {
		settings, _ := p["AccessLogSettings"].(map[string]any) // HTTP API
		if rest, ok := p["AccessLogSetting"].(map[string]any); ok {
			settings = rest
		}
		if flat(settings["DestinationArn"]) != "${"+logs+".Arn}" {
			t.Errorf("stage %s: access logs go to %v", id, settings["DestinationArn"])
			continue
		}
		var fields map[string]string
		if err := json.Unmarshal([]byte(settings["Format"].(string)), &fields); err != nil {
			t.Errorf("stage %s: access log format is not JSON: %v", id, err)
			continue
		}
		for k, want := range map[string]string{
			"userArn": "$context.identity.userArn", "caller": "$context.identity.caller", "accountId": "$context.identity.accountId",
			"sourceIp": "$context.identity.sourceIp", "requestId": "$context.requestId", "route": route,
			"status": "$context.status", "responseLatency": "$context.responseLatency", "integrationLatency": "$context.integrationLatency",
		} {
			if fields[k] != want {
				t.Errorf("stage %s: access log field %s = %q, want %q", id, k, fields[k], want)
			}
		}
	}
}

// TestMetricNames keeps the stack's metric names those of the contract the
// functions emit (CONTRACT.md, issue 11).
func TestMetricNames(t *testing.T) {
	got := []string{stack.MetricHits, stack.MetricMisses, stack.MetricPutsCreated, stack.MetricPutsOverwritten,
		stack.MetricPutsRefused, stack.MetricFencedPutsRefused, stack.MetricReservationsAcquired,
		stack.MetricReservationsContended, stack.MetricReservationsTakenOver, stack.MetricThrottles,
		stack.MetricUnavailable, stack.MetricErrors, stack.MetricLatency}
	want := []string{"Hits", "Misses", "PutsCreated", "PutsOverwritten", "PutsRefused", "FencedPutsRefused",
		"ReservationsAcquired", "ReservationsContended", "ReservationsTakenOver", "Throttles", "Unavailable", "Errors", "Latency"}
	if !reflect.DeepEqual(got, want) || stack.MetricsNamespace != "Stampede" || stack.DimOperation != "Operation" {
		t.Errorf("metrics %v in %s by %s, want %v in Stampede by Operation", got, stack.MetricsNamespace, stack.DimOperation, want)
	}
	if ops := stack.Operations(); !reflect.DeepEqual(sorted(ops), []string{"delete", "get", "inspect", "put", "release", "reserve"}) {
		t.Errorf("operations %v", ops)
	}
}

func TestAlarms(t *testing.T) {
	for _, v := range []*variant{devHTTP, stagingREST} {
		t.Run(v.name, func(t *testing.T) {
			env := v.context["env"]
			alarms := map[string]map[string]any{}
			for _, p := range v.ofType(t, "AWS::CloudWatch::Alarm") {
				alarms[p["AlarmName"].(string)] = p
			}
			emf := func(metric, op string) string {
				return `"Dimensions":[{"Name":"Operation","Value":"` + op + `"}],"MetricName":"` + metric + `","Namespace":"Stampede"`
			}
			var all []map[string]any
			for _, f := range stack.Functions() {
				fnRef := "${" + v.logicalID(t, "AWS::Lambda::Function", f.Title()) + "}"
				fnDim := `"Dimensions":[{"Name":"FunctionName","Value":{"Ref":"` + strings.TrimSuffix(strings.TrimPrefix(fnRef, "${"), "}") + `"}}]`
				prefix := "stampede-" + env + "-" + f.Name
				errs, ok := alarms[prefix+"-errors"]
				if !ok {
					t.Fatalf("no alarm %s-errors", prefix)
				}
				want := []string{`"MetricName":"Errors","Namespace":"AWS/Lambda"`, "FILL("}
				for _, op := range f.Operations {
					want = append(want, emf("Errors", op))
				}
				for _, s := range want {
					if m := flat(errs["Metrics"]); !strings.Contains(m, s) {
						t.Errorf("%s-errors metrics lack %s: %s", prefix, s, m)
					}
				}
				thr, ok := alarms[prefix+"-throttles"]
				want = []string{`"MetricName":"Throttles","Namespace":"AWS/Lambda"`, fnDim}
				for _, op := range f.Operations {
					want = append(want, emf("Throttles", op))
				}
				for _, s := range want {
					if m := flat(thr["Metrics"]); !ok || !strings.Contains(m, s) || thr["Threshold"] != 1.0 {
						t.Errorf("%s-throttles lacks %s: %v", prefix, s, thr)
					}
				}
				dur, ok := alarms[prefix+"-p99-duration"]
				if m := flat(dur["Metrics"]); !ok || !strings.Contains(m, `"MetricName":"Duration","Namespace":"AWS/Lambda"`) || !strings.Contains(m, `"Stat":"p99"`) || !strings.Contains(m, fnDim) || dur["Threshold"] != 1000.0 {
					t.Errorf("%s-p99-duration: %v", prefix, dur)
				}
				all = append(all, errs, thr, dur)
			}
			serverErrors, latency := `"MetricName":"5xx"`, `"MetricName":"Latency"`
			if v.context["api"] == "rest" {
				serverErrors = `"MetricName":"5XXError"`
			}
			api5xx, ok := alarms["stampede-"+env+"-api-5xx"]
			if m := flat(api5xx); !ok || !strings.Contains(m, serverErrors) || !strings.Contains(m, `"Namespace":"AWS/ApiGateway"`) || !strings.Contains(m, `"Statistic":"Sum"`) {
				t.Errorf("api 5xx alarm: %v", api5xx)
			}
			apiLatency, ok := alarms["stampede-"+env+"-api-p99-latency"]
			if m := flat(apiLatency); !ok || !strings.Contains(m, latency) || !strings.Contains(m, `"ExtendedStatistic":"p99"`) || apiLatency["Threshold"] != 1000.0 {
				t.Errorf("api latency alarm: %v", apiLatency)
			}
			for _, a := range append(all, api5xx, apiLatency) {
				actions := list(a["AlarmActions"])
				if v == stagingREST && (len(actions) != 1 || actions[0] != "arn:aws:sns:eu-west-1:123456789012:oncall") {
					t.Errorf("%s: alarm actions %v", a["AlarmName"], actions)
				}
				if v == devHTTP && len(actions) != 0 {
					t.Errorf("%s: alarm actions %v", a["AlarmName"], actions)
				}
			}
		})
	}
}

func TestDashboard(t *testing.T) {
	for _, p := range devHTTP.ofType(t, "AWS::CloudWatch::Dashboard") {
		if p["DashboardName"] != "Stampede-dev" {
			t.Errorf("dashboard name %v", p["DashboardName"])
		}
		body := flat(p["DashboardBody"])
		want := []string{
			`"AWS/Lambda","Duration"`, `"AWS/Lambda","Throttles"`, `"AWS/Lambda","Invocations"`,
			`"AWS/ApiGateway","5xx"`, `"AWS/ApiGateway","4xx"`, `"AWS/ApiGateway","Count"`, `"AWS/ApiGateway","Latency"`,
			"hit ratio", `"type":"alarm"`,
		}
		emf := func(metric, op string) string { return `"Stampede","` + metric + `","Operation","` + op + `"` }
		for metric, ops := range map[string][]string{
			stack.MetricHits: {"get"}, stack.MetricMisses: {"get"},
			stack.MetricPutsCreated: {"put"}, stack.MetricPutsOverwritten: {"put"}, stack.MetricPutsRefused: {"put"}, stack.MetricFencedPutsRefused: {"put"},
			stack.MetricReservationsAcquired: {"reserve"}, stack.MetricReservationsContended: {"reserve"}, stack.MetricReservationsTakenOver: {"reserve"},
			stack.MetricLatency: stack.Operations(), stack.MetricUnavailable: stack.Operations(),
			stack.MetricErrors: stack.Operations(), stack.MetricThrottles: stack.Operations(),
		} {
			for _, op := range ops {
				want = append(want, emf(metric, op))
			}
		}
		for _, s := range want {
			if !strings.Contains(body, s) {
				t.Errorf("dashboard lacks %s", s)
			}
		}
		if !strings.Contains(body, `"stat":"p99"`) || !strings.Contains(body, `"stat":"p50"`) {
			t.Errorf("dashboard lacks p50 and p99 latency")
		}
	}
}

func TestOutputs(t *testing.T) {
	for _, tc := range []struct {
		v    *variant
		want []string
	}{
		{devHTTP, []string{"ApiUrl", "ApiId", "TableName", "OutputsBucketName"}},
		{stagingREST, []string{"ApiUrl", "ApiId", "ApiStage", "TableName", "OutputsBucketName"}},
		{example, []string{"ApiUrl", "TableName", "ExampleStateMachineArn"}},
	} {
		tc.v.load(t)
		outputs := tc.v.json["Outputs"].(map[string]any)
		want := tc.want
		for _, f := range stack.Functions() {
			want = append(want, f.Title()+"FunctionArn")
		}
		for _, o := range want {
			if _, ok := outputs[o]; !ok {
				t.Errorf("%s: no output %s", tc.v.name, o)
			}
		}
		// Only the functions that serve direct invocations are offered
		// for them (the flyte function refuses them).
		for _, f := range stack.Functions() {
			o, _ := outputs[f.Title()+"FunctionArn"].(map[string]any)
			description, _ := o["Description"].(string)
			if offered := strings.Contains(description, "for direct invocation"); offered != f.Direct {
				t.Errorf("%s: output %sFunctionArn says %q, direct invocation %v", tc.v.name, f.Title(), description, f.Direct)
			}
		}
	}
	url := flat(devHTTP.json["Outputs"].(map[string]any)["ApiUrl"].(map[string]any)["Value"])
	if !strings.HasPrefix(url, "https://${HttpApi") || !strings.HasSuffix(url, "/") {
		t.Errorf("HTTP API URL %s", url)
	}
	url = flat(stagingREST.json["Outputs"].(map[string]any)["ApiUrl"].(map[string]any)["Value"])
	if !strings.HasPrefix(url, "https://${RestApi") || !strings.Contains(url, "/${RestApiDeploymentStagestaging") {
		t.Errorf("REST API URL %s", url)
	}
}

// asl returns the example state machine's definition, with references to
// other resources rendered as ${Id.Attr}.
func asl(t *testing.T) map[string]any {
	t.Helper()
	sms := example.ofType(t, "AWS::StepFunctions::StateMachine")
	if len(sms) != 1 {
		t.Fatalf("%d state machines", len(sms))
	}
	for _, p := range sms {
		var def map[string]any
		if err := json.Unmarshal([]byte(flat(p["DefinitionString"])), &def); err != nil {
			t.Fatal(err)
		}
		return def
	}
	return nil
}

func TestExampleStateMachine(t *testing.T) {
	def := asl(t)
	states := def["States"].(map[string]any)
	run, ok := states["Example: Run task"].(map[string]any)
	if !ok {
		t.Fatal("no state Example: Run task")
	}
	for _, b := range list(run["Branches"]) {
		for name, s := range b.(map[string]any)["States"].(map[string]any) {
			states[name] = s
		}
	}
	st := func(name string) map[string]any {
		t.Helper()
		s, ok := states[name].(map[string]any)
		if !ok {
			t.Fatalf("no state %q", name)
		}
		return s
	}
	fn := func(name string) string {
		f, _ := stack.FunctionByName(name)
		return "${" + example.logicalID(t, "AWS::Lambda::Function", f.Title()) + ".Arn}"
	}
	if def["StartAt"] != "Example: Prepare" || def["TimeoutSeconds"] != 3600.0 {
		t.Errorf("StartAt %v, TimeoutSeconds %v", def["StartAt"], def["TimeoutSeconds"])
	}
	// get → hit? → (hit) done | (miss) reserve → acquired? → (yes) run | (no) wait → get
	if st("Example: Get")["Resource"] != fn("get") || st("Example: Get")["Next"] != "Example: Cache hit?" {
		t.Errorf("get: %v", st("Example: Get"))
	}
	if c := st("Example: Cache hit?"); c["Default"] != "Example: Reserve" || c["Choices"].([]any)[0].(map[string]any)["Next"] != "Example: Done" {
		t.Errorf("cache hit?: %v", c)
	}
	if r := st("Example: Reserve"); r["Resource"] != fn("reserve") || r["Next"] != "Example: Reservation acquired?" || r["Parameters"].(map[string]any)["heartbeat_interval_seconds"] != 10.0 {
		t.Errorf("reserve: %v", r)
	}
	acq := st("Example: Reservation acquired?")
	if acq["Default"] != "Example: Wait for the holder" || acq["Choices"].([]any)[0].(map[string]any)["Next"] != "Example: Run task" {
		t.Errorf("acquired?: %v", acq)
	}
	if w := st("Example: Wait for the holder"); w["Type"] != "Wait" || w["Next"] != "Example: Get" || w["SecondsPath"] != "$.reservation.reservation.heartbeat_interval_seconds" {
		t.Errorf("wait: %v (must loop back to get after one of the holder's heartbeats)", w)
	}
	if run["Type"] != "Parallel" || len(list(run["Branches"])) != 2 {
		t.Errorf("run: %v", run)
	}
	if in := st("Example: Task input"); in["Next"] != "Example task: write the output" {
		t.Errorf("the task's branch starts %v", in)
	}
	write := st("Example task: write the output")
	if p := write["Parameters"].(map[string]any); p["Key.$"] != "States.Format('examples/dev/{}', $.key)" {
		t.Errorf("the example writes under its own project and domain: %v", p)
	}
	if b := st("Example: Heartbeat"); b["Resource"] != fn("reserve") || b["Next"] != "Example: Still held?" {
		t.Errorf("heartbeat: %v", b)
	}
	if catch := list(run["Catch"]); len(catch) != 2 || catch[0].(map[string]any)["Next"] != "Example: Decode the task output" || catch[1].(map[string]any)["Next"] != "Example: Release after failure" {
		t.Errorf("run catch: %v", catch)
	}
	if p := st("Example: Put and release"); p["Resource"] != fn("put") || p["Next"] != "Example: Done" || p["Parameters"].(map[string]any)["release"] != true {
		t.Errorf("put: %v", p)
	}
	if r := st("Example: Release after failure"); r["Resource"] != fn("release") || r["Next"] != "Example: Failed" {
		t.Errorf("release after failure: %v", r)
	}
	if f := st("Example: Failed"); f["Type"] != "Fail" || f["ErrorPath"] != "$.error.Error" || f["CausePath"] != "$.error.Cause" {
		t.Errorf("failed: %v", f)
	}
	if d := st("Example: Done"); d["End"] != true {
		t.Errorf("done: %v", d)
	}

	// Logged (every state, with its data) into its own log group, and
	// traced.
	logs := example.logicalID(t, "AWS::Logs::LogGroup", "ExampleLogs")
	check(t, "logging and tracing", func() {
		example.template(t).HasResourceProperties(jsii.String("AWS::StepFunctions::StateMachine"), &map[string]any{
			"LoggingConfiguration": map[string]any{
				"Level": "ALL", "IncludeExecutionData": true,
				"Destinations": []any{map[string]any{"CloudWatchLogsLogGroup": map[string]any{"LogGroupArn": map[string]any{"Fn::GetAtt": []any{logs, "Arn"}}}}},
			},
			"TracingConfiguration": map[string]any{"Enabled": true},
		})
		example.template(t).HasResourceProperties(jsii.String("AWS::Logs::LogGroup"), &map[string]any{
			"LogGroupName": "/aws/vendedlogs/states/stampede-dev-example", "RetentionInDays": 14,
		})
	})

	// The state machine may invoke get, put, reserve and release (not
	// delete), write the example's objects, deliver its logs and traces,
	// nothing else.
	roleID := example.logicalID(t, "AWS::IAM::Role", "ExampleStateMachineRole")
	got := policyActions(t, example, roleID)
	var invokable []string
	for _, r := range got["lambda:InvokeFunction"] {
		if !strings.HasSuffix(r, ":*") {
			invokable = append(invokable, r)
		}
	}
	if want := sorted([]string{fn("get"), fn("put"), fn("reserve"), fn("release")}); !reflect.DeepEqual(sorted(invokable), want) {
		t.Errorf("state machine may invoke %v, want %v", sorted(invokable), want)
	}
	delete(got, "lambda:InvokeFunction")
	bucket := example.logicalID(t, "AWS::S3::Bucket", "Outputs")
	want := map[string][]string{"s3:PutObject": {"${" + bucket + ".Arn}/examples/dev/*"}}
	for a := range starActions {
		want[a] = []string{"*"}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("state machine's other permissions %v, want %v", got, want)
	}
}

// TestExampleASLDocumented keeps docs/step-functions.md's copy of the
// example's definition in step with the construct. To refresh it:
//
//	STAMPEDE_WRITE_ASL=1 go test ./stack -run TestExampleASLDocumented
//
// writes the definition to infra/cdk.out/example-asl.json.
func TestExampleASLDocumented(t *testing.T) {
	pretty, _ := json.MarshalIndent(asl(t), "", "  ")
	if os.Getenv("STAMPEDE_WRITE_ASL") != "" {
		out := filepath.Join("..", "cdk.out", "example-asl.json")
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(out, append(pretty, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "step-functions.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), string(pretty)) {
		t.Errorf("docs/step-functions.md does not hold the example's current definition; refresh it from\n" +
			"  STAMPEDE_WRITE_ASL=1 go test ./stack -run TestExampleASLDocumented  (writes infra/cdk.out/example-asl.json)")
	}
}

func TestInvalidContext(t *testing.T) {
	for name, ctx := range map[string]map[string]string{
		"env with capitals":    {"env": "Prod"},
		"unknown api":          {"api": "grpc"},
		"unknown arch":         {"arch": "riscv"},
		"memory below 128":     {"memory": "64"},
		"expiration not a nb":  {"outputsExpirationDays": "soon"},
		"example not a bool":   {"example": "maybe"},
		"negative concurrency": {"reservedConcurrency": "-1"},
		"zero rate":            {"throttleRateLimit": "0"},
		"role not a bool":      {"apiGatewayCloudWatchRole": "sometimes"},
		"noncurrent zero":      {"noncurrentVersionExpirationDays": "0"},
		"missing assets":       {"assetDir": "/nonexistent/build"},
	} {
		t.Run(name, func(t *testing.T) {
			app := newApp(t, ctx)
			_, err := stack.FromContext(app)
			if err == nil {
				t.Fatal("FromContext accepted invalid context")
			}
			if name == "missing assets" && !strings.Contains(err.Error(), `run "make build"`) {
				t.Errorf("error does not say how to fix it: %v", err)
			}
		})
	}
}

// TestPermissionsMatchTheService reads the service's storage code (in the
// repository's root module) and checks that the functions are granted
// exactly the DynamoDB and S3 actions it calls, together: a new call in
// internal/dynamostore or internal/s3blobs fails here until the table in
// functions.go grants it, and a grant nothing calls any more fails too.
func TestPermissionsMatchTheService(t *testing.T) {
	calls := func(dir, receiver string) map[string]bool {
		files, _ := filepath.Glob(filepath.Join("..", "..", "internal", dir, "*.go"))
		re := regexp.MustCompile(`\.` + receiver + `\.([A-Z]\w+)\(`)
		out := map[string]bool{}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range re.FindAllStringSubmatch(string(b), -1) {
				out[m[1]] = true
			}
		}
		if len(out) == 0 {
			t.Skipf("no calls found in internal/%s (infra used outside the repository?)", dir)
		}
		return out
	}
	used := map[string]bool{}
	for api := range calls("dynamostore", "db") {
		used["dynamodb:"+api] = true // DynamoDB's IAM actions are its API names
	}
	s3Actions := map[string][]string{ // S3 API → the IAM actions it needs here
		"HeadObject":   {"s3:GetObject", "s3:ListBucket"}, // ListBucket: 404 rather than 403 when missing
		"GetObject":    {"s3:GetObject", "s3:ListBucket"},
		"DeleteObject": {"s3:DeleteObject"},
	}
	for api := range calls("s3blobs", "s3") {
		acts, ok := s3Actions[api]
		if !ok {
			t.Errorf("internal/s3blobs calls S3 %s: add its IAM actions here and to stack.Functions", api)
		}
		for _, a := range acts {
			used[a] = true
		}
	}
	granted := map[string]bool{}
	for _, f := range stack.Functions() {
		for _, a := range append(append(append([]string{}, f.TableActions...), f.ObjectActions...), f.BucketActions...) {
			granted[a] = true
		}
	}
	for a := range used {
		if !granted[a] {
			t.Errorf("the service calls %s, which no function is granted", a)
		}
	}
	for a := range granted {
		if !used[a] {
			t.Errorf("%s is granted, but the service never needs it", a)
		}
	}
}

// TestRoutesMatchTheService checks the stack's routes against the
// service's, as internal/contract/contract.json states them (the root
// module's tests keep that file equal to its route tables:
// transport.Routes for the HTTP API, flyte.Routes for Flyte's cache
// service): the same method and path pairs, each to the function serving
// it, the same as this test's routeKeys; and each function's Operations
// (which its alarms watch) exactly the operations of its routes.
func TestRoutesMatchTheService(t *testing.T) {
	facts := loadFacts(t)
	want := map[string]string{}
	ops := map[string][]string{}
	flyteFunctions := map[string]bool{}
	for _, r := range facts.FlyteRoutes {
		flyteFunctions[r.Function] = true
	}
	for _, r := range append(append([]contractfacts.Route{}, facts.Routes...), facts.FlyteRoutes...) {
		want[r.Method+" "+r.Template] = r.Function
		if !slices.Contains(ops[r.Function], r.Op) {
			ops[r.Function] = append(ops[r.Function], r.Op)
		}
	}
	if len(facts.FlyteRoutes) == 0 {
		t.Fatal("the contract lists no Flyte routes")
	}
	got := map[string]string{}
	for _, f := range stack.Functions() {
		for _, r := range f.Routes {
			got[r.Method+" "+r.Path] = f.Name
		}
		if !reflect.DeepEqual(sorted(f.Operations), sorted(ops[f.Name])) {
			t.Errorf("function %s: operations %v, its routes run %v", f.Name, sorted(f.Operations), sorted(ops[f.Name]))
		}
		if flyteFunctions[f.Name] {
			// The flyte function is the exception: it runs the other
			// functions' operations for Flyte, its name is none of them,
			// and it answers API Gateway only (no direct invocation).
			if f.Direct {
				t.Errorf("function %s serves Flyte's routes, yet claims direct invocations", f.Name)
			}
			continue
		}
		// A function of the HTTP API is named for its operation, and
		// Step Functions invoke it directly.
		if !slices.Contains(f.Operations, f.Name) || !f.Direct {
			t.Errorf("function %s: operations %v (its own missing?), direct %v", f.Name, f.Operations, f.Direct)
		}
	}
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(got, routeKeys) {
		t.Errorf("stack routes %v\nservice routes %v\ntest's routes %v", got, want, routeKeys)
	}
}

// TestFlytePermissions: the flyte function runs the operations of other
// functions, so it may do at most what they may (the union of their
// actions), and it is granted less: Flyte's protocol has no verify (Get)
// nor verify_output (Put), so the flyte function never calls HeadObject
// and needs neither s3:GetObject nor s3:ListBucket. The test reads the
// service's Flyte mapping (internal/flyte, in the root module) and fails
// when it starts asking the manager to verify, until the function is
// granted those two actions.
func TestFlytePermissions(t *testing.T) {
	facts := loadFacts(t)
	byOp := map[string]string{} // operation → the HTTP API function running it
	for _, r := range facts.Routes {
		byOp[r.Op] = r.Function
	}
	actions := func(f stack.Function) []string {
		return append(append(append([]string{}, f.TableActions...), f.ObjectActions...), f.BucketActions...)
	}
	verifyActions := []string{"s3:GetObject", "s3:ListBucket"} // HeadObject, answering 404 when missing

	src := ""
	files, _ := filepath.Glob(filepath.Join("..", "..", "internal", "flyte", "*.go"))
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		src += string(b)
	}
	if !strings.Contains(src, "DeleteBlob:") {
		t.Skip("no Flyte mapping found in internal/flyte (infra used outside the repository?)")
	}
	// manager.GetOptions.Verify, manager.PutRequest.VerifyOutput, set in
	// a composite literal or assigned.
	verifies := regexp.MustCompile(`\bVerify(Output)?\s*(:|=[^=])`).MatchString(src)

	n := 0
	for _, f := range stack.Functions() {
		if f.Direct {
			continue // a function of the HTTP API: its own operations
		}
		n++
		union := map[string]bool{}
		for _, op := range f.Operations {
			runner, ok := stack.FunctionByName(byOp[op])
			if !ok {
				t.Fatalf("function %s runs %s, which no function of the HTTP API runs", f.Name, op)
			}
			for _, a := range actions(runner) {
				union[a] = true
			}
		}
		var want []string
		for a := range union {
			if verifies || !slices.Contains(verifyActions, a) {
				want = append(want, a)
			}
		}
		if got := sorted(actions(f)); !reflect.DeepEqual(got, sorted(want)) {
			t.Errorf("function %s: actions %v, want %v (its operations' functions' %v; internal/flyte verifies outputs: %v)",
				f.Name, got, sorted(want), slices.Sorted(maps.Keys(union)), verifies)
		}
	}
	if n != 1 {
		t.Errorf("%d functions serve the API only, want 1 (flyte)", n)
	}
}
