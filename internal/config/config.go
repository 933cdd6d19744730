// Package config reads Stampede's configuration from the environment and
// wires the manager from it, for the Lambda functions and the local server
// alike. It builds no AWS client itself: internal/awsclient loads the
// process's one AWS configuration, internal/dynamostore and
// internal/s3blobs build the clients over it.
package config

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/stampede-cache/stampede/internal/contract"
	"github.com/stampede-cache/stampede/internal/manager"
)

// Environment variables (see internal/contract).
const (
	EnvTable               = contract.EnvTable
	EnvHeartbeatMultiplier = contract.EnvHeartbeatMultiplier
	EnvMaxHeartbeatSeconds = contract.EnvMaxHeartbeatSeconds
	EnvDynamoDBEndpoint    = contract.EnvDynamoDBEndpoint
	EnvManagedBuckets      = contract.EnvManagedBuckets
	EnvS3Endpoint          = contract.EnvS3Endpoint
	EnvRequestTimeout      = contract.EnvRequestTimeout
	EnvLogLevel            = contract.EnvLogLevel
	// EnvOutputExpirationDays caps entries pointing into managed buckets.
	EnvOutputExpirationDays = contract.EnvOutputExpirationDays
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
	// LogLevel is the lowest level logged (info unless STAMPEDE_LOG_LEVEL
	// says otherwise).
	LogLevel slog.Level
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
	if cfg.LogLevel, err = LogLevel(os.Getenv(EnvLogLevel)); err != nil {
		return Config{}, err
	}
	expirationDays := 0
	if v := os.Getenv(EnvOutputExpirationDays); v != "" {
		if expirationDays, err = strconv.Atoi(v); err != nil || expirationDays < 0 || expirationDays > 36500 {
			return Config{}, fmt.Errorf("%s: want a number of days from 0 to 36500, got %q", EnvOutputExpirationDays, v)
		}
	}
	cfg.Manager = manager.Config{
		HeartbeatMultiplier: mult,
		MaxHeartbeat:        time.Duration(maxHB) * time.Second,
		ManagedBuckets:      splitList(os.Getenv(EnvManagedBuckets)),
		OutputExpiration:    time.Duration(expirationDays) * 24 * time.Hour,
	}
	return cfg, nil
}

// LogLevel parses a STAMPEDE_LOG_LEVEL value: debug, info, warn or error,
// in any letter case; empty means info.
func LogLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return slog.LevelInfo, fmt.Errorf("%s: want one of %s, got %q", EnvLogLevel, strings.Join(contract.LogLevels(), ", "), s)
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
