package config

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		def     string
		wantErr bool
		check   func(Config) bool
	}{
		{"table required", map[string]string{}, "", true, nil},
		{"table default", map[string]string{}, "stampede", false, func(c Config) bool {
			return c.Table == "stampede" && c.Manager.HeartbeatMultiplier == 3 && c.Manager.MaxHeartbeat == 10*time.Second
		}},
		{"all set", map[string]string{
			EnvTable: "t", EnvHeartbeatMultiplier: "4", EnvMaxHeartbeatSeconds: "60",
			EnvManagedBuckets: " a , b,,", EnvDynamoDBEndpoint: "http://127.0.0.1:8000", EnvS3Endpoint: "http://127.0.0.1:9000",
		}, "", false, func(c Config) bool {
			return c.Table == "t" && c.Manager.HeartbeatMultiplier == 4 && c.Manager.MaxHeartbeat == time.Minute &&
				slices.Equal(c.Manager.ManagedBuckets, []string{"a", "b"}) && c.DynamoDBEndpoint != "" && c.S3Endpoint != ""
		}},
		{"bad multiplier", map[string]string{EnvTable: "t", EnvHeartbeatMultiplier: "x"}, "", true, nil},
		{"zero max heartbeat", map[string]string{EnvTable: "t", EnvMaxHeartbeatSeconds: "0"}, "", true, nil},
		{"output expiration", map[string]string{EnvTable: "t", EnvOutputExpirationDays: "30"}, "", false, func(c Config) bool {
			return c.Manager.OutputExpiration == 30*24*time.Hour
		}},
		{"no output expiration", map[string]string{EnvTable: "t", EnvOutputExpirationDays: "0"}, "", false, func(c Config) bool {
			return c.Manager.OutputExpiration == 0
		}},
		{"bad output expiration", map[string]string{EnvTable: "t", EnvOutputExpirationDays: "-1"}, "", true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{EnvTable, EnvHeartbeatMultiplier, EnvMaxHeartbeatSeconds, EnvManagedBuckets, EnvDynamoDBEndpoint, EnvS3Endpoint, EnvRequestTimeout, EnvLogLevel, EnvOutputExpirationDays} {
				t.Setenv(k, tt.env[k])
			}
			cfg, err := FromEnv(tt.def)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if tt.check != nil && !tt.check(cfg) {
				t.Fatalf("config = %+v", cfg)
			}
		})
	}
}

func TestLogLevel(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    slog.Level
		wantErr bool
	}{
		{"", slog.LevelInfo, false},
		{"debug", slog.LevelDebug, false},
		{"INFO", slog.LevelInfo, false},
		{" warn ", slog.LevelWarn, false},
		{"Error", slog.LevelError, false},
		{"loud", slog.LevelInfo, true},
		{"warning", slog.LevelInfo, true},
	} {
		got, err := LogLevel(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("LogLevel(%q) = %v, %v; want %v (error: %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
	t.Setenv(EnvTable, "t")
	t.Setenv(EnvLogLevel, "warn")
	if cfg, err := FromEnv(""); err != nil || cfg.LogLevel != slog.LevelWarn {
		t.Errorf("FromEnv with %s=warn: %v, %v", EnvLogLevel, cfg.LogLevel, err)
	}
	t.Setenv(EnvLogLevel, "loud")
	if _, err := FromEnv(""); err == nil || !strings.Contains(err.Error(), EnvLogLevel) {
		t.Errorf("FromEnv with %s=loud: %v, want an error naming it", EnvLogLevel, err)
	}
}
