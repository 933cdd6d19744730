// Command stampede-bench measures Stampede end to end on this machine and
// writes docs/performance.md, its charts and the raw figures (make
// bench-e2e). It starts its own DynamoDB Local, in-process S3 and server,
// builds and starts the Lambda function binaries, and stops everything
// before it exits. See internal/benchmark.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/stampede-cache/stampede/internal/benchmark"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// flags are the command's settings.
type flags struct {
	sections   string
	out        string
	charts     string
	results    string
	before     string
	endpoint   string
	timeout    time.Duration
	quiet      bool
	ops        int
	ops16      int
	clients    string
	rounds     int
	warmup     int
	operations string
	herdSizes  string
	herdComp   string
	herdLong   time.Duration
	herdLongN  int
	longPoll   bool
	rates      string
	rateDur    time.Duration
	rateWarmup time.Duration
	inFlight   int
	hotReaders string
	hotDur     time.Duration
	hotWrite   time.Duration
	hotLone    int
	hotRounds  int
	hotWarmup  time.Duration
	lambdaRuns int
	functions  string
	render     string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	repo, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(stderr, "stampede-bench:", err)
		return 1
	}
	def := benchmark.Defaults(repo)
	var f flags
	fs := flag.NewFlagSet("stampede-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.sections, "sections", "server,herd,rate,hotkey,lambda", "sections to run, comma-separated: server, herd, rate, hotkey, lambda")
	fs.StringVar(&f.out, "out", filepath.Join(repo, "docs", "performance.md"), "the Markdown report to write (\"-\": standard output only)")
	fs.StringVar(&f.charts, "charts", filepath.Join(repo, "docs", "performance"), "directory for the charts (\"\": none)")
	fs.StringVar(&f.results, "results", filepath.Join(repo, "docs", "performance", "results.json"), "file for the raw figures (\"\": none)")
	fs.StringVar(&f.before, "before", filepath.Join(repo, "docs", "performance", "before.json"), "an earlier results file shown as \"before\" when it exists (\"\": none)")
	fs.StringVar(&f.endpoint, "dynamodb-endpoint", "", "use this running DynamoDB instead of starting DynamoDB Local")
	fs.DurationVar(&f.timeout, "timeout", 20*time.Minute, "bound on the whole run")
	fs.BoolVar(&f.quiet, "quiet", false, "no progress lines")
	fs.IntVar(&f.ops, "ops", def.ServerPath.OpsSerial, "server: operations per path and operation at one client")
	fs.IntVar(&f.ops16, "ops-parallel", def.ServerPath.OpsParallel, "server: operations per path and operation at each higher concurrency")
	fs.StringVar(&f.clients, "clients", joinInts(def.ServerPath.Concurrency), "server: concurrencies")
	fs.IntVar(&f.rounds, "rounds", def.ServerPath.Rounds, "server: rounds alternating the paths")
	fs.StringVar(&f.operations, "operations", "", "server: only these operations, comma-separated (e.g. \"get hit,put new\")")
	fs.IntVar(&f.warmup, "warmup", def.ServerPath.Warmup, "server: untimed operations of each kind per path before measuring")
	fs.StringVar(&f.herdSizes, "herd-sizes", joinInts(def.Herd.Sizes), "herd: numbers of callers")
	fs.StringVar(&f.herdComp, "herd-compute", joinDurations(def.Herd.Computations), "herd: computation lengths")
	fs.DurationVar(&f.herdLong, "herd-long", def.Herd.Extra[0].Compute, "herd: one more herd with this long a computation (0: none)")
	fs.IntVar(&f.herdLongN, "herd-long-n", def.Herd.Extra[0].N, "herd: its number of callers")
	fs.BoolVar(&f.longPoll, "herd-long-polling", def.Herd.LongPolling, "herd: run each herd both against the server as it is (its waits shared: the client long-polls) and with its Stampede-Waits header hidden (the client polls, as behind Lambda); false: only the latter")
	fs.StringVar(&f.rates, "rates", joinInts(def.Rate.Rates), "rate: target gets per second")
	fs.DurationVar(&f.rateDur, "rate-duration", def.Rate.Duration, "rate: measured window per rate")
	fs.DurationVar(&f.rateWarmup, "rate-warmup", def.Rate.Warmup, "rate: warm-up per rate")
	fs.IntVar(&f.inFlight, "rate-in-flight", def.Rate.MaxInFlight, "rate: most requests outstanding")
	fs.StringVar(&f.hotReaders, "hotkey-readers", joinInts(def.HotKey.Readers), "hotkey: numbers of concurrent readers of the one key")
	fs.DurationVar(&f.hotDur, "hotkey-duration", def.HotKey.Duration, "hotkey: how long the readers read per cell")
	fs.DurationVar(&f.hotWrite, "hotkey-write-every", def.HotKey.WriteEvery, "hotkey: interval of the writer's overwrites")
	fs.IntVar(&f.hotRounds, "hotkey-rounds", def.HotKey.Rounds, "hotkey: rounds per cell, lone reads before each")
	fs.IntVar(&f.hotLone, "hotkey-lone", def.HotKey.LoneReads, "hotkey: lone strong reads per cell and baseline path, spread over its rounds")
	fs.DurationVar(&f.hotWarmup, "hotkey-warmup", def.HotKey.Warmup, "hotkey: untimed cell at the most readers first (0: none)")
	fs.IntVar(&f.lambdaRuns, "lambda-runs", def.Lambda.Runs, "lambda: timed starts per binary and variant")
	fs.StringVar(&f.functions, "functions", "", "lambda: function packages (default: every one under functions/)")
	fs.StringVar(&f.render, "render", "", "measure nothing: write the document and charts from this results file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	opts, err := options(f, def)
	if err != nil {
		fmt.Fprintln(stderr, "stampede-bench:", err)
		return 2
	}
	if !f.quiet {
		opts.Logf = func(format string, args ...any) {
			fmt.Fprintf(stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
		}
	}
	if f.render != "" {
		rep, err := readReport(f.render)
		if err == nil {
			f.results = "" // it is already written
			err = write(rep, f, stdout)
		}
		if err != nil {
			fmt.Fprintln(stderr, "stampede-bench:", err)
			return 1
		}
		return 0
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	rep, runErr := benchmark.Run(ctx, opts)
	if runErr != nil {
		fmt.Fprintln(stderr, "stampede-bench:", runErr)
	}
	if err := write(rep, f, stdout); err != nil {
		fmt.Fprintln(stderr, "stampede-bench:", err)
		return 1
	}
	if runErr != nil {
		return 1
	}
	return 0
}

// options turns the flags into the benchmark's options.
func options(f flags, def benchmark.Options) (benchmark.Options, error) {
	opts := benchmark.Options{DynamoDBEndpoint: f.endpoint}
	for _, s := range strings.Split(f.sections, ",") {
		switch strings.TrimSpace(s) {
		case "server":
			clients, err := parseInts(f.clients)
			if err != nil {
				return opts, fmt.Errorf("-clients: %w", err)
			}
			opts.ServerPath = &benchmark.ServerPathOptions{Concurrency: clients, OpsSerial: f.ops, OpsParallel: f.ops16, Rounds: f.rounds, Warmup: f.warmup}
			if f.operations != "" {
				for _, op := range strings.Split(f.operations, ",") {
					opts.ServerPath.Operations = append(opts.ServerPath.Operations, strings.TrimSpace(op))
				}
			}
		case "herd":
			sizes, err := parseInts(f.herdSizes)
			if err != nil {
				return opts, fmt.Errorf("-herd-sizes: %w", err)
			}
			comps, err := parseDurations(f.herdComp)
			if err != nil {
				return opts, fmt.Errorf("-herd-compute: %w", err)
			}
			h := *def.Herd
			h.Sizes, h.Computations, h.Extra, h.LongPolling = sizes, comps, nil, f.longPoll
			if f.herdLong > 0 {
				h.Extra = []benchmark.HerdCell{{N: f.herdLongN, Compute: f.herdLong}}
			}
			opts.Herd = &h
		case "rate":
			rates, err := parseInts(f.rates)
			if err != nil {
				return opts, fmt.Errorf("-rates: %w", err)
			}
			r := *def.Rate
			r.Rates, r.Duration, r.Warmup, r.MaxInFlight = rates, f.rateDur, f.rateWarmup, f.inFlight
			opts.Rate = &r
		case "hotkey":
			readers, err := parseInts(f.hotReaders)
			if err != nil {
				return opts, fmt.Errorf("-hotkey-readers: %w", err)
			}
			if f.hotDur <= 0 || f.hotWrite <= 0 || f.hotRounds < 1 || f.hotLone < f.hotRounds || f.hotWarmup < 0 {
				return opts, errors.New("-hotkey-duration and -hotkey-write-every must be positive, -hotkey-rounds at least 1, -hotkey-lone at least the rounds, -hotkey-warmup not negative")
			}
			opts.HotKey = &benchmark.HotKeyOptions{Readers: readers, Duration: f.hotDur, WriteEvery: f.hotWrite, Rounds: f.hotRounds, LoneReads: f.hotLone, Warmup: f.hotWarmup}
		case "lambda":
			l := *def.Lambda
			l.Runs = f.lambdaRuns
			if f.functions != "" {
				l.Functions = strings.Split(f.functions, ",")
			}
			opts.Lambda = &l
		case "":
		default:
			return opts, fmt.Errorf("-sections: unknown section %q", s)
		}
	}
	return opts, nil
}

// write prints the report and writes the document, charts and figures.
func write(rep *benchmark.Report, f flags, stdout io.Writer) error {
	var before *benchmark.Report
	if f.before != "" {
		if _, err := os.Stat(f.before); err == nil {
			if before, err = readReport(f.before); err != nil {
				return err
			}
		}
	}
	chartRef := ""
	if f.charts != "" && f.out != "-" {
		if err := os.MkdirAll(f.charts, 0o755); err != nil {
			return err
		}
		if _, err := benchmark.WriteCharts(f.charts, rep, before); err != nil {
			return err
		}
		rel, err := filepath.Rel(filepath.Dir(f.out), f.charts)
		if err != nil {
			return err
		}
		chartRef = filepath.ToSlash(rel)
	}
	var doc bytes.Buffer
	if err := benchmark.WriteMarkdown(&doc, rep, before, chartRef); err != nil {
		return err
	}
	if _, err := stdout.Write(doc.Bytes()); err != nil {
		return err
	}
	if f.out != "-" {
		if err := os.WriteFile(f.out, doc.Bytes(), 0o644); err != nil {
			return err
		}
	}
	if f.results != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(f.results), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(f.results, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// readReport reads a results file.
func readReport(file string) (*benchmark.Report, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var r benchmark.Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	return &r, nil
}

// moduleRoot is the directory of the main module's go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run inside the Stampede repository (no go.mod found)")
	}
	return filepath.Dir(gomod), nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("want positive integers, got %q", part)
		}
		out = append(out, n)
	}
	return out, nil
}

func parseDurations(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, part := range strings.Split(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(part))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("want positive durations, got %q", part)
		}
		out = append(out, d)
	}
	return out, nil
}

func joinInts(ns []int) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ",")
}

func joinDurations(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = d.String()
	}
	return strings.Join(parts, ",")
}
