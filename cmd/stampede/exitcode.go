package main

import (
	"errors"
	"fmt"
)

// Exit codes. docs/cli.md has the table; keep them in step.
const (
	// exitOK: success; for get, a hit.
	exitOK = 0
	// exitFailure: the service refused the request (conflict, failed
	// precondition, held by another owner, invalid argument, internal
	// error), or another failure.
	exitFailure = 1
	// exitUsage: a bad command line, detected before any request.
	exitUsage = 2
	// exitMiss: get found no entry; reservation found no holder.
	exitMiss = 3
	// exitUnavailable: the service could not be reached or answered that it
	// is unavailable or throttling, after the client's retries.
	exitUnavailable = 4
	// exitWrongEndpoint: what answered is not a Stampede API (no such
	// route, a redirect, a non-Stampede 404).
	exitWrongEndpoint = 5
	// exitNotStored: run's command succeeded but its result could not be
	// stored; its output URI and the put command that records it are
	// printed.
	exitNotStored = 6
	// exitTimeout: run --timeout expired before the command finished.
	exitTimeout = 124
	// exitCannotExecute and exitCommandNotFound: run's command could not be
	// started (as in POSIX shells).
	exitCannotExecute   = 126
	exitCommandNotFound = 127
	// exitSignalBase plus the signal number: interrupted.
	exitSignalBase = 128
)

// cliError is a command's failure: the process exit code and a one-line
// message for stderr ("" when the message was already printed).
type cliError struct {
	code int
	msg  string
	// usage adds a pointer to the command's help.
	usage bool
	err   error
}

func (e *cliError) Error() string { return e.msg }
func (e *cliError) Unwrap() error { return e.err }

// usageErrorf is a bad command line: exit 2, with a pointer to --help.
func usageErrorf(format string, args ...any) error {
	return &cliError{code: exitUsage, msg: fmt.Sprintf(format, args...), usage: true}
}

// exitErrorf is a failure with the given exit code.
func exitErrorf(code int, format string, args ...any) error {
	return &cliError{code: code, msg: fmt.Sprintf(format, args...)}
}

// exitCode is a failure whose message has been printed already.
func exitCode(code int) error { return &cliError{code: code} }

// asCLIError returns err's *cliError; errors of cobra's own (unknown
// command, bad flag, wrong number of arguments) are usage errors. Every
// command's own failure is a *cliError (see action).
func asCLIError(err error) *cliError {
	var ce *cliError
	if errors.As(err, &ce) {
		return ce
	}
	return &cliError{code: exitUsage, msg: err.Error(), usage: true, err: err}
}
