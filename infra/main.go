// Command infra is Stampede's CDK app: one stack per environment,
// "Stampede-<env>", configured through the CDK context (-c env=dev,
// -c api=rest, -c example=true, ...; see stack.Config).
//
// The CDK CLI runs it for deploy, diff and destroy (cdk.json's "app");
// `make synth` runs it directly (no CLI, no AWS credentials), which is why
// it also reads cdk.json's "context" (the feature flags) itself: both paths
// then synthesize the same template.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/stampede-cache/stampede/infra/stack"
)

func main() {
	defer jsii.Close()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "stampede infra:", err)
		jsii.Close()
		os.Exit(1)
	}
}

func run() error {
	defaults, err := cdkJSONContext("cdk.json")
	if err != nil {
		return err
	}
	// Context from the CLI (-c) or CDK_CONTEXT_JSON overrides these.
	app := awscdk.NewApp(&awscdk.AppProps{Context: &defaults})
	if _, err := stack.FromContext(app); err != nil {
		return err
	}
	app.Synth(nil)
	return nil
}

// cdkJSONContext returns the "context" object of the CDK project file.
func cdkJSONContext(path string) (map[string]interface{}, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("run the app from infra/ (where %s is): %w", path, err)
	}
	var f struct {
		Context map[string]interface{} `json:"context"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f.Context, nil
}
