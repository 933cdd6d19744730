package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/stampede-cache/stampede/client"
)

// Environment `stampede run` gives its command.
const (
	// envOutputURIFile names an empty file; the command may write its
	// output's URI there (one line), which takes precedence over
	// --output-uri.
	envOutputURIFile = "STAMPEDE_OUTPUT_URI_FILE"
	envKey           = "STAMPEDE_KEY"
	envFence         = "STAMPEDE_FENCE"
)

// killGrace is how long a command may take to exit after SIGTERM before it
// is killed.
const killGrace = 10 * time.Second

// commandError is a command that ran and failed.
type commandError struct{ code int }

func (e *commandError) Error() string { return fmt.Sprintf("the command exited with code %d", e.code) }

// startError is a command that could not be started.
type startError struct {
	code int
	err  error
}

func (e *startError) Error() string { return e.err.Error() }

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newCLI("run", "--key KEY [flags] [--] COMMAND [ARGS...]",
		`Memoize COMMAND across machines. On a cache hit, print the entry and exit 0
without running COMMAND. On a miss, run COMMAND only if this process gets
KEY's reservation (heartbeating while it runs) and, when it exits 0, store
the entry: the URI COMMAND wrote to the file named by $STAMPEDE_OUTPUT_URI_FILE,
else --output-uri. When it fails, release the reservation and exit with its
code. When another process holds the reservation, wait for its result (or
take over when it dies). See docs/cli.md.`, stdout, stderr)
	m := metadataFlags{outputURIHelp: "the output's URI, s3://bucket/key, unless COMMAND writes one to $" + envOutputURIFile}
	m.register(c.fs)
	owner := c.fs.String("owner", os.Getenv(envOwnerID), "reservation owner ID (env "+envOwnerID+"); default: host name plus a random suffix")
	heartbeat := c.fs.Duration("heartbeat", 0, "heartbeat interval to ask for; the server clamps it (default: the server's)")
	poll := c.fs.Duration("poll", 0, "how often to look for another owner's result (default: its heartbeat interval)")
	quiet := c.fs.Bool("quiet", false, "print no status lines on stderr")
	if code, ok := c.parseFlags(args); !ok {
		return code
	}
	argv := c.fs.Args()
	if c.key == "" {
		return c.usage("--key is required")
	}
	if len(argv) == 0 {
		return c.usage("a command to run is required, after --")
	}
	if code, ok := c.checkCommon(); !ok {
		return code
	}
	if code, ok := m.check(c); !ok {
		return code
	}
	if *heartbeat < 0 || *poll < 0 {
		return c.usage("--heartbeat and --poll must not be negative")
	}
	if *owner == "" {
		*owner = client.NewOwnerID()
	}
	cl, code, ok := c.client()
	if !ok {
		return code
	}

	fwd := newForwarder()
	defer fwd.stop()
	status := newRunStatus(stderr, c.key, *quiet)
	opts := []client.ComputeOption{client.WithOwnerID(*owner), client.WithObserver(status.observe)}
	if *heartbeat > 0 {
		opts = append(opts, client.WithHeartbeat(*heartbeat))
	}
	if *poll > 0 {
		opts = append(opts, client.WithPollInterval(*poll))
	}
	if m.overwrite {
		opts = append(opts, client.WithOverwrite())
	}
	if m.maxAge > 0 {
		opts = append(opts, client.WithMaxAge(m.maxAge))
	}
	if m.ttl > 0 {
		opts = append(opts, client.WithTTL(m.ttl))
	}
	compute := func(ctx context.Context) (client.ComputeResult, error) {
		status.mu.Lock()
		res := *status.acquired
		status.mu.Unlock()
		env := append(os.Environ(),
			envEndpoint+"="+c.endpoint,
			envProject+"="+c.project,
			envDomain+"="+c.domain,
			envKey+"="+c.key,
			envOwnerID+"="+res.OwnerID,
			envFence+"="+strconv.FormatInt(res.Fence, 10),
		)
		uri, err := runCommand(ctx, argv, env, stdout, stderr, fwd)
		if err != nil {
			return client.ComputeResult{}, err
		}
		if uri == "" {
			uri = m.outputURI
		}
		if uri == "" {
			return client.ComputeResult{}, fmt.Errorf("the command exited 0 but named no output: pass --output-uri or write the URI to $%s", envOutputURIFile)
		}
		return client.ComputeResult{OutputURI: uri, Metadata: m.metadata()}, nil
	}
	entry, err := cl.GetOrCompute(ctx, c.scope(), c.key, compute, opts...)
	status.close()
	// After stop, a signal that ended the run is recorded.
	fwd.stop()

	var cmdErr *commandError
	var startErr *startError
	switch {
	case err == nil:
	case errors.As(err, &cmdErr):
		fmt.Fprintf(stderr, "stampede run: %v; released the reservation\n", cmdErr)
		return cmdErr.code
	case errors.As(err, &startErr):
		fmt.Fprintf(stderr, "stampede run: %v\n", startErr)
		return startErr.code
	case fwd.signal() != nil:
		fmt.Fprintf(stderr, "stampede run: interrupted by %v\n", fwd.signal())
		return 128 + signalNumber(fwd.signal())
	case errors.Is(err, client.ErrReservationLost):
		fmt.Fprintf(stderr, "stampede run: %v; the command was stopped and its output not stored\n", strings.TrimPrefix(err.Error(), "stampede: "))
		return exitFailure
	default:
		return c.fail(err)
	}
	if c.json {
		c.printJSON(entry)
	} else {
		c.printFields(entryFields(entry))
	}
	return exitOK
}

// runCommand runs argv with env, forwarding SIGINT and SIGTERM to it. It
// returns the URI the command wrote to $STAMPEDE_OUTPUT_URI_FILE ("" when
// none), a *commandError when it exited non-zero, or a *startError.
func runCommand(ctx context.Context, argv, env []string, stdout, stderr io.Writer, fwd *forwarder) (string, error) {
	dir, err := os.MkdirTemp("", "stampede-run-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	uriFile := dir + "/output-uri"
	if err := os.WriteFile(uriFile, nil, 0o600); err != nil {
		return "", err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(env, envOutputURIFile+"="+uriFile)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	if err := cmd.Start(); err != nil {
		code := 126
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			code = 127
		}
		return "", &startError{code: code, err: fmt.Errorf("cannot run %s: %w", argv[0], err)}
	}
	fwd.attach(cmd.Process)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	var waitErr error
	select {
	case waitErr = <-done:
	case <-ctx.Done():
		// Lost the reservation, or interrupted: stop the command (a
		// forwarded signal may already be doing so), kill it if it lingers.
		if fwd.signal() == nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
		}
		t := time.NewTimer(killGrace)
		select {
		case waitErr = <-done:
			t.Stop()
		case <-t.C:
			_ = cmd.Process.Kill()
			waitErr = <-done
		}
	}
	fwd.attach(nil)
	if waitErr != nil {
		var exitErr *exec.ExitError
		if !errors.As(waitErr, &exitErr) {
			return "", waitErr
		}
		code := exitErr.ExitCode()
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
		return "", &commandError{code: code}
	}
	if ctx.Err() != nil {
		// It exited 0 after being told to stop: do not trust its output.
		return "", context.Cause(ctx)
	}
	data, err := os.ReadFile(uriFile)
	if err != nil {
		return "", err
	}
	uri := strings.TrimSpace(string(data))
	if strings.ContainsAny(uri, "\r\n") {
		return "", fmt.Errorf("$%s must hold one URI, got %d lines", envOutputURIFile, strings.Count(uri, "\n")+1)
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

func signalNumber(s os.Signal) int {
	if n, ok := s.(syscall.Signal); ok {
		return int(n)
	}
	return 1
}
