package config

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/stampede-cache/stampede/internal/awsclient"
	"github.com/stampede-cache/stampede/internal/dynamostore"
	"github.com/stampede-cache/stampede/internal/manager"
)

// BlobsFunc builds the object store over the process's AWS configuration
// and the S3 endpoint (empty: AWS's own); s3blobs.NewLazy is the one to
// use. It is a parameter rather than an import so that a program that never
// touches objects (the reserve and release functions) does not link the S3
// SDK at all.
type BlobsFunc func(awsCfg aws.Config, endpoint string) manager.Blobs

// Backend is the process's AWS configuration, loaded once, and the
// DynamoDB client over it.
type Backend struct {
	AWS      aws.Config
	DynamoDB *dynamostore.Client
}

// Connect loads the AWS configuration and builds the DynamoDB client for
// cfg. It sends no request.
func Connect(ctx context.Context, cfg Config) (*Backend, error) {
	awsCfg, err := awsclient.Load(ctx, cfg.DynamoDBEndpoint != "" || cfg.S3Endpoint != "")
	if err != nil {
		return nil, err
	}
	return &Backend{AWS: awsCfg, DynamoDB: dynamostore.NewClient(awsCfg, cfg.DynamoDBEndpoint)}, nil
}

// Manager builds the manager over the backend's table and, when cfg names
// managed buckets and blobs is not nil, the object store blobs builds over
// the same AWS configuration.
func (b *Backend) Manager(cfg Config, blobs BlobsFunc) (*manager.Manager, error) {
	mc := cfg.Manager
	if len(mc.ManagedBuckets) > 0 && blobs != nil {
		mc.Blobs = blobs(b.AWS, cfg.S3Endpoint)
	}
	return manager.New(dynamostore.New(b.DynamoDB, cfg.Table), mc)
}

// Manager connects and builds the manager: all a Lambda function needs
// before lambda.Start.
func Manager(ctx context.Context, cfg Config, blobs BlobsFunc) (*manager.Manager, error) {
	b, err := Connect(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return b.Manager(cfg, blobs)
}
