package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stampede-cache/stampede/client"
)

// stampedeCmd returns the stampede command line, run by this test binary
// (see TestMain), against the API at url.
func stampedeCmd(ctx context.Context, url string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), envRunMain+"=1", envEndpoint+"="+url, envProject+"=proj", envDomain+"=dev")
	return cmd
}

// lineWatcher copies a process's stderr and reports, once, the first line
// containing a pattern.
type lineWatcher struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	done chan struct{}
}

// watchLines reads r; the first line containing pattern is sent on match
// (which must have room for it).
func watchLines(r io.Reader, pattern string, match chan<- string) *lineWatcher {
	w := &lineWatcher{done: make(chan struct{})}
	go func() {
		defer close(w.done)
		sc := bufio.NewScanner(r)
		matched := false
		for sc.Scan() {
			line := sc.Text()
			w.mu.Lock()
			w.buf.WriteString(line + "\n")
			w.mu.Unlock()
			if !matched && strings.Contains(line, pattern) {
				matched = true
				match <- line
			}
		}
	}()
	return w
}

// await waits for n matches.
func await(ctx context.Context, t *testing.T, match <-chan string, n int, what string, w ...*lineWatcher) {
	t.Helper()
	for i := range n {
		select {
		case <-match:
		case <-ctx.Done():
			var out []string
			for _, x := range w {
				out = append(out, x.String())
			}
			t.Fatalf("%s: %d of %d seen:\n%s", what, i, n, strings.Join(out, "\n"))
		}
	}
}

func (w *lineWatcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestRunManyProcessesRunOnce: `stampede run` from several processes at
// once runs the command once; every process prints the same entry.
func TestRunManyProcessesRunOnce(t *testing.T) {
	t.Parallel()
	const procs = 4
	url := startAPI(t, nil)
	dir := t.TempDir()
	count, gate := filepath.Join(dir, "count"), filepath.Join(dir, "gate")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The command records that it ran, then holds the reservation until
	// the test opens the gate: by then every other process is waiting.
	script := `echo ran >> "$COUNT"; while [ ! -e "$GATE" ]; do sleep 0.05; done; echo s3://bucket/shared > "$STAMPEDE_OUTPUT_URI_FILE"`
	stdouts := make([]bytes.Buffer, procs)
	watchers := make([]*lineWatcher, procs)
	waiting := make(chan string, procs)
	cmds := make([]*exec.Cmd, procs)
	for i := range procs {
		cmd := stampedeCmd(ctx, url, "run", "--key", "shared/job", "--heartbeat", "1s", "--", "sh", "-c", script)
		cmd.Env = append(cmd.Env, "COUNT="+count, "GATE="+gate)
		cmd.Stdout = &stdouts[i]
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i], watchers[i] = cmd, watchLines(stderr, "stampede run: waiting for", waiting)
	}
	await(ctx, t, waiting, procs-1, "processes waiting", watchers...)
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for i, cmd := range cmds {
		<-watchers[i].done
		if err := cmd.Wait(); err != nil {
			t.Fatalf("process %d: %v\n%s", i, err, watchers[i])
		}
	}
	ran, err := os.ReadFile(count)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(ran), "ran"); n != 1 {
		t.Fatalf("the command ran %d times, want once", n)
	}
	for i := range procs {
		if stdouts[i].String() != stdouts[0].String() || !strings.Contains(stdouts[i].String(), "s3://bucket/shared") {
			t.Fatalf("process %d printed\n%s\nprocess 0\n%s", i, stdouts[i].String(), stdouts[0].String())
		}
	}
}

// TestRunTakesOverFromKilledHolder: a `stampede run` killed mid-command
// (SIGKILL: no release) is taken over once its reservation expires.
func TestRunTakesOverFromKilledHolder(t *testing.T) {
	t.Parallel()
	url := startAPI(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	holder := stampedeCmd(ctx, url, "run", "--key", "killed/job", "--owner", "doomed", "--heartbeat", "1s", "--", "sh", "-c", "sleep 60")
	// Its own process group, so its command can be killed too.
	holder.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := holder.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	running := make(chan string, 1)
	w := watchLines(stderr, "running the command", running)
	await(ctx, t, running, 1, "the holder running its command", w)
	// Kill the run alone first: were its command to die first, the run
	// would notice and release, which is not what this test is about.
	if err := holder.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = holder.Wait()
	<-w.done
	if strings.Contains(w.String(), "released") {
		t.Fatalf("the killed run released its reservation:\n%s", w)
	}
	_ = syscall.Kill(-holder.Process.Pid, syscall.SIGKILL) // its orphaned command

	var out, errOut bytes.Buffer
	next := stampedeCmd(ctx, url, "run", "--key", "killed/job", "--owner", "heir", "--heartbeat", "1s", "--",
		"sh", "-c", `echo s3://bucket/heir > "$STAMPEDE_OUTPUT_URI_FILE"`)
	next.Stdout, next.Stderr = &out, &errOut
	if err := next.Run(); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	for _, want := range []string{`waiting for "killed/job": held by doomed`, `took over "killed/job" from doomed`, `stored "killed/job"`} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut.String())
		}
	}
	if !strings.Contains(out.String(), "s3://bucket/heir") {
		t.Errorf("stdout:\n%s", out.String())
	}
}

// TestRunForwardsSignals: SIGTERM to `stampede run` reaches the command;
// the run exits with the command's code and releases the reservation.
func TestRunForwardsSignals(t *testing.T) {
	t.Parallel()
	url := startAPI(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	run := stampedeCmd(ctx, url, "run", "--key", "signalled", "--owner", "w", "--",
		"sh", "-c", `trap 'echo got TERM >&2; exit 42' TERM; echo ready >&2; while :; do sleep 0.05; done`)
	stderr, err := run.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	w := watchLines(stderr, "ready", ready)
	await(ctx, t, ready, 1, "the command starting", w)
	if err := run.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-w.done
	err = run.Wait()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 42 {
		t.Fatalf("exit: %v, want code 42\n%s", err, w)
	}
	if !strings.Contains(w.String(), "got TERM") || !strings.Contains(w.String(), "exited with code 42; released the reservation") {
		t.Fatalf("stderr:\n%s", w)
	}
	c, err := client.New(url)
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Reserve(ctx, client.Scope{Project: "proj", Domain: "dev"}, "signalled", client.ReserveRequest{OwnerID: "next"})
	if err != nil || !r.Acquired {
		t.Fatalf("the reservation was not released: %+v, %v", r, err)
	}
}

// TestRunInterruptedWhileWaiting: SIGINT to a waiting `stampede run` makes
// it exit 130 without running anything.
func TestRunInterruptedWhileWaiting(t *testing.T) {
	t.Parallel()
	url := startAPI(t, nil)
	gate := filepath.Join(t.TempDir(), "gate")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	holder := stampedeCmd(ctx, url, "run", "--key", "busy", "--output-uri", "s3://bucket/busy", "--",
		"sh", "-c", `while [ ! -e "$GATE" ]; do sleep 0.05; done`)
	holder.Env = append(holder.Env, "GATE="+gate)
	hErr, err := holder.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	running := make(chan string, 1)
	hw := watchLines(hErr, "running the command", running)
	await(ctx, t, running, 1, "the holder running its command", hw)

	waiter := stampedeCmd(ctx, url, "run", "--key", "busy", "--", "sh", "-c", "echo must not run")
	wErr, err := waiter.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var wOut bytes.Buffer
	waiter.Stdout = &wOut
	if err := waiter.Start(); err != nil {
		t.Fatal(err)
	}
	waiting := make(chan string, 1)
	ww := watchLines(wErr, "waiting for", waiting)
	await(ctx, t, waiting, 1, "the second run waiting", ww)
	if err := waiter.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	<-ww.done
	err = waiter.Wait()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 130 || wOut.Len() != 0 {
		t.Fatalf("waiter: %v (want exit 130), stdout %q\n%s", err, wOut.String(), ww)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	<-hw.done
	if err := holder.Wait(); err != nil {
		t.Fatalf("holder: %v\n%s", err, hw)
	}
}
