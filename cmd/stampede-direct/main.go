// Command stampede-direct serves the direct invocations of Stampede's five
// functions (the real transport and manager) over loopback HTTP, backed by
// DynamoDB Local and an in-process S3, on a clock its caller moves (see
// internal/directserver). infra/cachedtask's tests run the Step Functions
// construct against it in a local ASL interpreter.
//
// It starts DynamoDB Local (in memory) unless -dynamodb-endpoint is given,
// creates the table and the managed bucket, prints one JSON line to stdout,
//
//	{"url": "http://127.0.0.1:PORT", "table": "…", "bucket": "…"}
//
// and serves until its standard input closes or it gets SIGINT or SIGTERM.
// The usual STAMPEDE_* variables configure the service
// (STAMPEDE_HEARTBEAT_MULTIPLIER, STAMPEDE_MAX_HEARTBEAT_SECONDS, ...).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/stampede-cache/stampede/internal/config"
	"github.com/stampede-cache/stampede/internal/directserver"
	"github.com/stampede-cache/stampede/internal/dynamolocal"
	"github.com/stampede-cache/stampede/internal/dynamostore"
	"github.com/stampede-cache/stampede/internal/locals3"
	"github.com/stampede-cache/stampede/internal/s3blobs"
	"github.com/stampede-cache/stampede/internal/transport"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, stop, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "stampede-direct:", err)
		os.Exit(1)
	}
}

// dynamoDBLocalAttempts bounds the starts of DynamoDB Local: on a loaded
// machine the JVM may miss dynamolocal's start-up deadline once, and starts
// faster the second time (its jar is in the page cache by then).
const dynamoDBLocalAttempts = 3

func startDynamoDBLocal(ctx context.Context, log *slog.Logger) (*dynamolocal.Instance, error) {
	dir, err := dynamolocal.Locate(ctx)
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		inst, err := dynamolocal.Start(ctx, dynamolocal.Options{Dir: dir})
		if err == nil || attempt == dynamoDBLocalAttempts || ctx.Err() != nil {
			return inst, err
		}
		log.Warn("DynamoDB Local did not start; trying again", "attempt", attempt, "error", err)
	}
}

// ready is the line printed once the server listens.
type ready struct {
	URL    string `json:"url"`
	Table  string `json:"table"`
	Bucket string `json:"bucket"`
}

func run(ctx context.Context, stop context.CancelFunc, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("stampede-direct", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	endpoint := fs.String("dynamodb-endpoint", "", "use this DynamoDB instead of starting DynamoDB Local")
	table := fs.String("table", "stampede-direct", "table name")
	bucket := fs.String("bucket", "stampede-outputs", "the managed bucket, created in the in-process S3")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))

	if *endpoint == "" {
		inst, err := startDynamoDBLocal(ctx, log)
		if err != nil {
			return err
		}
		defer inst.Stop()
		*endpoint = inst.Endpoint
	}
	s3srv, err := locals3.Start("", []string{*bucket})
	if err != nil {
		return err
	}
	defer s3srv.Close()

	cfg, err := config.FromEnv(*table)
	if err != nil {
		return err
	}
	cfg.Table, cfg.DynamoDBEndpoint, cfg.S3Endpoint = *table, *endpoint, s3srv.Endpoint
	cfg.Manager.ManagedBuckets = []string{*bucket}
	clock := directserver.NewClock(time.Now().UTC())
	cfg.Manager.Clock = clock.Now
	backend, err := config.Connect(ctx, cfg)
	if err != nil {
		return err
	}
	setup, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := dynamostore.EnsureTable(setup, backend.DynamoDB, cfg.Table); err != nil {
		return err
	}
	mgr, err := backend.Manager(cfg, s3blobs.NewLazy)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           directserver.New(mgr, clock, transport.Options{Log: log, Budget: cfg.RequestTimeout}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	line, err := json.Marshal(ready{URL: "http://" + ln.Addr().String(), Table: cfg.Table, Bucket: *bucket})
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(stdout, "%s\n", line); err != nil {
		return err
	}
	// The caller holds stdin open for as long as it needs the server.
	go func() {
		_, _ = io.Copy(io.Discard, stdin)
		stop()
	}()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdown, cancelShutdown := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelShutdown()
	return srv.Shutdown(shutdown)
}
