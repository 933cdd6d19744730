// Command flyte is the Lambda function for Flyte's cache service
// (flyteidl2.cacheservice.v2.CacheService, docs/flyte.md): every operation,
// over Connect and gRPC-Web through API Gateway. The protobuf and Connect
// code lives here only, not in the five functions of the HTTP API.
package main

import (
	"github.com/stampede-cache/stampede/internal/flyte"
	"github.com/stampede-cache/stampede/internal/lambdafn"
	"github.com/stampede-cache/stampede/internal/s3blobs"
)

func main() { lambdafn.MainRPC(flyte.Mount, s3blobs.NewLazy) }
