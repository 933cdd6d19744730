package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/stampede-cache/stampede/internal/config"
	"github.com/stampede-cache/stampede/internal/dynamolocal"
	"github.com/stampede-cache/stampede/internal/dynamostore"
	"github.com/stampede-cache/stampede/internal/locals3"
	"github.com/stampede-cache/stampede/internal/transport"
)

// defaultLocalBucket is the managed bucket the local server creates when
// STAMPEDE_MANAGED_BUCKETS is unset.
const defaultLocalBucket = "stampede-outputs"

// serveOptions configure the local server.
type serveOptions struct {
	addr      string
	dataDir   string
	endpoint  string
	table     string
	logLevel  string
	readyFile string
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	opts := serveOptions{}
	fs.StringVar(&opts.addr, "addr", envOr("STAMPEDE_ADDR", "127.0.0.1:8080"), "listen address (STAMPEDE_ADDR)")
	fs.StringVar(&opts.dataDir, "data-dir", envOr("STAMPEDE_DATA_DIR", ".stampede"), "where DynamoDB Local keeps its data (STAMPEDE_DATA_DIR)")
	fs.StringVar(&opts.endpoint, "dynamodb-endpoint", envOr(config.EnvDynamoDBEndpoint, os.Getenv("AWS_ENDPOINT_URL_DYNAMODB")),
		"use this DynamoDB instead of starting DynamoDB Local (STAMPEDE_DYNAMODB_ENDPOINT, AWS_ENDPOINT_URL_DYNAMODB)")
	fs.StringVar(&opts.table, "table", envOr(config.EnvTable, "stampede"), "table name (STAMPEDE_TABLE)")
	fs.StringVar(&opts.logLevel, "log-level", envOr("STAMPEDE_LOG_LEVEL", "info"), "debug, info, warn or error (STAMPEDE_LOG_LEVEL)")
	fs.StringVar(&opts.readyFile, "ready-file", "", "write the listening address to this file once ready (for scripts and tests)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(opts.logLevel)); err != nil {
		fmt.Fprintf(stderr, "serve: -log-level: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if err := serve(ctx, opts, log); err != nil {
		log.Error("serve failed", "error", err)
		return 1
	}
	return 0
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// serve runs the local API until ctx is cancelled (SIGINT, SIGTERM).
func serve(ctx context.Context, opts serveOptions, log *slog.Logger) error {
	endpoint := opts.endpoint
	if endpoint == "" {
		inst, logFile, err := startDynamoDBLocal(ctx, opts.dataDir, log)
		if err != nil {
			return err
		}
		defer func() {
			log.Info("stopping DynamoDB Local")
			inst.Stop()
			logFile.Close()
		}()
		endpoint = inst.Endpoint
	}

	cfg, err := config.FromEnv(opts.table)
	if err != nil {
		return err
	}
	cfg.Table = opts.table
	cfg.DynamoDBEndpoint = endpoint
	if len(cfg.Manager.ManagedBuckets) == 0 {
		cfg.Manager.ManagedBuckets = []string{defaultLocalBucket}
	}
	if cfg.S3Endpoint == "" {
		cfg.S3Endpoint = os.Getenv("AWS_ENDPOINT_URL_S3")
	}
	if cfg.S3Endpoint == "" {
		s3srv, err := locals3.Start(filepath.Join(opts.dataDir, "s3.db"), cfg.Manager.ManagedBuckets)
		if err != nil {
			return err
		}
		defer s3srv.Close()
		cfg.S3Endpoint = s3srv.Endpoint
	}
	db, err := config.DynamoDB(ctx, cfg)
	if err != nil {
		return err
	}
	setupCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := dynamostore.EnsureTable(setupCtx, db, cfg.Table); err != nil {
		return err
	}
	mgr, err := config.ManagerOver(ctx, cfg, db)
	if err != nil {
		return err
	}

	health, err := json.Marshal(map[string]any{
		"status":            "ok",
		"dynamodb_endpoint": endpoint,
		"table":             cfg.Table,
		"s3_endpoint":       cfg.S3Endpoint,
		"managed_buckets":   cfg.Manager.ManagedBuckets,
	})
	if err != nil {
		return err
	}
	api := transport.NewRouter(mgr, transport.Options{Log: log, Budget: cfg.RequestTimeout})
	// Not an http.ServeMux: it would clean "a//b" in keys and redirect.
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" && r.Method == http.MethodGet {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(health)
			return
		}
		api.ServeHTTP(w, r)
	})

	ln, err := net.Listen("tcp", opts.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", opts.addr, err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	addr := ln.Addr().String()
	log.Info("stampede is serving", "url", "http://"+addr, "dynamodb", endpoint, "table", cfg.Table)
	if opts.readyFile != "" {
		if err := os.WriteFile(opts.readyFile, []byte(addr), 0o644); err != nil {
			return err
		}
	}

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancelShutdown := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelShutdown()
	return srv.Shutdown(shutdownCtx)
}

// startDynamoDBLocal starts DynamoDB Local with its data under dataDir and
// its output in dataDir/dynamodb-local.log (returned, for closing).
func startDynamoDBLocal(ctx context.Context, dataDir string, log *slog.Logger) (*dynamolocal.Instance, *os.File, error) {
	dir, err := dynamolocal.Locate(ctx)
	if err != nil {
		return nil, nil, err
	}
	dbDir := filepath.Join(dataDir, "dynamodb")
	if err := os.MkdirAll(dbDir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("create %s: %w", dbDir, err)
	}
	logFile, err := os.OpenFile(filepath.Join(dataDir, "dynamodb-local.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, err
	}
	log.Info("starting DynamoDB Local", "data", dbDir, "from", dir)
	inst, err := dynamolocal.Start(ctx, dynamolocal.Options{Dir: dir, DataDir: dbDir, Log: logFile})
	if err != nil {
		logFile.Close()
		return nil, nil, err
	}
	return inst, logFile, nil
}
