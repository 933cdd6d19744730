package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/stampede-cache/stampede/internal/config"
	"github.com/stampede-cache/stampede/internal/manager"
	"github.com/stampede-cache/stampede/internal/transport"
)

// Environment variables of serve (the rest are internal/config's).
const (
	envAddr     = "STAMPEDE_ADDR"
	envDataDir  = "STAMPEDE_DATA_DIR"
	envLogLevel = "STAMPEDE_LOG_LEVEL"
)

// defaultLocalBucket is the managed bucket the local server creates when
// STAMPEDE_MANAGED_BUCKETS is unset.
const defaultLocalBucket = "stampede-outputs"

// Bounds of --request-timeout, as internal/config checks the variable.
const (
	minRequestTimeout = 100 * time.Millisecond
	maxRequestTimeout = 5 * time.Minute
)

// serveOptions configure the local server.
type serveOptions struct {
	addr           string
	dataDir        string
	dynamoEndpoint string
	table          string
	logLevel       string
	readyFile      string
	// requestTimeout is each request's budget; zero: the environment's
	// (config.EnvRequestTimeout), else transport.DefaultBudget.
	requestTimeout time.Duration
	// timeouts of the HTTP server; zero values take serverTimeouts'
	// defaults (tests shorten them).
	timeouts serverTimeouts
}

// serverTimeouts bound how long a client may take over a request and how
// long an idle connection stays open, so slow or stalled clients cannot
// hold connections (and their goroutines) forever.
type serverTimeouts struct {
	// readHeader bounds reading the request line and headers.
	readHeader time.Duration
	// read bounds reading the whole request, body included (bodies are at
	// most a few hundred KiB).
	read time.Duration
	// write bounds the response: from the end of the headers, so it must
	// exceed the longest a handler may run (the request budget, plus the
	// wait a get may ask for with wait_ms), or a request that used all of
	// it could not answer.
	write time.Duration
	// idle bounds keep-alive connections between requests.
	idle time.Duration
}

// withDefaults fills in the documented defaults (docs/cli.md, serve).
func (t serverTimeouts) withDefaults(budget time.Duration) serverTimeouts {
	if t.readHeader <= 0 {
		t.readHeader = 5 * time.Second
	}
	if t.read <= 0 {
		t.read = 30 * time.Second
	}
	if t.write <= 0 {
		t.write = t.read + budget + manager.MaxWait + 5*time.Second
	}
	if t.idle <= 0 {
		t.idle = 2 * time.Minute
	}
	return t
}

func (a *app) newServeCmd() *cobra.Command {
	opts := serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve [flags]",
		Short: "Run the local API backed by DynamoDB Local",
		Long: `Run the HTTP API on --addr over DynamoDB Local (started here, data under
--data-dir) or an already running DynamoDB (--dynamodb-endpoint), with an
in-process S3 unless STAMPEDE_S3_ENDPOINT is set. The address is bound
first: a busy port fails at once. Until the backends are up every request
answers 503 unavailable (GET /healthz: "starting"). SIGINT or SIGTERM stops
the server and the DynamoDB Local it started.`,
		GroupID: groupServer,
		Args:    cobra.NoArgs,
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.addr, "addr", a.env(envAddr, "127.0.0.1:8080"), "listen address (env "+envAddr+")")
	fl.StringVar(&opts.dataDir, "data-dir", a.env(envDataDir, ".stampede"), "where DynamoDB Local and the local S3 keep their data; created if missing (env "+envDataDir+")")
	fl.StringVar(&opts.dynamoEndpoint, "dynamodb-endpoint", a.env(config.EnvDynamoDBEndpoint, a.getenv("AWS_ENDPOINT_URL_DYNAMODB")),
		"use this DynamoDB instead of starting DynamoDB Local (env "+config.EnvDynamoDBEndpoint+", AWS_ENDPOINT_URL_DYNAMODB)")
	fl.StringVar(&opts.table, "table", a.env(config.EnvTable, "stampede"), "table name, created if missing (env "+config.EnvTable+")")
	fl.StringVar(&opts.logLevel, "log-level", a.env(envLogLevel, "info"), "debug, info, warn or error (env "+envLogLevel+")")
	fl.StringVar(&opts.readyFile, "ready-file", "", "write the listening address to this file once ready (for scripts and tests)")
	fl.DurationVar(&opts.requestTimeout, "request-timeout", 0,
		fmt.Sprintf("each request's time budget, DynamoDB and S3 calls included; past it the answer is 503 (env %s; default %s)", config.EnvRequestTimeout, transport.DefaultBudget))
	_ = cmd.RegisterFlagCompletionFunc("log-level", cobra.FixedCompletions([]string{"debug", "info", "warn", "error"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.MarkFlagDirname("data-dir")
	cmd.RunE = action(func(cmd *cobra.Command, _ []string) error {
		var level slog.Level
		if err := level.UnmarshalText([]byte(opts.logLevel)); err != nil {
			return usageErrorf("--log-level %q: want debug, info, warn or error", opts.logLevel)
		}
		if cmd.Flags().Changed("request-timeout") && (opts.requestTimeout < minRequestTimeout || opts.requestTimeout > maxRequestTimeout) {
			return usageErrorf("--request-timeout %s: want a duration from %s to %s", opts.requestTimeout, minRequestTimeout, maxRequestTimeout)
		}
		log := slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
		if err := serve(cmd.Context(), opts, log); err != nil {
			log.Error("serve failed", "error", err)
			return exitCode(exitFailure)
		}
		return nil
	})
	return cmd
}
