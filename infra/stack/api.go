package stack

import (
	"encoding/json"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	apigw "github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	apigwv2 "github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	authorizers "github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2authorizers"
	integrations "github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2integrations"
	cw "github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// apiMetrics are the API's request count, 4xx, 5xx (sums) and p99
// latency, over a period.
type apiMetrics struct {
	count, clientErrors, serverErrors, latencyP99 cw.IMetric
}

// accessLogFields are the access log's JSON fields, each an API Gateway
// $context variable. Who called (the IAM identity SigV4 authenticated),
// from where, which request (the id the function's log line carries too),
// which route, and how it went.
func accessLogFields(rest bool) map[string]string {
	f := map[string]string{
		"requestId":          "$context.requestId",
		"extendedRequestId":  "$context.extendedRequestId",
		"requestTime":        "$context.requestTime",
		"caller":             "$context.identity.caller",
		"user":               "$context.identity.user",
		"userArn":            "$context.identity.userArn",
		"accountId":          "$context.identity.accountId",
		"sourceIp":           "$context.identity.sourceIp",
		"userAgent":          "$context.identity.userAgent",
		"httpMethod":         "$context.httpMethod",
		"path":               "$context.path",
		"protocol":           "$context.protocol",
		"status":             "$context.status",
		"responseLength":     "$context.responseLength",
		"responseLatency":    "$context.responseLatency",
		"integrationLatency": "$context.integrationLatency",
		"integrationStatus":  "$context.integration.status",
		"errorMessage":       "$context.error.message",
		"stage":              "$context.stage",
	}
	if rest {
		f["route"] = "$context.resourcePath"
		f["xrayTraceId"] = "$context.xrayTraceId"
	} else {
		f["route"] = "$context.routeKey"
		f["integrationError"] = "$context.integrationErrorMessage"
	}
	return f
}

// accessLogFormat renders the fields as a one-line JSON object (every
// value quoted: API Gateway writes "-" for a missing one).
func accessLogFormat(rest bool) apigw.AccessLogFormat {
	b, err := json.Marshal(accessLogFields(rest))
	if err != nil {
		panic(err) // a map of strings always marshals
	}
	return apigw.AccessLogFormat_Custom(jsii.String(string(b)))
}

// newAccessLogs is the log group of the API stage's access logs.
func (s *Stampede) newAccessLogs(scope constructs.Construct, cfg Config) awslogs.LogGroup {
	removal := awscdk.RemovalPolicy_DESTROY
	if cfg.Prod() {
		removal = awscdk.RemovalPolicy_RETAIN
	}
	s.AccessLogs = awslogs.NewLogGroup(scope, jsii.String("ApiAccessLogs"), &awslogs.LogGroupProps{
		LogGroupName:  jsii.String("/aws/apigateway/stampede-" + cfg.Env + "/access"),
		Retention:     retention(cfg.LogRetentionDays),
		RemovalPolicy: removal,
	})
	return s.AccessLogs
}

// httpAccessLogs is the HTTP stage's access log settings (an interface in
// the CDK; the values are fixed here).
type httpAccessLogs struct {
	destination apigwv2.IAccessLogDestination
	format      apigw.AccessLogFormat
}

func (h *httpAccessLogs) Destination() apigwv2.IAccessLogDestination { return h.destination }
func (h *httpAccessLogs) Format() apigw.AccessLogFormat              { return h.format }

// newHTTPAPI fronts the functions with an API Gateway HTTP API (payload
// format 2.0) whose every route requires IAM authorization: callers sign
// their requests with SigV4 and need execute-api:Invoke on the route. Its
// one stage, $default, throttles and writes JSON access logs. (HTTP APIs
// have no X-Ray tracing; the functions trace each invocation.)
func (s *Stampede) newHTTPAPI(scope constructs.Construct, cfg Config) {
	api := apigwv2.NewHttpApi(scope, jsii.String("HttpApi"), &apigwv2.HttpApiProps{
		ApiName:     jsii.String("stampede-" + cfg.Env),
		Description: jsii.String("Stampede cache and reservation API (" + cfg.Env + ")"),
		// The stage is added below, with access logs and throttling.
		CreateDefaultStage: jsii.Bool(false),
		// Applies to every route added below; there is no $default route
		// and no unauthenticated path.
		DefaultAuthorizer: authorizers.NewHttpIamAuthorizer(),
	})
	stage := api.AddStage(jsii.String("DefaultStage"), &apigwv2.HttpStageOptions{
		StageName:  jsii.String("$default"),
		AutoDeploy: jsii.Bool(true),
		Throttle: &apigwv2.ThrottleSettings{
			RateLimit:  jsii.Number(float64(cfg.ThrottleRateLimit)),
			BurstLimit: jsii.Number(float64(cfg.ThrottleBurstLimit)),
		},
		AccessLogSettings: &httpAccessLogs{
			destination: apigwv2.NewLogGroupLogDestination(s.newAccessLogs(scope, cfg)),
			format:      accessLogFormat(false),
		},
	})
	for _, f := range Functions() {
		integration := integrations.NewHttpLambdaIntegration(jsii.String(f.Title()+"Integration"), s.Functions[f.Name],
			&integrations.HttpLambdaIntegrationProps{PayloadFormatVersion: apigwv2.PayloadFormatVersion_VERSION_2_0()})
		for _, r := range f.Routes {
			api.AddRoutes(&apigwv2.AddRoutesOptions{
				Path:        jsii.String(r.Path),
				Methods:     &[]apigwv2.HttpMethod{apigwv2.HttpMethod(r.Method)},
				Integration: integration,
			})
		}
	}
	s.APIURL = stage.Url()
	sum := &cw.MetricOptions{Statistic: jsii.String("Sum"), Period: metricPeriod()}
	s.apiMetrics = apiMetrics{
		count:        stage.MetricCount(sum),
		clientErrors: stage.MetricClientError(sum),
		serverErrors: stage.MetricServerError(sum),
		latencyP99:   stage.MetricLatency(&cw.MetricOptions{Statistic: jsii.String("p99"), Period: metricPeriod()}),
	}
	awscdk.NewCfnOutput(scope, jsii.String("ApiId"), &awscdk.CfnOutputProps{
		Value:       api.ApiId(),
		Description: jsii.String("HTTP API id."),
	})
}

// newRestAPI fronts the functions with an API Gateway REST API (Lambda
// proxy integration, payload format 1.0), every method with IAM
// authorization. Its stage, named after the environment, throttles, writes
// JSON access logs and traces requests with X-Ray.
func (s *Stampede) newRestAPI(scope constructs.Construct, cfg Config) {
	api := apigw.NewRestApi(scope, jsii.String("RestApi"), &apigw.RestApiProps{
		RestApiName: jsii.String("stampede-" + cfg.Env),
		Description: jsii.String("Stampede cache and reservation API (" + cfg.Env + ")"),
		// REST access logs need API Gateway's account-wide CloudWatch Logs
		// role. Off by default: it is one per account and region, carries
		// a managed policy on every log group, and most accounts have it.
		CloudWatchRole: jsii.Bool(cfg.APIGatewayCloudWatchRole),
		EndpointConfiguration: &apigw.EndpointConfiguration{
			Types: &[]apigw.EndpointType{apigw.EndpointType_REGIONAL},
		},
		DeployOptions: &apigw.StageOptions{
			StageName:            jsii.String(cfg.Env),
			ThrottlingRateLimit:  jsii.Number(float64(cfg.ThrottleRateLimit)),
			ThrottlingBurstLimit: jsii.Number(float64(cfg.ThrottleBurstLimit)),
			AccessLogDestination: apigw.NewLogGroupLogDestination(s.newAccessLogs(scope, cfg)),
			AccessLogFormat:      accessLogFormat(true),
			TracingEnabled:       jsii.Bool(true),
		},
		DefaultMethodOptions: &apigw.MethodOptions{
			AuthorizationType: apigw.AuthorizationType_IAM,
		},
		// Flyte's cache service sends protobuf: without these a REST API
		// would mangle its bodies (the HTTP API passes them base64).
		BinaryMediaTypes: jsii.Strings(FlyteBinaryMediaTypes()...),
	})
	s.restAPI = api
	resources := map[string]apigw.Resource{}
	for _, f := range Functions() {
		integration := apigw.NewLambdaIntegration(s.Functions[f.Name], &apigw.LambdaIntegrationOptions{
			Proxy: jsii.Bool(true),
			// No extra permission for the console's test-invoke.
			AllowTestInvoke: jsii.Bool(false),
		})
		for _, r := range f.Routes {
			res, ok := resources[r.Path]
			if !ok {
				res = api.Root().ResourceForPath(jsii.String(strings.TrimPrefix(r.Path, "/")))
				resources[r.Path] = res
			}
			res.AddMethod(jsii.String(r.Method), integration, &apigw.MethodOptions{
				AuthorizationType: apigw.AuthorizationType_IAM,
			})
		}
	}
	s.APIURL = api.Url()
	sum := &cw.MetricOptions{Statistic: jsii.String("Sum"), Period: metricPeriod()}
	stage := api.DeploymentStage()
	s.apiMetrics = apiMetrics{
		count:        stage.MetricCount(sum),
		clientErrors: stage.MetricClientError(sum),
		serverErrors: stage.MetricServerError(sum),
		latencyP99:   stage.MetricLatency(&cw.MetricOptions{Statistic: jsii.String("p99"), Period: metricPeriod()}),
	}
	awscdk.NewCfnOutput(scope, jsii.String("ApiId"), &awscdk.CfnOutputProps{
		Value:       api.RestApiId(),
		Description: jsii.String("REST API id (LocalStack: http://localhost:4566/restapis/<id>/<stage>/_user_request_/)."),
	})
	awscdk.NewCfnOutput(scope, jsii.String("ApiStage"), &awscdk.CfnOutputProps{
		Value:       stage.StageName(),
		Description: jsii.String("REST API stage."),
	})
}
