// Command release is the Lambda function for Stampede's release operation. It
// never touches objects: no object store, and no S3 SDK in the binary.
package main

import (
	"github.com/stampede-cache/stampede/internal/lambdafn"
	"github.com/stampede-cache/stampede/internal/transport"
)

func main() { lambdafn.Main(transport.OpRelease, nil) }
