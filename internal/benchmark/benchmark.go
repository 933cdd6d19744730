// Package benchmark measures Stampede end to end on one machine and writes
// the figures up: the server path against the raw DynamoDB request it
// makes, herds of GetOrCompute callers on one key, strong gets at fixed
// request rates, many readers of one hot key (coalesced strong reads), and
// the Lambda functions' start-up against its floor. It
// starts (and stops) everything it measures: DynamoDB Local, the
// in-process S3, the server on loopback, the function binaries.
// cmd/stampede-bench is its command; docs/performance.md its output.
package benchmark

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// Options select the sections and size them. A nil section is skipped.
type Options struct {
	ServerPath *ServerPathOptions
	Herd       *HerdOptions
	Rate       *RateOptions
	HotKey     *HotKeyOptions
	Lambda     *LambdaOptions
	// DynamoDBEndpoint, when set, is a running DynamoDB to use instead of
	// starting DynamoDB Local.
	DynamoDBEndpoint string
	// Logf reports progress; nil is silent.
	Logf func(format string, args ...any)
}

// Defaults returns the full-size options of `make bench-e2e`.
func Defaults(repoDir string) Options {
	return Options{
		ServerPath: &ServerPathOptions{Concurrency: []int{1, 16}, OpsSerial: 400, OpsParallel: 2400, Rounds: 4, Warmup: 400},
		Herd: &HerdOptions{
			Sizes:        []int{10, 50, 200},
			Computations: []time.Duration{500 * time.Millisecond, 5 * time.Second},
			Extra:        []HerdCell{{N: 200, Compute: time.Minute}},
			LongPolling:  true,
			Timeout:      90 * time.Second,
		},
		Rate: &RateOptions{
			Rates:       []int{250, 500, 1000, 2000},
			Duration:    8 * time.Second,
			Warmup:      time.Second,
			HotKeys:     4,
			WriteEvery:  100 * time.Millisecond,
			MaxInFlight: 512,
		},
		HotKey: &HotKeyOptions{
			Readers:    []int{1, 4, 16, 64},
			Duration:   5 * time.Second,
			WriteEvery: 200 * time.Millisecond,
			LoneReads:  300,
			Rounds:     5,
			Warmup:     2 * time.Second,
		},
		Lambda: &LambdaOptions{RepoDir: repoDir, Runs: 15, SystemRoots: true},
	}
}

// Host describes the machine and the code measured.
type Host struct {
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model,omitempty"`
	// LoadBefore and LoadAfter are /proc/loadavg's 1, 5 and 15 minute
	// load averages when the run started and ended: the machine is shared.
	LoadBefore string `json:"load_before"`
	LoadAfter  string `json:"load_after"`
	Commit     string `json:"commit,omitempty"`
}

// Report is everything one run measured.
type Report struct {
	Started    time.Time         `json:"started"`
	Duration   time.Duration     `json:"duration_ns"`
	Host       Host              `json:"host"`
	ServerPath *ServerPathResult `json:"server_path,omitempty"`
	Herds      []HerdResult      `json:"herds,omitempty"`
	Rates      []RateResult      `json:"rates,omitempty"`
	HotKey     *HotKeyResult     `json:"hot_key,omitempty"`
	Lambda     *LambdaResult     `json:"lambda,omitempty"`
}

// bench is one run's state.
type bench struct {
	svc      *service
	workDir  string
	logf     func(string, ...any)
	run      int
	prepared map[string]bool
}

// Run measures the selected sections, in order, and stops everything it
// started before it returns. A failed section ends the run with the
// figures measured so far.
func Run(ctx context.Context, o Options) (*Report, error) {
	rep := &Report{Started: time.Now().UTC(), Host: host(ctx, repoDirOf(o))}
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	workDir, err := os.MkdirTemp("", "stampede-bench-")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(workDir)
	b := &bench{workDir: workDir, logf: logf, prepared: map[string]bool{}}
	defer func() {
		rep.Duration = time.Since(rep.Started)
		rep.Host.LoadAfter = loadAverage()
	}()

	if o.ServerPath != nil || o.Herd != nil || o.Rate != nil || o.HotKey != nil {
		svc, err := startService(ctx, o.DynamoDBEndpoint, workDir, logf)
		if err != nil {
			return rep, err
		}
		defer svc.close()
		b.svc = svc
	}
	if o.ServerPath != nil {
		r, err := b.runServerPath(ctx, *o.ServerPath)
		rep.ServerPath = &r
		if err != nil {
			return rep, fmt.Errorf("server path: %w", err)
		}
	}
	if o.Herd != nil {
		r, err := b.runHerds(ctx, *o.Herd)
		rep.Herds = r
		if err != nil {
			return rep, fmt.Errorf("herd: %w", err)
		}
	}
	if o.Rate != nil {
		r, err := b.runRates(ctx, *o.Rate)
		rep.Rates = r
		if err != nil {
			return rep, fmt.Errorf("fixed rate: %w", err)
		}
	}
	if o.HotKey != nil {
		r, err := b.runHotKey(ctx, *o.HotKey)
		rep.HotKey = &r
		if err != nil {
			return rep, fmt.Errorf("hot key: %w", err)
		}
	}
	if o.Lambda != nil {
		r, err := b.runLambdaInit(ctx, *o.Lambda)
		rep.Lambda = &r
		if err != nil {
			return rep, fmt.Errorf("lambda init: %w", err)
		}
	}
	return rep, nil
}

func repoDirOf(o Options) string {
	if o.Lambda != nil {
		return o.Lambda.RepoDir
	}
	return ""
}

func host(ctx context.Context, repo string) Host {
	h := Host{
		GoVersion:  runtime.Version(),
		OS:         runtime.GOOS,
		Arch:       runtime.GOARCH,
		CPUs:       runtime.NumCPU(),
		CPUModel:   cpuModel(),
		LoadBefore: loadAverage(),
	}
	cmd := exec.CommandContext(ctx, "git", "log", "-1", "--format=%h %s")
	cmd.Dir = repo
	if out, err := cmd.Output(); err == nil {
		h.Commit = strings.TrimSpace(string(out))
	}
	return h
}

// loadAverage reads the 1, 5 and 15 minute load averages.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
