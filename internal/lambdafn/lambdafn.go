// Package lambdafn runs one of Stampede's operations as a Lambda function:
// it reads the configuration from the environment, builds the manager (one
// AWS configuration load, the S3 client only where asked for and only when
// first used) and serves the operation's transport handler under the Lambda
// runtime. Each functions/<name>/main.go is one call of Main (MainRPC for
// the flyte function).
package lambdafn

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/stampede-cache/stampede/internal/config"
	"github.com/stampede-cache/stampede/internal/manager"
	"github.com/stampede-cache/stampede/internal/transport"
)

// Main serves op until the runtime stops the process; blobs builds the
// object store (nil for a function that never touches objects). A
// configuration error is logged and ends the process during init, which
// Lambda reports as an init failure.
func Main(op transport.Op, blobs config.BlobsFunc) {
	mgr, log := start(blobs)
	lambda.Start(transport.NewFunction(mgr, op, options(log)).Invoke)
}

// MainRPC serves the RPC service mount builds (flyte.Mount: Flyte's cache
// service), every operation of it, as Main serves one operation.
func MainRPC(mount func(*manager.Manager) transport.RPCService, blobs config.BlobsFunc) {
	mgr, log := start(blobs)
	lambda.Start(transport.NewRPCFunction(mount(mgr), options(log)).Invoke)
}

// start reads the configuration and builds the manager, or ends the
// process.
func start(blobs config.BlobsFunc) (*manager.Manager, *slog.Logger) {
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
	return mgr, log
}

// options are the transport's options in a function. Metrics: each
// request's log line carries its Embedded Metric Format fields, which
// CloudWatch turns into the stack's metrics.
func options(log *slog.Logger) transport.Options {
	return transport.Options{Log: log, Metrics: true}
}

// Logger returns the function's logger: Lambda's own handler (JSON or text
// per AWS_LAMBDA_LOG_FORMAT, the request id on every line, records below
// AWS_LAMBDA_LOG_LEVEL dropped) that also drops records below level
// (STAMPEDE_LOG_LEVEL).
func Logger(level slog.Level) *slog.Logger {
	return slog.New(MinLevel(lambdacontext.NewLogHandler(), level))
}
