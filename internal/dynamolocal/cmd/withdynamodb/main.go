// Command withdynamodb runs a command with DynamoDB Local: it starts one
// instance, runs the command with the instance's endpoint in
// $STAMPEDE_TEST_DYNAMODB_ENDPOINT, stops the instance and exits with the
// command's status. `make test` runs `go test ./...` under it, so that
// every test package shares one DynamoDB Local (each test still creates a
// table of its own) instead of starting one each.
//
//	go run ./internal/dynamolocal/cmd/withdynamodb [-log file] -- go test ./...
//
// The start-up budget is $STAMPEDE_DYNAMODB_LOCAL_START_TIMEOUT (default
// 180s); the DynamoDB Local directory is $STAMPEDE_DYNAMODB_LOCAL_DIR or
// the one scripts/dynamodb-local.sh installs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/stampede-cache/stampede/internal/dynamolocal"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("withdynamodb", flag.ContinueOnError)
	fs.SetOutput(stderr)
	logPath := fs.String("log", "", "append DynamoDB Local's output to this file (default: discard it)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: withdynamodb [-log file] -- command [arg...]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	// A Ctrl-C reaches the command (same process group) and ends it; this
	// process only has to outlive it and then stop DynamoDB Local. A
	// SIGTERM sent to this process alone is passed on.
	signal.Ignore(syscall.SIGINT)
	terminate := make(chan os.Signal, 1)
	signal.Notify(terminate, syscall.SIGTERM)

	// Short-lived: a quick start matters more than peak throughput.
	opts := dynamolocal.Options{FastStart: true}
	if *logPath != "" {
		f, err := os.OpenFile(*logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintln(stderr, "withdynamodb:", err)
			return 1
		}
		defer f.Close()
		opts.Log = f
	}
	ctx := context.Background()
	dir, err := dynamolocal.Locate(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "withdynamodb:", err)
		return 1
	}
	opts.Dir = dir
	began := time.Now()
	inst, err := dynamolocal.Start(ctx, opts)
	if err != nil {
		fmt.Fprintln(stderr, "withdynamodb:", err)
		return 1
	}
	defer inst.Stop()
	fmt.Fprintf(stderr, "withdynamodb: DynamoDB Local at %s (ready in %.1fs)\n", inst.Endpoint, time.Since(began).Seconds())

	cmd := exec.Command(fs.Arg(0), fs.Args()[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), dynamolocal.EndpointEnv+"="+inst.Endpoint)
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(stderr, "withdynamodb:", err)
		return 1
	}
	go func() {
		for sig := range terminate {
			_ = cmd.Process.Signal(sig)
		}
	}()
	err = cmd.Wait()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit) && exit.ExitCode() > 0:
		return exit.ExitCode()
	default:
		fmt.Fprintln(stderr, "withdynamodb:", err)
		return 1
	}
}
