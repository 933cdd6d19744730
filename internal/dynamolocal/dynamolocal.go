// Package dynamolocal starts and stops Amazon's DynamoDB Local, the engine
// the local server and the tests run against.
package dynamolocal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DirEnv names the directory holding DynamoDBLocal.jar. When unset, Locate
// runs scripts/dynamodb-local.sh from the repository, which installs the
// pinned version into the user's cache and prints that directory.
const DirEnv = "STAMPEDE_DYNAMODB_LOCAL_DIR"

// Options configure an instance.
type Options struct {
	// Dir holds DynamoDBLocal.jar and DynamoDBLocal_lib.
	Dir string
	// DataDir persists the data; empty means in memory.
	DataDir string
	// Port to listen on (loopback); 0 picks a free one.
	Port int
	// Log receives DynamoDB Local's output; nil discards it.
	Log *os.File
}

// Instance is a running DynamoDB Local.
type Instance struct {
	// Endpoint is the base URL, e.g. http://127.0.0.1:8000.
	Endpoint string

	cmd      *exec.Cmd
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

// Start launches DynamoDB Local and waits until it answers.
func Start(ctx context.Context, opts Options) (*Instance, error) {
	if _, err := exec.LookPath("java"); err != nil {
		return nil, errors.New("java not found: DynamoDB Local needs Java 17 or later")
	}
	port := opts.Port
	if port == 0 {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		port = p
	}
	args := []string{
		"-Djava.library.path=" + filepath.Join(opts.Dir, "DynamoDBLocal_lib"),
		"-Xms64m",
		"-jar", filepath.Join(opts.Dir, "DynamoDBLocal.jar"),
		"-port", strconv.Itoa(port),
		// One database whatever the credentials and region of the caller.
		"-sharedDb",
	}
	if opts.DataDir != "" {
		if err := os.MkdirAll(opts.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("create data dir: %w", err)
		}
		abs, err := filepath.Abs(opts.DataDir)
		if err != nil {
			return nil, err
		}
		args = append(args, "-dbPath", abs)
	} else {
		args = append(args, "-inMemory")
	}
	cmd := exec.Command("java", args...)
	cmd.Dir = opts.Dir
	cmd.Stdout, cmd.Stderr = opts.Log, opts.Log
	// Its own process group: a Ctrl-C on the terminal reaches the server,
	// which then stops DynamoDB Local in order.
	cmd.SysProcAttr = detachedProcess()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start DynamoDB Local: %w", err)
	}
	inst := &Instance{
		Endpoint: "http://127.0.0.1:" + strconv.Itoa(port),
		cmd:      cmd,
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

// waitReady polls the endpoint until DynamoDB Local answers HTTP.
func (i *Instance) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, i.Endpoint, nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-i.done:
			return fmt.Errorf("DynamoDB Local exited during start-up: %v", i.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("DynamoDB Local did not answer at %s: %w", i.Endpoint, ctx.Err())
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

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
