package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stampede-cache/stampede/client"
)

// TestOutputURICheckMatchesService: run and put refuse before any request
// exactly the output URIs the service refuses (internal/manager keeps the
// rules; this ties the command line's copy to them).
func TestOutputURICheckMatchesService(t *testing.T) {
	url := startAPI(t, nil)
	c, err := client.New(url)
	if err != nil {
		t.Fatal(err)
	}
	uris := []string{
		"s3://stampede-outputs/ml/dev/model.tar.gz",
		"s3://ml/models/x", // bucket too short
		"s3://abc/x",       // shortest bucket
		"s3://" + strings.Repeat("a", 63) + "/x",
		"s3://" + strings.Repeat("a", 64) + "/x",
		"s3://Bucket/x",                    // upper case
		"s3://my_bucket/x",                 // underscore
		"s3://-bucket/x", "s3://bucket-/x", // dash at an end
		"s3://.bucket/x", "s3://bucket./x", "s3://my..bucket/x", "s3://my.bucket/x",
		"s3://bucket/", "s3://bucket", "s3:/bucket/x", "https://bucket/x", "bucket/x",
		"s3://bucket/a b/ü/%2F?#", "s3://bucket/tab\there",
		"s3://bucket/" + strings.Repeat("k", 2048),
	}
	for i, uri := range uris {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			local := checkOutputURI(uri)
			_, err := c.Put(context.Background(), client.Scope{Project: "proj", Domain: "dev"}, fmt.Sprintf("uri/%d", i), client.PutRequest{OutputURI: uri})
			refused := errors.Is(err, client.ErrInvalidArgument)
			if err != nil && !refused {
				t.Fatalf("%q: the service answered %v", uri, err)
			}
			if (local != nil) != refused {
				t.Fatalf("%q: the command line says %v, the service %v", uri, local, err)
			}
		})
	}
	// Invalid UTF-8 never reaches the service through the Go client (JSON
	// encoding replaces it, which would alter the stored URI): the command
	// line refuses it itself.
	if err := checkOutputURI("s3://bucket/\xff"); err == nil {
		t.Error("invalid UTF-8 accepted")
	}
}
