// Package dynamolocal starts and stops Amazon's DynamoDB Local, the engine
// the local server and the tests run against.
//
// DynamoDB Local cannot listen on a port the kernel picks (it refuses port
// 0), so Start picks one itself and makes the choice safe: it takes ports
// below the kernel's ephemeral range (where outgoing connections do not
// land), checks that the port is free, and if another process takes it
// first, DynamoDB Local fails to bind and exits, and Start tries another.
// It declares the instance ready only once the instance's own process
// listens on the port (checked in /proc on Linux), never because some
// other server answered there.
package dynamolocal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Environment variables.
const (
	// DirEnv names the directory holding DynamoDBLocal.jar. When unset,
	// Locate runs scripts/dynamodb-local.sh from the repository, which
	// installs the pinned version into the user's cache and prints that
	// directory.
	DirEnv = "STAMPEDE_DYNAMODB_LOCAL_DIR"
	// EndpointEnv hands a running instance to test processes: when set,
	// internal/testenv uses that instance instead of starting its own.
	// internal/dynamolocal/cmd/withdynamodb sets it for the command it runs.
	EndpointEnv = "STAMPEDE_TEST_DYNAMODB_ENDPOINT"
	// StartTimeoutEnv overrides DefaultStartTimeout (a Go duration, e.g.
	// 300s).
	StartTimeoutEnv = "STAMPEDE_DYNAMODB_LOCAL_START_TIMEOUT"
	// FastStartEnv, set to 1, makes every start a FastStart: `make test`
	// sets it, for the instances that programs under test start too.
	FastStartEnv = "STAMPEDE_DYNAMODB_LOCAL_FAST_START"
)

// DefaultStartTimeout bounds a start: generous, because a JVM starting on a
// loaded two-core machine can take tens of seconds.
const DefaultStartTimeout = 180 * time.Second

// maxStarts bounds the ports tried when the port is Start's to pick.
const maxStarts = 5

// Options configure an instance.
type Options struct {
	// Dir holds DynamoDBLocal.jar and DynamoDBLocal_lib.
	Dir string
	// DataDir persists the data; empty means in memory.
	DataDir string
	// Port to listen on; 0 lets Start pick a free one (and pick again if
	// another process takes it first).
	Port int
	// Log receives DynamoDB Local's output; nil discards it.
	Log io.Writer
	// StartTimeout bounds the start, every port tried included; zero
	// means $STAMPEDE_DYNAMODB_LOCAL_START_TIMEOUT or DefaultStartTimeout.
	StartTimeout time.Duration
	// FastStart trades peak throughput for a start two to four times
	// quicker on a busy machine (the JVM's quick compiler only, and its
	// serial collector): for short-lived instances such as the tests'.
	// $STAMPEDE_DYNAMODB_LOCAL_FAST_START=1 turns it on too.
	FastStart bool
}

// Instance is a running DynamoDB Local.
type Instance struct {
	// Endpoint is the base URL, e.g. http://127.0.0.1:8000.
	Endpoint string

	port     int
	cmd      *exec.Cmd
	output   *tail
	done     chan struct{}
	waitErr  error
	stopOnce sync.Once
}

// Locate returns the DynamoDB Local directory: $STAMPEDE_DYNAMODB_LOCAL_DIR,
// or the one scripts/dynamodb-local.sh installs (found by walking up from
// the working directory to the repository root).
func Locate(ctx context.Context) (string, error) {
	if dir := os.Getenv(DirEnv); dir != "" {
		return dir, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		script := filepath.Join(dir, "scripts", "dynamodb-local.sh")
		if _, err := os.Stat(script); err == nil {
			var stderr bytes.Buffer
			cmd := exec.CommandContext(ctx, "bash", script)
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				return "", fmt.Errorf("install DynamoDB Local: %w: %s", err, stderr.String())
			}
			return strings.TrimSpace(string(out)), nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("DynamoDB Local not found: set %s or run `make dynamodb-local`", DirEnv)
		}
	}
}

// StartTimeout returns the start-up budget: d if positive, else
// $STAMPEDE_DYNAMODB_LOCAL_START_TIMEOUT, else DefaultStartTimeout.
func StartTimeout(d time.Duration) (time.Duration, error) {
	if d > 0 {
		return d, nil
	}
	v := os.Getenv(StartTimeoutEnv)
	if v == "" {
		return DefaultStartTimeout, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s: want a positive duration such as 300s, got %q", StartTimeoutEnv, v)
	}
	return d, nil
}

// errPortTaken: DynamoDB Local could not bind its port.
var errPortTaken = errors.New("port taken")

// Start launches DynamoDB Local and waits until it answers on its port.
func Start(ctx context.Context, opts Options) (*Instance, error) {
	return startPicking(ctx, opts, candidatePort)
}

// startPicking is Start with the ports tried given by pick.
func startPicking(ctx context.Context, opts Options, pick func() (int, error)) (*Instance, error) {
	if _, err := exec.LookPath("java"); err != nil {
		return nil, errors.New("java not found: DynamoDB Local needs Java 17 or later")
	}
	budget, err := StartTimeout(opts.StartTimeout)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	if opts.Port != 0 {
		return start(ctx, opts, opts.Port)
	}
	var errs []error
	for range maxStarts {
		port, err := pick()
		if err != nil {
			return nil, err
		}
		inst, err := start(ctx, opts, port)
		if !errors.Is(err, errPortTaken) {
			return inst, err
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("start DynamoDB Local: no free port after %d tries: %w", maxStarts, errors.Join(errs...))
}

// start launches DynamoDB Local on port and waits until it is ready.
func start(ctx context.Context, opts Options, port int) (*Instance, error) {
	if opts.DataDir != "" {
		if err := os.MkdirAll(opts.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("create data dir: %w", err)
		}
		abs, err := filepath.Abs(opts.DataDir)
		if err != nil {
			return nil, err
		}
		opts.DataDir = abs
	}
	args := javaArgs(opts, port)
	output := &tail{max: 16 << 10}
	var out io.Writer = output
	if opts.Log != nil {
		out = io.MultiWriter(output, opts.Log)
	}
	cmd := exec.Command("java", args...)
	cmd.Dir = opts.Dir
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group: a Ctrl-C on the terminal reaches the server,
	// which then stops DynamoDB Local in order.
	cmd.SysProcAttr = detachedProcess()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start DynamoDB Local: %w", err)
	}
	inst := &Instance{
		Endpoint: "http://127.0.0.1:" + strconv.Itoa(port),
		port:     port,
		cmd:      cmd,
		output:   output,
		done:     make(chan struct{}),
	}
	go func() {
		inst.waitErr = cmd.Wait()
		close(inst.done)
	}()
	if err := inst.waitReady(ctx); err != nil {
		inst.Stop()
		return nil, err
	}
	return inst, nil
}

// javaArgs is DynamoDB Local's command line (DataDir absolute).
func javaArgs(opts Options, port int) []string {
	var args []string
	if opts.FastStart || os.Getenv(FastStartEnv) == "1" {
		args = append(args, "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")
	}
	args = append(args,
		"-Djava.library.path="+filepath.Join(opts.Dir, "DynamoDBLocal_lib"),
		"-Xms64m",
		"-jar", filepath.Join(opts.Dir, "DynamoDBLocal.jar"),
		"-port", strconv.Itoa(port),
		// One database whatever the credentials and region of the caller.
		"-sharedDb",
	)
	if opts.DataDir != "" {
		return append(args, "-dbPath", opts.DataDir)
	}
	return append(args, "-inMemory")
}

// waitReady polls until the endpoint answers HTTP and this instance's
// process is the one listening there.
func (i *Instance) waitReady(ctx context.Context) error {
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, i.Endpoint, nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if mine, err := listens(i.cmd.Process.Pid, i.port); err != nil || mine {
				return err
			}
		}
		// A failed bind does not end the JVM (other threads live on): its
		// message does.
		if out := i.output.String(); strings.Contains(out, "Address already in use") || strings.Contains(out, "Failed to bind") {
			return fmt.Errorf("DynamoDB Local on port %d: %w", i.port, errPortTaken)
		}
		select {
		case <-i.done:
			return fmt.Errorf("DynamoDB Local exited during start-up: %v\n%s", i.waitErr, i.output.String())
		case <-ctx.Done():
			return fmt.Errorf("DynamoDB Local did not answer at %s (set %s for a longer start-up budget): %w",
				i.Endpoint, StartTimeoutEnv, context.Cause(ctx))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop terminates the instance and waits for it to exit.
func (i *Instance) Stop() {
	i.stopOnce.Do(func() {
		terminate(i.cmd.Process)
		select {
		case <-i.done:
		case <-time.After(10 * time.Second):
			_ = i.cmd.Process.Kill()
			<-i.done
		}
	})
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
