package config

import (
	"context"

	"github.com/stampede-cache/stampede/internal/dynamostore"
	"github.com/stampede-cache/stampede/internal/manager"
	"github.com/stampede-cache/stampede/internal/s3blobs"
)

// DynamoDB returns a DynamoDB client for cfg. Prefer Connect, whose Backend
// keeps the AWS configuration for the object store too: DynamoDB and then
// ManagerOver load it twice. (Kept for cmd/stampede until it moves.)
func DynamoDB(ctx context.Context, cfg Config) (*dynamostore.Client, error) {
	b, err := Connect(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return b.DynamoDB, nil
}

// ManagerOver builds the manager over an existing DynamoDB client and the
// configured object store (S3, built on first use). Prefer Connect and
// Backend.Manager with s3blobs.NewLazy, which load the AWS configuration
// once and leave the S3 SDK out of programs that pass no BlobsFunc. (Kept
// for cmd/stampede until it moves.)
func ManagerOver(ctx context.Context, cfg Config, db dynamostore.API) (*manager.Manager, error) {
	mc := cfg.Manager
	if len(mc.ManagedBuckets) > 0 {
		b, err := Connect(ctx, cfg)
		if err != nil {
			return nil, err
		}
		mc.Blobs = s3blobs.NewLazy(b.AWS, cfg.S3Endpoint)
	}
	return manager.New(dynamostore.New(db, cfg.Table), mc)
}
