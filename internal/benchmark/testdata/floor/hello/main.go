// Command hello is the bare aws-lambda-go function: the size and start-up
// time of a Go Lambda function that does nothing.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(context.Context) (string, error) { return "hello", nil })
}
