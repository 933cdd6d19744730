// Package s3blobs implements manager.Blobs on Amazon S3 (or any
// S3-compatible endpoint). It is the only package that imports the S3 SDK.
package s3blobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/stampede-cache/stampede/internal/manager"
)

// API is the subset of the S3 client Blobs uses.
type API interface {
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
}

// Blobs checks and deletes output objects.
type Blobs struct{ s3 API }

var _ manager.Blobs = (*Blobs)(nil)

// New returns Blobs over an S3 client.
func New(client API) *Blobs { return &Blobs{s3: client} }

// Exists reports whether the object exists, with one HeadObject.
func (b *Blobs) Exists(ctx context.Context, bucket, key string) (bool, error) {
	_, err := b.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	var notFound *types.NotFound
	var noKey *types.NoSuchKey
	var respErr *awshttp.ResponseError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &notFound), errors.As(err, &noKey),
		errors.As(err, &respErr) && respErr.HTTPStatusCode() == http.StatusNotFound:
		return false, nil
	}
	return false, classify("HeadObject", err)
}

// Delete removes the object with one DeleteObject; S3 answers success for
// a missing object too.
func (b *Blobs) Delete(ctx context.Context, bucket, key string) error {
	if _, err := b.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: &key}); err != nil {
		return classify("DeleteObject", err)
	}
	return nil
}

// classify marks throttling and unavailability (5xx, timeouts, failed
// connections) so clients retry; the rest stays internal, with the cause in
// the log.
func classify(op string, err error) error {
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) && respErr.HTTPStatusCode() == http.StatusTooManyRequests {
		return &manager.Error{Code: manager.CodeThrottled, Message: "the object store is throttling requests; retry with backoff", Err: err}
	}
	var netErr net.Error
	if errors.As(err, &respErr) && respErr.HTTPStatusCode() >= http.StatusInternalServerError ||
		errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return &manager.Error{Code: manager.CodeUnavailable, Message: "the object store is unavailable; retry with backoff", Err: err}
	}
	return fmt.Errorf("s3 %s: %w", op, err)
}
