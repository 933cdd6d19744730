package dynamostore

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/stampede-cache/stampede/internal/awsclient"
)

// Client is the DynamoDB client the store and EnsureTable run on. Other
// packages name it through this alias, so that this package stays the
// only one importing the DynamoDB SDK.
type Client = dynamodb.Client

// ClientOptions configure a Client.
type ClientOptions = dynamodb.Options

// NewClient returns a DynamoDB client over the process's AWS configuration
// (awsclient.Load). A non-empty endpoint points it at a DynamoDB other than
// AWS's (DynamoDB Local, LocalStack), signing with a default region and
// dummy credentials when the environment has none. optFns apply last.
func NewClient(awsCfg aws.Config, endpoint string, optFns ...func(*ClientOptions)) *Client {
	return dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) {
		if endpoint == "" {
			return
		}
		o.BaseEndpoint = aws.String(endpoint)
		// DynamoDB Local sends a wrong CRC32 with some error responses.
		o.DisableValidateResponseChecksum = true
		awsclient.LocalDefaults(&o.Region, &o.Credentials)
	}, func(o *dynamodb.Options) {
		for _, fn := range optFns {
			fn(o)
		}
	})
}
