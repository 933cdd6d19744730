package stack

import (
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	apigw "github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	apigwv2 "github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	authorizers "github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2authorizers"
	integrations "github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2integrations"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// newHTTPAPI fronts the functions with an API Gateway HTTP API (payload
// format 2.0) whose every route requires IAM authorization: callers sign
// their requests with SigV4 and need execute-api:Invoke on the route.
func (s *Stampede) newHTTPAPI(scope constructs.Construct, cfg Config) {
	api := apigwv2.NewHttpApi(scope, jsii.String("HttpApi"), &apigwv2.HttpApiProps{
		ApiName:            jsii.String("stampede-" + cfg.Env),
		Description:        jsii.String("Stampede cache and reservation API (" + cfg.Env + ")"),
		CreateDefaultStage: jsii.Bool(true),
		// Applies to every route added below; there is no $default route
		// and no unauthenticated path.
		DefaultAuthorizer: authorizers.NewHttpIamAuthorizer(),
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
	s.APIURL = api.Url()
	awscdk.NewCfnOutput(scope, jsii.String("ApiId"), &awscdk.CfnOutputProps{
		Value:       api.ApiId(),
		Description: jsii.String("HTTP API id."),
	})
}

// newRestAPI fronts the functions with an API Gateway REST API (Lambda
// proxy integration, payload format 1.0), every method with IAM
// authorization. Its stage is named after the environment.
func (s *Stampede) newRestAPI(scope constructs.Construct, cfg Config) {
	api := apigw.NewRestApi(scope, jsii.String("RestApi"), &apigw.RestApiProps{
		RestApiName: jsii.String("stampede-" + cfg.Env),
		Description: jsii.String("Stampede cache and reservation API (" + cfg.Env + ")"),
		// No account-wide CloudWatch role (it carries a managed policy on
		// every log group, and is an account singleton).
		CloudWatchRole: jsii.Bool(false),
		EndpointConfiguration: &apigw.EndpointConfiguration{
			Types: &[]apigw.EndpointType{apigw.EndpointType_REGIONAL},
		},
		DeployOptions: &apigw.StageOptions{StageName: jsii.String(cfg.Env)},
		DefaultMethodOptions: &apigw.MethodOptions{
			AuthorizationType: apigw.AuthorizationType_IAM,
		},
	})
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
	awscdk.NewCfnOutput(scope, jsii.String("ApiId"), &awscdk.CfnOutputProps{
		Value:       api.RestApiId(),
		Description: jsii.String("REST API id (LocalStack: http://localhost:4566/restapis/<id>/<stage>/_user_request_/)."),
	})
	awscdk.NewCfnOutput(scope, jsii.String("ApiStage"), &awscdk.CfnOutputProps{
		Value:       api.DeploymentStage().StageName(),
		Description: jsii.String("REST API stage."),
	})
}
