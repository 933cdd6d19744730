// Command get is the Lambda function for Stampede's get operation and
// for inspect, which reads a reservation without changing it.
package main

import (
	"github.com/stampede-cache/stampede/internal/lambdafn"
	"github.com/stampede-cache/stampede/internal/s3blobs"
	"github.com/stampede-cache/stampede/internal/transport"
)

func main() { lambdafn.Main(transport.OpGet, s3blobs.NewLazy) }
