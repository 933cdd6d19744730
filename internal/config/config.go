// Package config reads Stampede's configuration from the environment and
// builds the manager over DynamoDB from it, for the Lambda functions and the
// local server alike.
package config

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/stampede-cache/stampede/internal/dynamostore"
	"github.com/stampede-cache/stampede/internal/manager"
	"github.com/stampede-cache/stampede/internal/s3blobs"
)

// Environment variables.
const (
	EnvTable               = "STAMPEDE_TABLE"
	EnvHeartbeatMultiplier = "STAMPEDE_HEARTBEAT_MULTIPLIER"
	EnvMaxHeartbeatSeconds = "STAMPEDE_MAX_HEARTBEAT_SECONDS"
	// EnvDynamoDBEndpoint points at a DynamoDB other than AWS's (DynamoDB
	// Local, LocalStack). The SDK's own AWS_ENDPOINT_URL_DYNAMODB works too.
	EnvDynamoDBEndpoint = "STAMPEDE_DYNAMODB_ENDPOINT"
	// EnvManagedBuckets lists, comma-separated, the buckets whose objects
	// Stampede may check (verify) and delete (delete_blob).
	EnvManagedBuckets = "STAMPEDE_MANAGED_BUCKETS"
	// EnvS3Endpoint points at an S3-compatible endpoint (path-style). The
	// SDK's own AWS_ENDPOINT_URL_S3 works too.
	EnvS3Endpoint = "STAMPEDE_S3_ENDPOINT"
	// EnvRequestTimeout is the local server's per-request budget (a Go
	// duration such as 5s); every DynamoDB and S3 call runs within it.
	EnvRequestTimeout = "STAMPEDE_REQUEST_TIMEOUT"
)

// Config is the service configuration.
type Config struct {
	Table            string
	Manager          manager.Config
	DynamoDBEndpoint string
	S3Endpoint       string
	// RequestTimeout bounds each request of the local server; zero means
	// the transport's default.
	RequestTimeout time.Duration
}

// FromEnv reads the configuration; tableDefault is used when STAMPEDE_TABLE
// is unset (empty means the variable is required).
func FromEnv(tableDefault string) (Config, error) {
	cfg := Config{
		Table:            os.Getenv(EnvTable),
		DynamoDBEndpoint: os.Getenv(EnvDynamoDBEndpoint),
		S3Endpoint:       os.Getenv(EnvS3Endpoint),
	}
	if cfg.Table == "" {
		cfg.Table = tableDefault
	}
	if cfg.Table == "" {
		return Config{}, fmt.Errorf("%s is required", EnvTable)
	}
	mult, err := intFromEnv(EnvHeartbeatMultiplier, manager.DefaultHeartbeatMultiplier)
	if err != nil {
		return Config{}, err
	}
	maxHB, err := intFromEnv(EnvMaxHeartbeatSeconds, int(manager.DefaultMaxHeartbeat/time.Second))
	if err != nil {
		return Config{}, err
	}
	if v := os.Getenv(EnvRequestTimeout); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 100*time.Millisecond || d > 5*time.Minute {
			return Config{}, fmt.Errorf("%s: want a duration from 100ms to 5m, got %q", EnvRequestTimeout, v)
		}
		cfg.RequestTimeout = d
	}
	cfg.Manager = manager.Config{
		HeartbeatMultiplier: mult,
		MaxHeartbeat:        time.Duration(maxHB) * time.Second,
		ManagedBuckets:      splitList(os.Getenv(EnvManagedBuckets)),
	}
	return cfg, nil
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func intFromEnv(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 3600 {
		return 0, fmt.Errorf("%s: want an integer from 1 to 3600, got %q", name, v)
	}
	return n, nil
}

// awsConfig loads the SDK's default chain (region, credentials, retries).
// For a local endpoint with no credentials in the environment it signs
// with dummy ones, which DynamoDB Local, gofakes3 and LocalStack accept.
func awsConfig(ctx context.Context, local bool) (aws.Config, error) {
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	if local {
		if awsCfg.Region == "" {
			awsCfg.Region = "us-east-1"
		}
		if os.Getenv("AWS_ACCESS_KEY_ID") == "" && os.Getenv("AWS_PROFILE") == "" {
			awsCfg.Credentials = credentials.NewStaticCredentialsProvider("local", "local", "")
		}
	}
	return awsCfg, nil
}

// DynamoDB returns a DynamoDB client for cfg.
func DynamoDB(ctx context.Context, cfg Config) (*dynamodb.Client, error) {
	awsCfg, err := awsConfig(ctx, cfg.DynamoDBEndpoint != "")
	if err != nil {
		return nil, err
	}
	return dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) {
		if cfg.DynamoDBEndpoint != "" {
			o.BaseEndpoint = aws.String(cfg.DynamoDBEndpoint)
			// DynamoDB Local sends a wrong CRC32 with some error responses.
			o.DisableValidateResponseChecksum = true
		}
	}), nil
}

// S3 returns an S3 client for cfg: path-style for a custom endpoint.
func S3(ctx context.Context, cfg Config) (*s3.Client, error) {
	awsCfg, err := awsConfig(ctx, cfg.S3Endpoint != "")
	if err != nil {
		return nil, err
	}
	return s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.S3Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.S3Endpoint)
			o.UsePathStyle = true
		}
	}), nil
}

// Manager builds the manager over the configured table and object store.
func Manager(ctx context.Context, cfg Config) (*manager.Manager, error) {
	db, err := DynamoDB(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return ManagerOver(ctx, cfg, db)
}

// ManagerOver builds the manager over an existing DynamoDB client (the
// local server's, which created the table with it) and the configured
// object store.
func ManagerOver(ctx context.Context, cfg Config, db dynamostore.API) (*manager.Manager, error) {
	mc := cfg.Manager
	if len(mc.ManagedBuckets) > 0 {
		s3c, err := S3(ctx, cfg)
		if err != nil {
			return nil, err
		}
		mc.Blobs = s3blobs.New(s3c)
	}
	return manager.New(dynamostore.New(db, cfg.Table), mc)
}

// ManagerFromEnv reads the configuration and builds the manager: all a
// Lambda function needs before lambda.Start.
func ManagerFromEnv(ctx context.Context) (*manager.Manager, error) {
	cfg, err := FromEnv("")
	if err != nil {
		return nil, err
	}
	return Manager(ctx, cfg)
}
