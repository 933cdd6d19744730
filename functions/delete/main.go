// Command delete is the Lambda function for Stampede's delete operation.
package main

import (
	"github.com/stampede-cache/stampede/internal/lambdafn"
	"github.com/stampede-cache/stampede/internal/s3blobs"
	"github.com/stampede-cache/stampede/internal/transport"
)

func main() { lambdafn.Main(transport.OpDelete, s3blobs.NewLazy) }
