package dynamostore_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/stampede-cache/stampede/internal/awsclient"
	"github.com/stampede-cache/stampede/internal/dynamostore"
)

func TestNewClient(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_PROFILE", "")
	local := dynamostore.NewClient(aws.Config{}, "http://127.0.0.1:8000").Options()
	if local.BaseEndpoint == nil || *local.BaseEndpoint != "http://127.0.0.1:8000" || !local.DisableValidateResponseChecksum ||
		local.Region != awsclient.LocalRegion || local.Credentials == nil {
		t.Errorf("options for a local endpoint: endpoint %v checksum off %v region %q credentials %v",
			local.BaseEndpoint, local.DisableValidateResponseChecksum, local.Region, local.Credentials)
	}
	real := dynamostore.NewClient(aws.Config{Region: "eu-west-1"}, "", func(o *dynamostore.ClientOptions) { o.AppID = "probe" }).Options()
	if real.BaseEndpoint != nil || real.DisableValidateResponseChecksum || real.Region != "eu-west-1" || real.Credentials != nil || real.AppID != "probe" {
		t.Errorf("options for AWS: endpoint %v checksum off %v region %q credentials %v app %q",
			real.BaseEndpoint, real.DisableValidateResponseChecksum, real.Region, real.Credentials, real.AppID)
	}
}
