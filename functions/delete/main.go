// Command delete is the Lambda function for Stampede's delete operation.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/stampede-cache/stampede/internal/config"
	"github.com/stampede-cache/stampede/internal/transport"
)

func main() {
	log := lambdacontext.NewLogger()
	mgr, err := config.ManagerFromEnv(context.Background())
	if err != nil {
		log.Error("start-up failed", "error", err)
		os.Exit(1)
	}
	lambda.Start(transport.NewFunction(mgr, transport.OpDelete, transport.Options{Log: log}).Invoke)
}
