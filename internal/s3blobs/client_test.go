package s3blobs

import (
	"context"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/stampede-cache/stampede/internal/awsclient"
	"github.com/stampede-cache/stampede/internal/locals3"
)

func TestNewClientForALocalEndpoint(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_PROFILE", "")
	c := NewClient(aws.Config{}, "http://127.0.0.1:9000")
	o := c.Options()
	if o.BaseEndpoint == nil || *o.BaseEndpoint != "http://127.0.0.1:9000" || !o.UsePathStyle || o.Region != awsclient.LocalRegion || o.Credentials == nil {
		t.Errorf("options for a local endpoint: endpoint %v path-style %v region %q credentials %v", o.BaseEndpoint, o.UsePathStyle, o.Region, o.Credentials)
	}
	aws := NewClient(aws.Config{Region: "eu-west-1"}, "", func(o *ClientOptions) { o.AppID = "probe" })
	if o := aws.Options(); o.BaseEndpoint != nil || o.UsePathStyle || o.Region != "eu-west-1" || o.AppID != "probe" {
		t.Errorf("options for AWS: endpoint %v path-style %v region %q app %q", o.BaseEndpoint, o.UsePathStyle, o.Region, o.AppID)
	}
}

// TestNewLazy: the S3 client is built at the first request, once, however
// many requests race for it.
func TestNewLazy(t *testing.T) {
	srv, err := locals3.Start("", []string{"outputs"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}
	blobs := NewLazy(cfg, srv.Endpoint).(*Blobs)
	lazy := blobs.s3.(*lazyClient)
	if lazy.client != nil {
		t.Fatal("the client was built before any request")
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if ok, err := blobs.Exists(context.Background(), "outputs", "missing"); err != nil || ok {
				t.Errorf("Exists = %v, %v", ok, err)
			}
		})
	}
	wg.Wait()
	built := lazy.client
	if built == nil {
		t.Fatal("no client after requests")
	}
	if err := blobs.Delete(context.Background(), "outputs", "missing"); err != nil {
		t.Fatal(err)
	}
	if lazy.client != built {
		t.Error("the client was built twice")
	}
}
