package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/stampede-cache/stampede/client"
)

// app is what every command shares. main builds it from the process; tests
// build their own. The commands take everything from it (and their flags):
// there is no package-level state.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// clientOptions are added to every client a command builds (tests use
	// them to shorten retries).
	clientOptions []client.Option
	// interrupted reports the signal that cancelled the context, if any;
	// nil means the process is not signal-driven (tests).
	interrupted func() os.Signal
}

// execute runs the command line args and returns the exit code. Failures
// are reported on stderr in one line, prefixed with the command's path.
func (a *app) execute(ctx context.Context, args []string) int {
	root := a.newRoot()
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	ce := asCLIError(err)
	if ce.msg != "" {
		fmt.Fprintf(a.stderr, "%s: %s\n", cmd.CommandPath(), ce.msg)
	}
	if ce.usage {
		fmt.Fprintf(a.stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return ce.code
}

// action adapts a command's function for cobra: a failure that is not a
// *cliError already is reported with exit code 1. Errors of cobra's own
// (flags, arguments) never pass here and are usage errors (asCLIError).
func action(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		err := fn(cmd, args)
		var ce *cliError
		if err == nil || errors.As(err, &ce) {
			return err
		}
		return &cliError{code: exitFailure, msg: oneLine(err.Error()), err: err}
	}
}

// interruptedCode is the exit code after the context was cancelled by a
// signal: 128 + its number (130 for SIGINT when unknown).
func (a *app) interruptedCode() int {
	if a.interrupted != nil {
		if s, ok := a.interrupted().(syscall.Signal); ok {
			return exitSignalBase + int(s)
		}
	}
	return exitSignalBase + int(syscall.SIGINT)
}

// env returns the environment variable, or def when it is unset or empty.
func (a *app) env(name, def string) string {
	if v := a.getenv(name); v != "" {
		return v
	}
	return def
}
