package benchmark

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/stampede-cache/stampede/internal/benchmark/rawdynamo"
	"github.com/stampede-cache/stampede/internal/config"
	"github.com/stampede-cache/stampede/internal/dynamolocal"
	"github.com/stampede-cache/stampede/internal/dynamostore"
	"github.com/stampede-cache/stampede/internal/locals3"
	"github.com/stampede-cache/stampede/internal/s3blobs"
	"github.com/stampede-cache/stampede/internal/transport"
)

// Names the benchmark's requests use.
const (
	benchProject = "bench"
	benchDomain  = "perf"
	benchBucket  = "stampede-outputs"
)

// service is the system under test, assembled as `stampede serve`
// assembles it: DynamoDB Local (here in memory), the in-process S3, the
// manager over a DynamoDB client built as internal/config builds it, and
// the transport's router behind a real http.Server on loopback. Beside it,
// a raw DynamoDB client built the same way, for the floor, and a capture
// router that turns an HTTP request into the DynamoDB request the server
// would send, without sending it.
type service struct {
	// URL is the server's base URL (http://127.0.0.1:port).
	URL string
	// Router is the server's handler, for calls without the HTTP hop.
	Router http.Handler
	// DynamoDBPort is DynamoDB Local's port (for counting its sockets).
	DynamoDBPort int

	serverDB   *rawdynamo.Counter
	raw        *dynamostore.Client
	rawDB      *rawdynamo.Counter
	capture    http.Handler
	recorder   *rawdynamo.Recorder
	httpServer *http.Server
	stops      []func()
}

// startService starts the system under test. endpoint, when set, is a
// running DynamoDB to use instead of starting DynamoDB Local.
func startService(ctx context.Context, endpoint, workDir string, logf func(string, ...any)) (s *service, err error) {
	s = &service{}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if endpoint == "" {
		dir, err := dynamolocal.Locate(ctx)
		if err != nil {
			return nil, err
		}
		logFile, err := os.Create(filepath.Join(workDir, "dynamodb-local.log"))
		if err != nil {
			return nil, err
		}
		s.stops = append(s.stops, func() { logFile.Close() })
		logf("starting DynamoDB Local (in memory)")
		inst, err := dynamolocal.Start(ctx, dynamolocal.Options{Dir: dir, Log: logFile})
		if err != nil {
			return nil, err
		}
		s.stops = append(s.stops, inst.Stop)
		endpoint = inst.Endpoint
	}
	if s.DynamoDBPort, err = portOf(endpoint); err != nil {
		return nil, err
	}

	s3srv, err := locals3.Start("", []string{benchBucket})
	if err != nil {
		return nil, err
	}
	s.stops = append(s.stops, func() { _ = s3srv.Close() })

	cfg, err := config.FromEnv("stampede-bench")
	if err != nil {
		return nil, err
	}
	cfg.Table = fmt.Sprintf("bench-%d", time.Now().UnixNano())
	cfg.DynamoDBEndpoint = endpoint
	cfg.S3Endpoint = s3srv.Endpoint
	cfg.Manager.ManagedBuckets = []string{benchBucket}

	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = transport.DefaultBudget
	}

	// The server's DynamoDB client as `stampede serve` builds it (its own
	// AWS configuration and connection pool), counting its requests.
	s.serverDB = &rawdynamo.Counter{}
	serverDB, err := rawdynamo.NewClient(ctx, endpoint, s.serverDB.Install)
	if err != nil {
		return nil, err
	}
	setupCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := dynamostore.EnsureTable(setupCtx, serverDB, cfg.Table); err != nil {
		return nil, err
	}
	// The process's AWS configuration for the object store, as `stampede
	// serve` loads it, with the counting DynamoDB client in place of its own.
	backend, err := config.Connect(ctx, cfg)
	if err != nil {
		return nil, err
	}
	backend.DynamoDB = serverDB
	mgr, err := backend.Manager(cfg, s3blobs.NewLazy)
	if err != nil {
		return nil, err
	}
	// `stampede serve` logs every request at info level to stderr; the
	// benchmark keeps the formatting and drops the writing.
	log := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s.Router = transport.NewRouter(mgr, transport.Options{Log: log, Budget: cfg.RequestTimeout})

	// The raw path's client, built the same way with a pool of its own.
	s.rawDB = &rawdynamo.Counter{}
	if s.raw, err = rawdynamo.NewClient(ctx, endpoint, s.rawDB.Install); err != nil {
		return nil, err
	}

	// The same router over a client that records instead of sending.
	s.recorder = &rawdynamo.Recorder{}
	recording, err := rawdynamo.NewClient(ctx, endpoint, s.recorder.Install)
	if err != nil {
		return nil, err
	}
	captureMgr, err := (&config.Backend{AWS: backend.AWS, DynamoDB: recording}).Manager(cfg, s3blobs.NewLazy)
	if err != nil {
		return nil, err
	}
	s.capture = transport.NewRouter(captureMgr, transport.Options{Log: log, Budget: cfg.RequestTimeout})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	s.httpServer = &http.Server{Handler: s.Router, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10}
	// As `stampede serve` listens: the server's own 4xx answers as JSON.
	go func() { _ = s.httpServer.Serve(transport.JSONErrors(ln)) }()
	s.URL = "http://" + ln.Addr().String()
	return s, nil
}

// close stops everything startService started, last first.
func (s *service) close() {
	if s.httpServer != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.httpServer.Shutdown(ctx)
		cancel()
	}
	for i := len(s.stops) - 1; i >= 0; i-- {
		s.stops[i]()
	}
	s.stops = nil
}

// cachePath and reservationPath are the API paths of a key.
func cachePath(key string) string {
	return "/v1/projects/" + benchProject + "/domains/" + benchDomain + "/cache/" + key
}

func reservationPath(key string) string {
	return "/v1/projects/" + benchProject + "/domains/" + benchDomain + "/reservations/" + key
}

// captureRequest returns the one DynamoDB request the server makes for
// the HTTP request (built by the same router over the recorder).
func (s *service) captureRequest(req *http.Request) (rawdynamo.Request, error) {
	w := discardResponse{header: http.Header{}}
	s.capture.ServeHTTP(&w, req)
	requests := s.recorder.Take()
	if len(requests) != 1 {
		return rawdynamo.Request{}, fmt.Errorf("capture %s %s: the server made %d DynamoDB requests, want 1", req.Method, req.URL.Path, len(requests))
	}
	return requests[0], nil
}

// discardResponse is an http.ResponseWriter that keeps only the status.
type discardResponse struct {
	header http.Header
	status int
}

func (d *discardResponse) Header() http.Header { return d.header }

func (d *discardResponse) Write(b []byte) (int, error) {
	if d.status == 0 {
		d.status = http.StatusOK
	}
	return len(b), nil
}

func (d *discardResponse) WriteHeader(status int) {
	if d.status == 0 {
		d.status = status
	}
}

func portOf(endpoint string) (int, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return 0, fmt.Errorf("endpoint %s: %w", endpoint, err)
	}
	p, err := strconv.Atoi(u.Port())
	if err != nil {
		return 0, fmt.Errorf("endpoint %s: no port: %w", endpoint, err)
	}
	return p, nil
}
