// Package lambdafn runs one of Stampede's operations as a Lambda function:
// it reads the configuration from the environment, builds the manager (one
// AWS configuration load, the S3 client only where asked for and only when
// first used) and serves the operation's transport handler under the Lambda
// runtime. Each functions/<name>/main.go is one call of Main.
package lambdafn

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/stampede-cache/stampede/internal/config"
	"github.com/stampede-cache/stampede/internal/transport"
)

// Main serves op until the runtime stops the process; blobs builds the
// object store (nil for a function that never touches objects). A
// configuration error is logged and ends the process during init, which
// Lambda reports as an init failure.
func Main(op transport.Op, blobs config.BlobsFunc) {
	cfg, cfgErr := config.FromEnv("")
	log := Logger(cfg.LogLevel)
	if cfgErr != nil {
		log.Error("start-up failed", "error", cfgErr)
		os.Exit(1)
	}
	mgr, err := config.Manager(context.Background(), cfg, blobs)
	if err != nil {
		log.Error("start-up failed", "error", err)
		os.Exit(1)
	}
	// Metrics: each request's log line carries its Embedded Metric Format
	// fields, which CloudWatch turns into the stack's metrics.
	lambda.Start(transport.NewFunction(mgr, op, transport.Options{Log: log, Metrics: true}).Invoke)
}

// Logger returns the function's logger: Lambda's own handler (JSON or text
// per AWS_LAMBDA_LOG_FORMAT, the request id on every line, records below
// AWS_LAMBDA_LOG_LEVEL dropped) that also drops records below level
// (STAMPEDE_LOG_LEVEL).
func Logger(level slog.Level) *slog.Logger {
	return slog.New(MinLevel(lambdacontext.NewLogHandler(), level))
}
