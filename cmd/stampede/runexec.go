package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

// killGrace is how long a command may take to exit after SIGTERM before it
// is killed.
const killGrace = 10 * time.Second

// commandError is a command that could not be started or exited non-zero.
type commandError struct {
	code int
	msg  string
}

func (e *commandError) Error() string { return e.msg }

// outputError is a command that exited 0 without naming a valid output.
type outputError struct{ msg string }

func (e *outputError) Error() string { return e.msg }

// command is run's command: what to run, and where its output URI comes
// from.
type command struct {
	argv           []string
	env            []string
	stdin          io.Reader
	stdout, stderr io.Writer
	uriFile        string
	fallbackURI    string
	fallbackFlag   string
}

// run runs the command, forwarding SIGINT and SIGTERM to it, and returns
// its output URI: what it wrote to $STAMPEDE_OUTPUT_URI_FILE, else the
// fallback. It fails with a *commandError when the command could not start
// or exited non-zero, an *outputError when it named no valid output, or
// the context's cause when it was told to stop.
func (c *command) run(ctx context.Context) (string, error) {
	// A fresh, empty file for every run.
	if err := os.WriteFile(c.uriFile, nil, 0o600); err != nil {
		return "", fmt.Errorf("create $%s: %w", envOutputURIFile, err)
	}
	cmd := exec.Command(c.argv[0], c.argv[1:]...)
	cmd.Env = append(c.env, envOutputURIFile+"="+c.uriFile)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = c.stdin, c.stdout, c.stderr
	fwd := newForwarder()
	defer fwd.stop()
	if err := cmd.Start(); err != nil {
		code := exitCannotExecute
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			code = exitCommandNotFound
		}
		return "", &commandError{code: code, msg: fmt.Sprintf("cannot run %s: %v", c.argv[0], unwrapExecError(err))}
	}
	fwd.attach(cmd.Process)
	waitErr := c.wait(ctx, cmd, fwd)
	fwd.attach(nil)
	if waitErr != nil {
		var exitErr *exec.ExitError
		if !errors.As(waitErr, &exitErr) {
			return "", waitErr
		}
		code := exitErr.ExitCode()
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = exitSignalBase + int(ws.Signal())
		}
		return "", &commandError{code: code, msg: fmt.Sprintf("the command exited with code %d", code)}
	}
	if ctx.Err() != nil {
		// It exited 0 after being told to stop: do not trust its output.
		return "", context.Cause(ctx)
	}
	return c.outputURI()
}

// wait waits for the command; when ctx ends first (reservation lost,
// timeout, interrupted) it stops the command: SIGTERM (unless a forwarded
// signal is already doing so), then SIGKILL after killGrace.
func (c *command) wait(ctx context.Context, cmd *exec.Cmd, fwd *forwarder) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	if fwd.signal() == nil {
		_ = cmd.Process.Signal(syscall.SIGTERM)
	}
	t := time.NewTimer(killGrace)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		_ = cmd.Process.Kill()
		return <-done
	}
}

// outputURI reads the URI the command wrote, or takes the fallback, and
// checks it as the service would.
func (c *command) outputURI() (string, error) {
	data, err := os.ReadFile(c.uriFile)
	if err != nil {
		return "", fmt.Errorf("read $%s: %w", envOutputURIFile, err)
	}
	uri := strings.TrimSpace(string(data))
	source := "$" + envOutputURIFile
	switch {
	case strings.ContainsAny(uri, "\r\n"):
		return "", &outputError{fmt.Sprintf("$%s must hold one URI, got %d lines", envOutputURIFile, strings.Count(uri, "\n")+1)}
	case uri == "" && c.fallbackURI == "":
		return "", &outputError{fmt.Sprintf("the command exited 0 but named no output: pass --output-uri or write the URI to $%s", envOutputURIFile)}
	case uri == "":
		uri, source = c.fallbackURI, c.fallbackFlag
	}
	if err := checkOutputURI(uri); err != nil {
		return "", &outputError{fmt.Sprintf("the command exited 0 but its output URI (from %s) is not valid: %v", source, err)}
	}
	return uri, nil
}

// forwarder relays SIGINT and SIGTERM to the running command and remembers
// the last one received.
type forwarder struct {
	ch       chan os.Signal
	mu       sync.Mutex
	proc     *os.Process
	last     os.Signal
	done     chan struct{}
	stopOnce sync.Once
}

func newForwarder() *forwarder {
	f := &forwarder{ch: make(chan os.Signal, 4), done: make(chan struct{})}
	signal.Notify(f.ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		defer close(f.done)
		for s := range f.ch {
			f.mu.Lock()
			f.last = s
			if f.proc != nil {
				_ = f.proc.Signal(s)
			}
			f.mu.Unlock()
		}
	}()
	return f
}

// attach makes p the process signals go to. A signal that arrived while
// the command was starting (before attach) is delivered now: otherwise it
// would be recorded as forwarded and the command never told.
func (f *forwarder) attach(p *os.Process) {
	f.mu.Lock()
	f.proc = p
	if p != nil && f.last != nil {
		_ = p.Signal(f.last)
	}
	f.mu.Unlock()
}

func (f *forwarder) signal() os.Signal {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

// stop ends forwarding. When it returns, every signal delivered so far
// has been recorded (signal.Stop waits for deliveries in progress).
func (f *forwarder) stop() {
	f.stopOnce.Do(func() {
		signal.Stop(f.ch)
		close(f.ch)
		<-f.done
	})
}
