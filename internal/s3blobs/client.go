package s3blobs

import (
	"context"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/stampede-cache/stampede/internal/awsclient"
	"github.com/stampede-cache/stampede/internal/manager"
)

// Client is the S3 client Blobs runs on. Other packages name it through
// this alias, so that this package stays the only one importing the S3 SDK.
type Client = s3.Client

// ClientOptions configure a Client.
type ClientOptions = s3.Options

// NewClient returns an S3 client over the process's AWS configuration
// (awsclient.Load). A non-empty endpoint points it at an S3-compatible
// endpoint (gofakes3, LocalStack, MinIO), path-style, signing with a
// default region and dummy credentials when the environment has none.
// optFns apply last.
func NewClient(awsCfg aws.Config, endpoint string, optFns ...func(*ClientOptions)) *Client {
	return s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if endpoint == "" {
			return
		}
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
		awsclient.LocalDefaults(&o.Region, &o.Credentials)
	}, func(o *s3.Options) {
		for _, fn := range optFns {
			fn(o)
		}
	})
}

// NewLazy returns Blobs whose S3 client is built on first use: a process
// that never checks or deletes an object never builds one. Its signature
// is config.BlobsFunc's.
func NewLazy(awsCfg aws.Config, endpoint string) manager.Blobs {
	return New(&lazyClient{newClient: func() *Client { return NewClient(awsCfg, endpoint) }})
}

// lazyClient builds its S3 client on the first call.
type lazyClient struct {
	newClient func() *Client
	once      sync.Once
	client    *Client
}

func (c *lazyClient) get() *Client {
	c.once.Do(func() { c.client = c.newClient() })
	return c.client
}

func (c *lazyClient) HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	return c.get().HeadObject(ctx, in, optFns...)
}

func (c *lazyClient) DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectOutput, error) {
	return c.get().DeleteObject(ctx, in, optFns...)
}
