// Command infra is Stampede's CDK app: one stack per environment,
// "Stampede-<env>", configured through the CDK context (env, api, example,
// outputsExpirationDays, ...; see stack.Config).
//
// The CDK CLI runs it for deploy, diff and destroy (cdk.json's "app") and
// passes its -c options through CDK_CONTEXT_JSON. `make synth` runs it
// directly, with no CLI and no AWS credentials:
//
//	CDK_OUTDIR=cdk.out go run . -c env=dev -c api=rest
//
// so it takes -c key=value arguments itself, and reads cdk.json's
// "context" (the feature flags) itself: both paths synthesize the same
// template.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/stampede-cache/stampede/infra/stack"
)

func main() {
	err := run(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "stampede infra:", err)
		jsii.Close()
		os.Exit(1)
	}
	// jsii-runtime-go v1.112.0 waits for its node process twice on Close
	// (a race between Close and a watcher goroutine) and the loser prints
	// "Runtime process exited abnormally: waitid: no child processes".
	// The synthesis has succeeded by now: silence that one message.
	if devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0); err == nil {
		os.Stderr = devnull
	}
	jsii.Close()
}

func run(args []string) error {
	cli := contextFlags{}
	fs := flag.NewFlagSet("infra", flag.ContinueOnError)
	fs.Var(cli, "c", "context `key=value` (repeatable), as with the CDK CLI's -c")
	fs.Var(cli, "context", "same as -c")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	defaults, err := cdkJSONContext("cdk.json")
	if err != nil {
		return err
	}
	post := map[string]interface{}(cli)
	// Precedence: -c arguments, then CDK_CONTEXT_JSON (the CLI's -c), then
	// cdk.json.
	props := &awscdk.AppProps{Context: &defaults, PostCliContext: &post}
	// Read here rather than by the CDK in its node process, whose
	// environment is fixed when jsii starts it.
	if out := os.Getenv("CDK_OUTDIR"); out != "" {
		props.Outdir = jsii.String(out)
	}
	app := awscdk.NewApp(props)
	if _, err := stack.FromContext(app); err != nil {
		return err
	}
	app.Synth(nil)
	return nil
}

// contextFlags collects -c key=value arguments.
type contextFlags map[string]interface{}

func (c contextFlags) String() string { return fmt.Sprint(map[string]interface{}(c)) }

func (c contextFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return errors.New("want key=value")
	}
	c[k] = v
	return nil
}

// cdkJSONContext returns the "context" object of the CDK project file.
func cdkJSONContext(path string) (map[string]interface{}, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("run the app from infra/, where %s is: %w", path, err)
	}
	var f struct {
		Context map[string]interface{} `json:"context"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f.Context, nil
}
