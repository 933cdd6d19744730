package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stampede-cache/stampede/internal/testenv"
)

// TestServeLifecycle runs the real binary: it starts DynamoDB Local, serves
// the API, stops both on SIGTERM, and keeps data across a restart.
func TestServeLifecycle(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "stampede")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	dataDir := t.TempDir()

	base, health, stop := startServer(t, bin, dataDir, nil)
	put := request(t, "PUT", base+"/v1/projects/ml/domains/dev/cache/models%2Fresnet", `{"output_uri":"s3://bucket/resnet"}`)
	if put.StatusCode != 201 {
		t.Fatalf("put: %d", put.StatusCode)
	}
	if code := stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d", code)
	}
	// DynamoDB Local went down with the server.
	if resp, err := http.Get(health["dynamodb_endpoint"].(string)); err == nil {
		resp.Body.Close()
		t.Fatalf("DynamoDB Local still answers at %s", health["dynamodb_endpoint"])
	}

	base, _, stop = startServer(t, bin, dataDir, nil)
	get := request(t, "GET", base+"/v1/projects/ml/domains/dev/cache/models/resnet", "")
	body, _ := io.ReadAll(get.Body)
	if get.StatusCode != 200 || !strings.Contains(string(body), `"output_uri":"s3://bucket/resnet"`) {
		t.Fatalf("after restart: %d %s", get.StatusCode, body)
	}
	if code := stop(syscall.SIGINT); code != 0 {
		t.Fatalf("exit code after SIGINT = %d", code)
	}
}

// TestServeAgainstARunningDynamoDB: with STAMPEDE_DYNAMODB_ENDPOINT the
// server uses that engine (as it would LocalStack) and leaves it running.
func TestServeAgainstARunningDynamoDB(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "stampede")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	endpoint := testenv.Endpoint(t)
	table := fmt.Sprintf("serve-external-%d", time.Now().UnixNano())
	base, health, stop := startServer(t, bin, t.TempDir(), []string{"STAMPEDE_DYNAMODB_ENDPOINT=" + endpoint, "STAMPEDE_TABLE=" + table})
	if health["dynamodb_endpoint"] != endpoint || health["table"] != table {
		t.Fatalf("healthz: %v", health)
	}
	if put := request(t, "PUT", base+"/v1/projects/ml/domains/dev/cache/k", `{"output_uri":"s3://bucket/k"}`); put.StatusCode != 201 {
		t.Fatalf("put: %d", put.StatusCode)
	}
	if code := stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	resp, err := http.Get(endpoint)
	if err != nil {
		t.Fatalf("the external DynamoDB was stopped: %v", err)
	}
	resp.Body.Close()
}

func startServer(t *testing.T, bin, dataDir string, env []string) (string, map[string]any, func(os.Signal) int) {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir, "--ready-file", ready)
	cmd.Env = append(append(os.Environ(), "STAMPEDE_DYNAMODB_ENDPOINT=", "AWS_ENDPOINT_URL_DYNAMODB="), env...)
	logs := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	deadline := time.Now().Add(90 * time.Second)
	var addr []byte
	for {
		var err error
		if addr, err = os.ReadFile(ready); err == nil && len(addr) > 0 {
			break
		}
		select {
		case <-done:
			t.Fatalf("server exited early:\n%s", logs)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready:\n%s", logs)
		}
	}
	base := "http://" + string(addr)
	resp := request(t, "GET", base+"/healthz", "")
	var health map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&health); err != nil || resp.StatusCode != 200 || health["status"] != "ok" || health["s3_endpoint"] == "" {
		t.Fatalf("healthz: %d %v %v", resp.StatusCode, health, err)
	}
	stop := func(sig os.Signal) int {
		_ = cmd.Process.Signal(sig)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("server did not stop on %v:\n%s", sig, logs)
		}
		if !strings.Contains(logs.String(), "shutting down") {
			t.Errorf("no orderly shutdown in logs:\n%s", logs)
		}
		return cmd.ProcessState.ExitCode()
	}
	return base, health, stop
}

func request(t *testing.T, method, url, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}
