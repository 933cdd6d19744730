package stack

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// NagMetadataKey is the resource metadata key cdk-nag reads its
// suppressions from: {"rules_to_suppress": [{"id", "reason",
// "applies_to"?}]}. The stack writes it itself, so the suppressions travel
// with the template, and `make test-infra` runs cdk-nag's AwsSolutions
// checks over the synthesized templates (stack/testdata/nag.mjs).
const NagMetadataKey = "cdk_nag"

// NagSuppression is one cdk-nag rule suppressed on one resource: the rule,
// why, and optionally the findings it covers (e.g. "Resource::*").
type NagSuppression struct {
	ID        string   `json:"id"`
	Reason    string   `json:"reason"`
	AppliesTo []string `json:"applies_to,omitempty"`
}

// The findings of cdk-nag's AwsSolutions pack that the stack accepts, each
// with its reason. Everything else it reports is fixed in the stack.
var (
	nagNoServerAccessLogs = NagSuppression{ID: "AwsSolutions-S1",
		Reason: "Only the functions delete or verify objects in the outputs bucket, each request logged with its caller and key (function logs and API access logs); " +
			"S3 server access logs would name the function's role, not the caller. Versioning keeps what was deleted. Turn on CloudTrail data events for the bucket for an independent trail."}
	nagXRayResources = NagSuppression{ID: "AwsSolutions-IAM5", AppliesTo: []string{"Resource::*"},
		Reason: "X-Ray's PutTraceSegments and PutTelemetryRecords (added by CDK for active tracing) have no resource-level permissions: their only resource is *."}
	nagStateMachineResources = NagSuppression{ID: "AwsSolutions-IAM5", AppliesTo: []string{"Resource::*"},
		Reason: "The state machine's X-Ray actions and CloudWatch Logs delivery actions (logs:CreateLogDelivery and the like, added by CDK for logging) have no resource-level permissions: their only resource is *."}
	nagRequestValidation = NagSuppression{ID: "AwsSolutions-APIG2",
		Reason: "The functions validate every request strictly (unknown or duplicate members, types, UTF-8, sizes) and answer 400 naming the field; an API Gateway model would duplicate that contract and answer differently."}
	nagWAF = NagSuppression{ID: "AwsSolutions-APIG3",
		Reason: "Every method requires IAM (SigV4) authorization and the stage is throttled; a WAF web ACL is the account's policy and cost: associate one with the stage where wanted."}
	nagExecutionLogs = NagSuppression{ID: "AwsSolutions-APIG6",
		Reason: "The stage writes a JSON access log line per request (caller, source IP, request id, route, status, latency); execution logs would copy request and response bodies into CloudWatch and add nothing to find a request."}
	nagCognito = NagSuppression{ID: "AwsSolutions-COG4",
		Reason: "Callers are AWS principals (services, workers, Step Functions) authorized by IAM (SigV4) on the method's ARN; there are no end users for a Cognito user pool."}
	nagCloudWatchRole = NagSuppression{ID: "AwsSolutions-IAM4",
		Reason: "API Gateway's account-wide CloudWatch Logs role uses the AWS managed policy AmazonAPIGatewayPushToCloudWatchLogs, the one API Gateway documents for it (created only with apiGatewayCloudWatchRole=true)."}
)

// nagObjectResources accepts "<bucket ARN>/<prefix>*" on policy: object
// actions are authorized on object ARNs, and the functions serve every
// project's objects (the service itself keeps each request within its own
// <project>/<domain>/ prefix).
func nagObjectResources(bucket awscdk.CfnResource, prefix, why string) NagSuppression {
	return NagSuppression{ID: "AwsSolutions-IAM5",
		AppliesTo: []string{fmt.Sprintf("Resource::<%s.Arn>/%s*", *awscdk.Stack_Of(bucket).GetLogicalId(bucket), prefix)},
		Reason:    "S3 object actions are authorized on object ARNs, and keys are the callers': " + why}
}

// suppressNag records suppressions on c's CloudFormation resource (c
// itself, or its default child), all of them in one call.
func suppressNag(c constructs.IConstruct, rules ...NagSuppression) {
	res := cfnResource(c)
	if res.GetMetadata(jsii.String(NagMetadataKey)) != nil {
		panic(fmt.Sprintf("%s: cdk-nag suppressions recorded twice", *res.Node().Path()))
	}
	res.AddMetadata(jsii.String(NagMetadataKey), map[string]any{"rules_to_suppress": rules})
}

func cfnResource(c constructs.IConstruct) awscdk.CfnResource {
	if r, ok := c.(awscdk.CfnResource); ok {
		return r
	}
	r, ok := c.Node().DefaultChild().(awscdk.CfnResource)
	if !ok {
		panic(fmt.Sprintf("%s has no CloudFormation resource", *c.Node().Path()))
	}
	return r
}

// defaultPolicy is the policy CDK adds to role for grants it makes itself
// (X-Ray for active tracing, a state machine's task permissions).
func defaultPolicy(role awsiam.IRole) constructs.IConstruct {
	p := role.Node().TryFindChild(jsii.String("DefaultPolicy"))
	if p == nil {
		panic(fmt.Sprintf("role %s has no default policy", *role.Node().Path()))
	}
	return p
}

// suppressNagFindings records every accepted cdk-nag finding on its
// resource, with its reason.
func (s *Stampede) suppressNagFindings(cfg Config) {
	bucket := cfnResource(s.Bucket)
	suppressNag(bucket, nagNoServerAccessLogs)
	objects := map[string]string{
		"get":    "get checks that the output of any project's entry still exists.",
		"put":    "put checks new outputs and deletes replaced ones, of any project's entries.",
		"delete": "delete deletes the output of any project's entry it removes.",
		"flyte":  "flyte deletes the output a Flyte put replaces (overwrite.delete_blob), of any project's entries.",
	}
	for _, f := range Functions() {
		if len(f.ObjectActions) > 0 {
			why, ok := objects[f.Name]
			if !ok {
				panic(fmt.Sprintf("function %s has object actions: say why in suppressNagFindings", f.Name))
			}
			suppressNag(s.policies[f.Name], nagObjectResources(bucket, "", why))
		}
		suppressNag(defaultPolicy(s.Functions[f.Name].Role()), nagXRayResources)
	}
	if api := s.restAPI; api != nil {
		suppressNag(api, nagRequestValidation)
		suppressNag(api.DeploymentStage(), nagWAF, nagExecutionLogs)
		for _, m := range *api.Methods() {
			suppressNag(m, nagCognito)
		}
		if role := api.Node().TryFindChild(jsii.String("CloudWatchRole")); role != nil {
			suppressNag(role, nagCloudWatchRole)
		}
	}
	if sm := s.ExampleStateMachine; sm != nil {
		var functionVersions []string
		for _, f := range []string{"get", "put", "reserve", "release"} {
			fn := cfnResource(s.Functions[f])
			functionVersions = append(functionVersions, fmt.Sprintf("Resource::<%s.Arn>:*", *awscdk.Stack_Of(fn).GetLogicalId(fn)))
		}
		suppressNag(defaultPolicy(sm.Role()),
			nagStateMachineResources,
			nagObjectResources(bucket, ExampleProject+"/"+cfg.Env+"/", "the example's task writes its outputs under its own project and domain."),
			NagSuppression{ID: "AwsSolutions-IAM5", AppliesTo: functionVersions,
				Reason: "CDK's LambdaInvoke grants each function's versions and aliases (<function ARN>:*) besides the function; only these four functions."})
	}
}
