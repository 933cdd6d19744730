// Package lambdaharness runs a Lambda function's real binary the way
// Lambda's provided.al2023 runtime does: it serves the Lambda Runtime API
// on loopback, starts the binary against it with the environment Lambda
// gives a function, and hands it events one at a time. The function tests
// (functions/) and the memory probe (internal/memprobe) run on it.
package lambdaharness

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Options configure a function process.
type Options struct {
	// Name is the function's name (AWS_LAMBDA_FUNCTION_NAME); default
	// "function".
	Name string
	// Env is added to the environment Lambda sets, overriding it. Nothing
	// else of this process's environment is passed on but PATH.
	Env []string
	// Deadline is each invocation's time limit, which the function reads
	// from Lambda-Runtime-Deadline-Ms; default 30s.
	Deadline time.Duration
}

// Reply is what the function answered to one event.
type Reply struct {
	// Error is true when the function reported a failure (the runtime's
	// /error endpoint) rather than a response.
	Error bool
	// Body is the response, or the error document {errorType, errorMessage}.
	Body []byte
	// Latency runs from handing the event over to receiving the answer.
	Latency time.Duration
}

// Function is a running function process.
type Function struct {
	// Logs is everything the process wrote to stdout and stderr.
	Logs *Output

	started time.Time
	cmd     *exec.Cmd
	srv     *http.Server
	api     *runtimeAPI

	exited  chan struct{}
	exitErr error
	stop    sync.Once
}

// Start serves the Runtime API and starts the binary bin against it.
func Start(bin string, opts Options) (*Function, error) {
	if opts.Name == "" {
		opts.Name = "function"
	}
	if opts.Deadline <= 0 {
		opts.Deadline = 30 * time.Second
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("serve the runtime API: %w", err)
	}
	api := newRuntimeAPI(opts)
	f := &Function{
		Logs:   &Output{},
		api:    api,
		srv:    &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second},
		exited: make(chan struct{}),
	}
	go func() { _ = f.srv.Serve(ln) }()

	f.cmd = exec.Command(bin)
	f.cmd.Env = append(environment(opts.Name, ln.Addr().String()), opts.Env...)
	f.cmd.Stdout, f.cmd.Stderr = f.Logs, f.Logs
	f.started = time.Now()
	if err := f.cmd.Start(); err != nil {
		_ = f.srv.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		f.exitErr = f.cmd.Wait()
		close(f.exited)
	}()
	return f, nil
}

// environment is what Lambda sets for a function on provided.al2023 with
// JSON logs (as the stack configures them), and PATH.
func environment(name, runtimeAPI string) []string {
	return []string{
		"AWS_LAMBDA_RUNTIME_API=" + runtimeAPI,
		"AWS_LAMBDA_FUNCTION_NAME=" + name,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128",
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_LOG_FORMAT=JSON",
		"AWS_LAMBDA_LOG_LEVEL=INFO",
		"AWS_REGION=us-east-1",
		"AWS_DEFAULT_REGION=us-east-1",
		"_HANDLER=bootstrap",
		"LAMBDA_TASK_ROOT=/var/task",
		"TZ=:UTC",
		"PATH=/usr/local/bin:/usr/bin:/bin",
	}
}

// Pid is the function process's id.
func (f *Function) Pid() int { return f.cmd.Process.Pid }

// WaitInit waits until the function asks for its first event, its init
// done, and returns how long init took from the process's start.
func (f *Function) WaitInit(ctx context.Context) (time.Duration, error) {
	select {
	case <-f.api.firstNext:
		return f.api.firstNextAt.Sub(f.started), nil
	case <-f.api.initFailed:
		return 0, fmt.Errorf("init failed: %s\n%s", f.api.initError, f.Logs.Tail())
	case <-f.exited:
		return 0, fmt.Errorf("exited during init: %v\n%s", f.exitErr, f.Logs.Tail())
	case <-ctx.Done():
		return 0, fmt.Errorf("no request for an event: %w\n%s", context.Cause(ctx), f.Logs.Tail())
	}
}

// Invoke hands the function one event and waits for its answer.
func (f *Function) Invoke(ctx context.Context, event []byte) (Reply, error) {
	inv := invocation{event: event, reply: make(chan Reply, 1)}
	select {
	case f.api.queue <- inv:
	case <-f.exited:
		return Reply{}, fmt.Errorf("exited: %v\n%s", f.exitErr, f.Logs.Tail())
	case <-ctx.Done():
		return Reply{}, fmt.Errorf("the function never asked for the event: %w\n%s", context.Cause(ctx), f.Logs.Tail())
	}
	select {
	case r := <-inv.reply:
		return r, nil
	case <-f.exited:
		return Reply{}, fmt.Errorf("exited: %v\n%s", f.exitErr, f.Logs.Tail())
	case <-ctx.Done():
		return Reply{}, fmt.Errorf("the function never answered: %w\n%s", context.Cause(ctx), f.Logs.Tail())
	}
}

// Stop kills the process, waits for it and stops serving the Runtime API.
func (f *Function) Stop() {
	f.stop.Do(func() {
		_ = f.cmd.Process.Kill()
		<-f.exited
		_ = f.srv.Close()
	})
}

// Output collects a process's output while others read it.
type Output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

// String returns everything written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// Lines returns the complete lines written so far.
func (o *Output) Lines() []string {
	s := o.String()
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return strings.Split(s[:i], "\n")
	}
	return nil
}

// WaitFor polls until done holds for everything written so far, or ctx
// ends. The function's output reaches Output through a pipe, after the
// answer it wrote it before may have: wait for a line, never assume it.
func (o *Output) WaitFor(ctx context.Context, done func(string) bool) error {
	for {
		if done(o.String()) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the function's output: %w\n%s", context.Cause(ctx), o.Tail())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Tail returns the last 2,000 bytes written, for error messages.
func (o *Output) Tail() string {
	s := o.String()
	if len(s) > 2000 {
		return "…" + s[len(s)-2000:]
	}
	return s
}
