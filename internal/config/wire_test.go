package config

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/stampede-cache/stampede/internal/manager"
	"github.com/stampede-cache/stampede/internal/s3blobs"
)

// TestConnect: one AWS configuration, whose HTTP client the DynamoDB
// client and the object store's share; the object store built only for
// managed buckets and only when a BlobsFunc is given.
func TestConnect(t *testing.T) {
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_CONFIG_FILE":             filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_REGION":                  "eu-west-1",
		"AWS_ACCESS_KEY_ID":           "AKID",
		"AWS_SECRET_ACCESS_KEY":       "secret",
		"AWS_PROFILE":                 "",
	} {
		t.Setenv(k, v)
	}
	cfg := Config{Table: "t", DynamoDBEndpoint: "http://127.0.0.1:8000", S3Endpoint: "http://127.0.0.1:9000"}
	b, err := Connect(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if b.DynamoDB.Options().HTTPClient != b.AWS.HTTPClient {
		t.Error("the DynamoDB client has an HTTP client of its own")
	}
	if s3 := s3blobs.NewClient(b.AWS, cfg.S3Endpoint); s3.Options().HTTPClient != b.AWS.HTTPClient {
		t.Error("the S3 client has an HTTP client of its own")
	}

	var calls []string
	blobs := func(awsCfg aws.Config, endpoint string) manager.Blobs {
		if awsCfg.HTTPClient != b.AWS.HTTPClient {
			t.Error("the object store got another AWS configuration")
		}
		calls = append(calls, endpoint)
		return s3blobs.NewLazy(awsCfg, endpoint)
	}
	for _, tt := range []struct {
		name    string
		buckets []string
		blobs   BlobsFunc
		calls   int
	}{
		{"no managed bucket", nil, blobs, 0},
		{"managed buckets", []string{"outputs"}, blobs, 1},
		{"no object store (reserve, release)", []string{"outputs"}, nil, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			calls = nil
			c := cfg
			c.Manager.ManagedBuckets = tt.buckets
			if _, err := b.Manager(c, tt.blobs); err != nil {
				t.Fatal(err)
			}
			if len(calls) != tt.calls || (tt.calls > 0 && calls[0] != cfg.S3Endpoint) {
				t.Errorf("object store built for %v, want %d time(s) for %s", calls, tt.calls, cfg.S3Endpoint)
			}
		})
	}
}
