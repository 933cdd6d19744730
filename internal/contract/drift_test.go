package contract_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/stampede-cache/stampede/client"
	"github.com/stampede-cache/stampede/internal/contract"
	"github.com/stampede-cache/stampede/internal/dynamostore"
	"github.com/stampede-cache/stampede/internal/flyte"
	"github.com/stampede-cache/stampede/internal/manager"
	"github.com/stampede-cache/stampede/internal/testenv"
	"github.com/stampede-cache/stampede/internal/transport"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// The drift tests tie the copies of the contract's facts that other
// packages still keep to this package. infra/ (its own module) has its
// own, over contract.json.

// stringConsts returns the string constants of the package in dir whose
// names start with prefix, by name, from its (non-test) source.
func stringConsts(t *testing.T, dir, prefix string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(dir, e.Name()), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.CONST {
				continue
			}
			for _, spec := range gen.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if !strings.HasPrefix(name.Name, prefix) || i >= len(vs.Values) {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						v, err := strconv.Unquote(lit.Value)
						if err != nil {
							t.Fatal(err)
						}
						out[name.Name] = v
					}
				}
			}
		}
	}
	return out
}

func contractCodes() []string {
	var codes []string
	for _, c := range contract.ErrorCodes() {
		codes = append(codes, c.Code)
	}
	slices.Sort(codes)
	return codes
}

func sortedValues(m map[string]string) []string {
	return slices.Sorted(maps.Values(m))
}

// TestManagerErrorCodes: manager's Code* constants are the contract's.
func TestManagerErrorCodes(t *testing.T) {
	got := stringConsts(t, "../manager", "Code")
	if !slices.Equal(sortedValues(got), contractCodes()) {
		t.Errorf("manager's codes %v, contract's %v", got, contractCodes())
	}
	for _, tt := range []struct{ got, want string }{
		{manager.CodeInvalidArgument, contract.CodeInvalidArgument},
		{manager.CodeNotFound, contract.CodeNotFound},
		{manager.CodeAlreadyExists, contract.CodeAlreadyExists},
		{manager.CodeFailedPrecondition, contract.CodeFailedPrecondition},
		{manager.CodePayloadTooLarge, contract.CodePayloadTooLarge},
		{manager.CodeThrottled, contract.CodeThrottled},
		{manager.CodeUnavailable, contract.CodeUnavailable},
		{manager.CodeInternal, contract.CodeInternal},
	} {
		if tt.got != tt.want {
			t.Errorf("manager says %q where the contract says %q", tt.got, tt.want)
		}
	}
}

// TestClientErrorCodes: the client's Code* constants are the contract's,
// plus its own not_modified (a 304, which the service sends as no error).
func TestClientErrorCodes(t *testing.T) {
	got := stringConsts(t, "../../client", "Code")
	if got["CodeNotModified"] != client.CodeNotModified {
		t.Fatalf("client's not_modified: %v", got)
	}
	delete(got, "CodeNotModified")
	if !slices.Equal(sortedValues(got), contractCodes()) {
		t.Errorf("client's codes %v, contract's %v", got, contractCodes())
	}
	for _, tt := range []struct{ got, want string }{
		{client.CodeInvalidArgument, contract.CodeInvalidArgument},
		{client.CodeNotFound, contract.CodeNotFound},
		{client.CodeAlreadyExists, contract.CodeAlreadyExists},
		{client.CodeFailedPrecondition, contract.CodeFailedPrecondition},
		{client.CodePayloadTooLarge, contract.CodePayloadTooLarge},
		{client.CodeThrottled, contract.CodeThrottled},
		{client.CodeUnavailable, contract.CodeUnavailable},
		{client.CodeInternal, contract.CodeInternal},
	} {
		if tt.got != tt.want {
			t.Errorf("client says %q where the contract says %q", tt.got, tt.want)
		}
	}
}

// TestTransportRoutes: the transport serves the contract's routes, each
// with the contract's operation.
func TestTransportRoutes(t *testing.T) {
	if transport.CacheRoute != contract.CacheRoute || transport.ReservationRoute != contract.ReservationRoute {
		t.Errorf("transport's templates %q, %q", transport.CacheRoute, transport.ReservationRoute)
	}
	served := map[string]string{}
	for _, r := range transport.Routes() {
		served[r.Method+" "+r.Template] = string(r.Op)
	}
	want := map[string]string{}
	for _, r := range contract.Routes() {
		want[r.Key()] = r.Op
	}
	if !maps.Equal(served, want) {
		t.Errorf("transport serves %v, the contract says %v", served, want)
	}
	// transport.Ops lists the operations that have a function of their
	// own: the contract's functions but the flyte function.
	var ops []string
	for _, op := range transport.Ops() {
		ops = append(ops, string(op))
	}
	ops = append(ops, contract.FunctionFlyte)
	if !slices.Equal(slices.Sorted(slices.Values(ops)), slices.Sorted(slices.Values(contract.Functions()))) {
		t.Errorf("transport's function ops %v, contract's functions %v", ops, contract.Functions())
	}
}

// TestTransportFunctionsServeTheirRoutes: each function's handler serves
// the routes the contract gives it (inspect: the get function) and refuses
// the others.
func TestTransportFunctionsServeTheirRoutes(t *testing.T) {
	store, _ := testenv.Store(t)
	mgr, err := manager.New(store, manager.Config{})
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]string{
		contract.CacheRoute:       "/v1/projects/p/domains/d/cache/k",
		contract.ReservationRoute: "/v1/projects/p/domains/d/reservations/k",
	}
	for _, fn := range contract.Functions() {
		h := transport.NewFunction(mgr, transport.Op(fn), transport.Options{})
		if fn == contract.FunctionFlyte {
			h = transport.NewRPCFunction(flyte.Mount(mgr), transport.Options{})
		}
		for _, r := range contract.Routes() {
			event, err := json.Marshal(map[string]any{
				"version": "2.0", "routeKey": r.Key(), "rawPath": paths[r.Template], "rawQueryString": "owner_id=o",
				"queryStringParameters": map[string]string{"owner_id": "o"},
				"pathParameters":        map[string]string{"project": "p", "domain": "d", "key": "k"},
				"requestContext":        map[string]any{"http": map[string]any{"method": r.Method, "path": paths[r.Template]}},
				"body":                  `{"output_uri":"s3://bucket/x","owner_id":"o"}`,
			})
			if err != nil {
				t.Fatal(err)
			}
			out, err := h.Invoke(context.Background(), event)
			if err != nil {
				t.Fatalf("function %s, route %s: %v", fn, r.Key(), err)
			}
			b, _ := json.Marshal(out)
			var resp struct {
				StatusCode int    `json:"statusCode"`
				Body       string `json:"body"`
			}
			if err := json.Unmarshal(b, &resp); err != nil {
				t.Fatal(err)
			}
			refused := resp.StatusCode == http.StatusNotFound && strings.Contains(resp.Body, `"message":"path:`)
			if serves := r.Function == fn; refused == serves {
				t.Errorf("function %s, route %s: answer %d %s; the contract says it serves it: %v", fn, r.Key(), resp.StatusCode, resp.Body, serves)
			}
		}
	}
}

// failingStore fails every read with err. It is a double because a real
// engine cannot be made to fail with each application error on demand;
// what is under test is the transport's mapping of codes, not the store.
type failingStore struct {
	manager.Store
	err error
}

func (s failingStore) GetEntry(context.Context, manager.ID, bool) (*manager.Entry, error) {
	return nil, s.err
}

// TestTransportErrorMapping: every code answers with the contract's HTTP
// status and code, and fails a direct invocation with the contract's
// Lambda error type.
func TestTransportErrorMapping(t *testing.T) {
	if transport.ErrorTypePrefix != contract.LambdaErrorTypePrefix {
		t.Errorf("transport's error type prefix %q", transport.ErrorTypePrefix)
	}
	log := slog.New(slog.DiscardHandler)
	for _, c := range contract.ErrorCodes() {
		t.Run(c.Code, func(t *testing.T) {
			mgr, err := manager.New(failingStore{err: &manager.Error{Code: c.Code, Message: "on purpose"}}, manager.Config{})
			if err != nil {
				t.Fatal(err)
			}
			router := transport.NewRouter(mgr, transport.Options{Log: log})
			w := httptest.NewRecorder()
			router.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/projects/p/domains/d/cache/k", nil))
			var body struct {
				Error struct{ Code string } `json:"error"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			if w.Code != c.Status || body.Error.Code != c.Code {
				t.Errorf("HTTP answer %d %q, want %d %q", w.Code, body.Error.Code, c.Status, c.Code)
			}
			if c.Code == contract.CodeNotFound {
				return // a direct get answers a miss with {"found":false}, no error
			}
			fn := transport.NewFunction(mgr, transport.OpGet, transport.Options{Log: log})
			_, err = fn.Invoke(context.Background(), json.RawMessage(`{"project":"p","domain":"d","key":"k"}`))
			var lambdaErr messages.InvokeResponse_Error
			if !errors.As(err, &lambdaErr) || lambdaErr.Type != c.LambdaErrorType {
				t.Errorf("direct invocation failed with %#v, want errorType %s", err, c.LambdaErrorType)
			}
		})
	}
}

// TestTableSchema: the store's table is the contract's.
func TestTableSchema(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{dynamostore.PartitionKey, contract.PartitionKey},
		{dynamostore.SortKey, contract.SortKey},
		{dynamostore.TTLAttribute, contract.TTLAttribute},
	} {
		if tt.got != tt.want {
			t.Errorf("dynamostore says %q where the contract says %q", tt.got, tt.want)
		}
	}
}

// emfRecord is the part of a log line in CloudWatch's Embedded Metric
// Format the contract fixes.
type emfRecord struct {
	Operation string `json:"Operation"`
	AWS       struct {
		CloudWatchMetrics []struct {
			Namespace  string
			Dimensions [][]string
			Metrics    []contract.Metric
		}
	} `json:"_aws"`
}

// TestTransportMetrics: the metrics the functions emit (in their log
// lines) are the contract's, in its namespace and dimension.
func TestTransportMetrics(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	opts := transport.Options{Log: log, Metrics: true}
	store, _ := testenv.Store(t)
	mgr, err := manager.New(store, manager.Config{})
	if err != nil {
		t.Fatal(err)
	}
	router := transport.NewRouter(mgr, opts)
	send := func(method, path, body string) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		router.ServeHTTP(httptest.NewRecorder(), req)
	}
	const cache, resv = "/v1/projects/p/domains/d/cache/k", "/v1/projects/p/domains/d/reservations/k"
	send(http.MethodGet, cache, "")                                                // miss
	send(http.MethodPost, resv, `{"owner_id":"a"}`)                                // acquired
	send(http.MethodPost, resv, `{"owner_id":"b"}`)                                // contended
	send(http.MethodGet, resv, "")                                                 // inspect
	send(http.MethodPut, cache, `{"output_uri":"s3://bucket/x"}`)                  // created
	send(http.MethodPut, cache, `{"output_uri":"s3://bucket/y"}`)                  // refused
	send(http.MethodPut, cache, `{"output_uri":"s3://bucket/y","overwrite":true}`) // overwritten
	send(http.MethodGet, cache, "")                                                // hit
	send(http.MethodDelete, resv+"?owner_id=a", "")                                // released
	send(http.MethodDelete, cache, "")                                             // deleted
	for _, code := range []string{contract.CodeThrottled, contract.CodeUnavailable, contract.CodeInternal} {
		failing, err := manager.New(failingStore{err: &manager.Error{Code: code, Message: "on purpose"}}, manager.Config{})
		if err != nil {
			t.Fatal(err)
		}
		transport.NewRouter(failing, opts).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, cache, nil))
	}

	if transport.MetricsNamespace != contract.MetricNamespace {
		t.Errorf("transport's namespace %q", transport.MetricsNamespace)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec emfRecord
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if len(rec.AWS.CloudWatchMetrics) != 1 {
			t.Errorf("log line %q: want one metric directive", line)
			continue
		}
		d := rec.AWS.CloudWatchMetrics[0]
		if d.Namespace != contract.MetricNamespace || !slices.EqualFunc(d.Dimensions, [][]string{{contract.MetricDimensionOp}}, slices.Equal) {
			t.Errorf("namespace %q dimensions %v, want %q [[%s]]", d.Namespace, d.Dimensions, contract.MetricNamespace, contract.MetricDimensionOp)
		}
		if !slices.Contains(contract.Ops(), rec.Operation) {
			t.Errorf("operation %q is not the contract's", rec.Operation)
		}
		for _, m := range d.Metrics {
			if !slices.Contains(contract.Metrics(), m) {
				t.Errorf("metric %+v is not the contract's %v", m, contract.Metrics())
			}
			seen[m.Name] = true
		}
	}
	// What the requests above produce; the rest (taken over, fenced puts)
	// needs time to pass or a second owner's fence.
	for _, name := range []string{
		contract.MetricHits, contract.MetricMisses, contract.MetricPutsCreated, contract.MetricPutsOverwritten, contract.MetricPutsRefused,
		contract.MetricReservationsAcquired, contract.MetricReservationsContended, contract.MetricThrottles,
		contract.MetricUnavailable, contract.MetricErrors, contract.MetricLatency,
	} {
		if !seen[name] {
			t.Errorf("no request emitted %s", name)
		}
	}
}

// TestFlyteRoutesMatchTheTransport ties the flyte function's dispatch of
// Flyte's methods to the contract the stack routes by.
func TestFlyteRoutesMatchTheTransport(t *testing.T) {
	var got, want []string
	for _, r := range flyte.Routes() {
		got = append(got, r.Method+" "+r.Template+" "+string(r.Op))
	}
	for _, r := range contract.FlyteRoutes() {
		want = append(want, r.Method+" "+r.Template+" "+r.Op)
		if r.Function != contract.FunctionFlyte {
			t.Errorf("%s: served by the %s function, not the flyte function", r.Key(), r.Function)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("transport's Flyte routes %v, the contract's %v", got, want)
	}
}
