// Package config reads Stampede's configuration from the environment and
// builds the manager over DynamoDB from it, for the Lambda functions and the
// local server alike.
package config

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/stampede-cache/stampede/internal/dynamostore"
	"github.com/stampede-cache/stampede/internal/manager"
)

// Environment variables.
const (
	EnvTable               = "STAMPEDE_TABLE"
	EnvHeartbeatMultiplier = "STAMPEDE_HEARTBEAT_MULTIPLIER"
	EnvMaxHeartbeatSeconds = "STAMPEDE_MAX_HEARTBEAT_SECONDS"
	// EnvDynamoDBEndpoint points at a DynamoDB other than AWS's (DynamoDB
	// Local, LocalStack). The SDK's own AWS_ENDPOINT_URL_DYNAMODB works too.
	EnvDynamoDBEndpoint = "STAMPEDE_DYNAMODB_ENDPOINT"
)

// Config is the service configuration.
type Config struct {
	Table            string
	Manager          manager.Config
	DynamoDBEndpoint string
}

// FromEnv reads the configuration; tableDefault is used when STAMPEDE_TABLE
// is unset (empty means the variable is required).
func FromEnv(tableDefault string) (Config, error) {
	cfg := Config{
		Table:            os.Getenv(EnvTable),
		DynamoDBEndpoint: os.Getenv(EnvDynamoDBEndpoint),
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
	cfg.Manager = manager.Config{HeartbeatMultiplier: mult, MaxHeartbeat: time.Duration(maxHB) * time.Second}
	return cfg, nil
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

// DynamoDB returns a client from the SDK's default chain (region,
// credentials, retries). With a custom endpoint and no credentials in the
// environment it signs with dummy ones, which DynamoDB Local and LocalStack
// accept.
func DynamoDB(ctx context.Context, cfg Config) (*dynamodb.Client, error) {
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.DynamoDBEndpoint == "" {
		return dynamodb.NewFromConfig(awsCfg), nil
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	if os.Getenv("AWS_ACCESS_KEY_ID") == "" && os.Getenv("AWS_PROFILE") == "" {
		awsCfg.Credentials = credentials.NewStaticCredentialsProvider("local", "local", "")
	}
	return dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(cfg.DynamoDBEndpoint)
		// DynamoDB Local sends a wrong CRC32 with some error responses.
		o.DisableValidateResponseChecksum = true
	}), nil
}

// Manager builds the manager over the configured table.
func Manager(ctx context.Context, cfg Config) (*manager.Manager, error) {
	db, err := DynamoDB(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return manager.New(dynamostore.New(db, cfg.Table), cfg.Manager)
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
