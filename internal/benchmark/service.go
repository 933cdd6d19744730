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
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/stampede-cache/stampede/internal/config"
	"github.com/stampede-cache/stampede/internal/dynamolocal"
	"github.com/stampede-cache/stampede/internal/dynamostore"
	"github.com/stampede-cache/stampede/internal/locals3"
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
// manager over a DynamoDB client from internal/config, and the transport's
// router behind a real http.Server on loopback. Beside it, a raw DynamoDB client built the
// same way, for the floor, and a capture router that turns an HTTP request
// into the DynamoDB input the server would send, without sending it.
type service struct {
	// URL is the server's base URL (http://127.0.0.1:port).
	URL string
	// Router is the server's handler, for calls without the HTTP hop.
	Router http.Handler
	// DynamoDBPort is DynamoDB Local's port (for counting its sockets).
	DynamoDBPort int

	serverDB   *ddbCounter
	raw        *dynamodb.Client
	rawDB      *ddbCounter
	capture    http.Handler
	recorder   *recorder
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

	serverDB, err := config.DynamoDB(ctx, cfg)
	if err != nil {
		return nil, err
	}
	setupCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := dynamostore.EnsureTable(setupCtx, serverDB, cfg.Table); err != nil {
		return nil, err
	}
	s.serverDB = &ddbCounter{}
	mgr, err := config.ManagerOver(ctx, cfg, counted(serverDB, s.serverDB))
	if err != nil {
		return nil, err
	}
	// `stampede serve` logs every request at info level to stderr; the
	// benchmark keeps the formatting and drops the writing.
	log := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s.Router = transport.NewRouter(mgr, transport.Options{Log: log, Budget: cfg.RequestTimeout})

	rawDB, err := config.DynamoDB(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s.rawDB = &ddbCounter{}
	s.raw = counted(rawDB, s.rawDB)

	s.recorder = &recorder{}
	captureMgr, err := config.ManagerOver(ctx, cfg, s.recorder)
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

// recorder is a dynamostore.API that sends nothing: it keeps the inputs it
// is given and answers with empty outputs (no item; a write that met its
// condition). Behind a router it yields exactly the DynamoDB requests an
// HTTP request makes, for the raw path to send.
type recorder struct {
	mu     sync.Mutex
	inputs []any
}

func (r *recorder) GetItem(_ context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	r.add(in)
	return &dynamodb.GetItemOutput{}, nil
}

func (r *recorder) UpdateItem(_ context.Context, in *dynamodb.UpdateItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	r.add(in)
	return &dynamodb.UpdateItemOutput{}, nil
}

func (r *recorder) add(in any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inputs = append(r.inputs, in)
}

func (r *recorder) take() []any {
	r.mu.Lock()
	defer r.mu.Unlock()
	in := r.inputs
	r.inputs = nil
	return in
}

// captureInput returns the one DynamoDB input the server sends for the
// request (built by the same router over the recorder).
func (s *service) captureInput(req *http.Request) (any, error) {
	w := discardResponse{header: http.Header{}}
	s.capture.ServeHTTP(&w, req)
	inputs := s.recorder.take()
	if len(inputs) != 1 {
		return nil, fmt.Errorf("capture %s %s: the server made %d DynamoDB requests, want 1", req.Method, req.URL.Path, len(inputs))
	}
	return inputs[0], nil
}

// sendRaw sends a captured input with the raw client.
func (s *service) sendRaw(ctx context.Context, in any) error {
	var err error
	switch in := in.(type) {
	case *dynamodb.GetItemInput:
		_, err = s.raw.GetItem(ctx, in)
	case *dynamodb.UpdateItemInput:
		_, err = s.raw.UpdateItem(ctx, in)
	default:
		err = fmt.Errorf("unexpected input %T", in)
	}
	return err
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
