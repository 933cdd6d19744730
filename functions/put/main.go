// Command put is the Lambda function for Stampede's put operation.
package main

import (
	"github.com/stampede-cache/stampede/internal/lambdafn"
	"github.com/stampede-cache/stampede/internal/s3blobs"
	"github.com/stampede-cache/stampede/internal/transport"
)

func main() { lambdafn.Main(transport.OpPut, s3blobs.NewLazy) }
