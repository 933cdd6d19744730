package transport_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/stampede-cache/stampede/internal/dynamostore"
	"github.com/stampede-cache/stampede/internal/manager"
	"github.com/stampede-cache/stampede/internal/testenv"
	"github.com/stampede-cache/stampede/internal/transport"
)

// functions returns one handler per operation over one table, as deployed.
func functions(t *testing.T) (map[transport.Op]*transport.Handler, *testenv.Counter) {
	t.Helper()
	mgr, _, counter := newManager(t)
	fns := map[transport.Op]*transport.Handler{}
	for _, op := range transport.Ops() {
		fns[op] = transport.NewFunction(mgr, op, transport.Options{Log: testLogger(t), Budget: testBudget})
	}
	return fns, counter
}

func invoke(t *testing.T, h *transport.Handler, payload string) (any, error) {
	t.Helper()
	return h.Invoke(context.Background(), json.RawMessage(payload))
}

// httpAPIEvent is an HTTP API (payload 2.0) event as API Gateway sends it:
// route key of the contract route, the path and its parameters decoded.
func httpAPIEvent(route transport.Route, project, domain, key, query, body string) string {
	path := "/v1/projects/" + project + "/domains/" + domain + "/" + map[string]string{
		transport.CacheRoute: "cache", transport.ReservationRoute: "reservations"}[route.Template] + "/" + key
	ev := events.APIGatewayV2HTTPRequest{
		Version:        "2.0",
		RouteKey:       route.Key(),
		RawPath:        path,
		RawQueryString: query,
		Headers:        map[string]string{"content-type": "application/json"},
		PathParameters: map[string]string{"project": project, "domain": domain, "key": key},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey: route.Key(),
			Stage:    "$default",
			HTTP:     events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: route.Method, Path: path},
		},
		Body: body,
	}
	data, _ := json.Marshal(ev)
	return string(data)
}

// restEvent is a REST API (payload 1.0) proxy event: resource template,
// the path and path parameters still percent-encoded.
func restEvent(route transport.Route, project, domain, escapedKey string, query map[string]string, body string) string {
	path := "/v1/projects/" + project + "/domains/" + domain + "/" + map[string]string{
		transport.CacheRoute: "cache", transport.ReservationRoute: "reservations"}[route.Template] + "/" + escapedKey
	ev := events.APIGatewayProxyRequest{
		Resource:              route.Template,
		Path:                  path,
		HTTPMethod:            route.Method,
		PathParameters:        map[string]string{"project": project, "domain": domain, "key": escapedKey},
		QueryStringParameters: query,
		RequestContext:        events.APIGatewayProxyRequestContext{Stage: "prod", ResourcePath: route.Template, HTTPMethod: route.Method},
		Body:                  body,
	}
	data, _ := json.Marshal(ev)
	return string(data)
}

func routeOf(op transport.Op) transport.Route {
	for _, r := range transport.Routes() {
		if r.Op == op {
			return r
		}
	}
	panic("no route for " + op)
}

func TestHTTPAPIEvents(t *testing.T) {
	fns, counter := functions(t)
	key := "dir/file name#1%"
	steps := []struct {
		op     transport.Op
		query  string
		body   string
		status int
		check  string
	}{
		{transport.OpGet, "", "", 404, `"not_found"`},
		{transport.OpPut, "", `{"output_uri":"s3://bucket/x"}`, 201, `"key":"dir/file name#1%"`},
		{transport.OpGet, "", "", 200, `"output_uri":"s3://bucket/x"`},
		{transport.OpReserve, "", `{"owner_id":"w"}`, 200, `"acquired":true`},
		{transport.OpRelease, "owner_id=w", "", 200, `"released":true`},
		{transport.OpDelete, "", "", 200, `"deleted":true`},
	}
	for _, s := range steps {
		counter.Reset()
		out, err := invoke(t, fns[s.op], httpAPIEvent(routeOf(s.op), "ml", "dev", key, s.query, s.body))
		if err != nil {
			t.Fatalf("%s: %v", s.op, err)
		}
		resp, ok := out.(events.APIGatewayV2HTTPResponse)
		if !ok || resp.StatusCode != s.status || !strings.Contains(resp.Body, s.check) || resp.Headers["Content-Type"] != "application/json" {
			t.Fatalf("%s: %#v", s.op, out)
		}
		if n := counter.Total(); n != 1 {
			t.Errorf("%s: %d DynamoDB requests, want 1", s.op, n)
		}
	}
}

func TestRESTEvents(t *testing.T) {
	fns, _ := functions(t)
	escaped := "dir%2Ffile%20name%231%25"
	steps := []struct {
		op     transport.Op
		query  map[string]string
		body   string
		status int
		check  string
	}{
		{transport.OpPut, nil, `{"output_uri":"s3://bucket/x"}`, 201, `"key":"dir/file name#1%"`},
		{transport.OpGet, nil, "", 200, `"key":"dir/file name#1%"`},
		{transport.OpReserve, nil, `{"owner_id":"w"}`, 200, `"acquired":true`},
		{transport.OpRelease, map[string]string{"owner_id": "w"}, "", 200, `"released":true`},
		{transport.OpRelease, nil, "", 400, `owner_id: required`},
		{transport.OpDelete, nil, "", 200, `"deleted":true`},
	}
	for _, s := range steps {
		out, err := invoke(t, fns[s.op], restEvent(routeOf(s.op), "ml", "dev", escaped, s.query, s.body))
		if err != nil {
			t.Fatalf("%s: %v", s.op, err)
		}
		resp, ok := out.(events.APIGatewayProxyResponse)
		if !ok || resp.StatusCode != s.status || !strings.Contains(resp.Body, s.check) {
			t.Fatalf("%s: %#v", s.op, out)
		}
	}
	// A catch-all {proxy+} resource still routes by path.
	ev := events.APIGatewayProxyRequest{Resource: "/{proxy+}", Path: "/v1/projects/ml/domains/dev/cache/" + escaped, HTTPMethod: "GET"}
	data, _ := json.Marshal(ev)
	out, _ := invoke(t, fns[transport.OpGet], string(data))
	if resp := out.(events.APIGatewayProxyResponse); resp.StatusCode != 404 || !strings.Contains(resp.Body, "no cached entry") {
		t.Fatalf("proxy route: %#v", resp)
	}
}

func TestRouteToTheWrongFunctionIs404(t *testing.T) {
	fns, counter := functions(t)
	out, err := invoke(t, fns[transport.OpGet], httpAPIEvent(routeOf(transport.OpPut), "ml", "dev", "k", "", `{"output_uri":"s3://bucket/x"}`))
	if err != nil {
		t.Fatal(err)
	}
	if resp := out.(events.APIGatewayV2HTTPResponse); resp.StatusCode != 404 || counter.Total() != 0 {
		t.Fatalf("%#v, %d requests", resp, counter.Total())
	}
}

func TestDirectInvocation(t *testing.T) {
	fns, counter := functions(t)
	steps := []struct {
		op      transport.Op
		payload string
		want    string
	}{
		{transport.OpGet, `{"project":"ml","domain":"dev","key":"a/b"}`, `{"found":false,"read":"strong"}`},
		{transport.OpPut, `{"project":"ml","domain":"dev","key":"a/b","output_uri":"s3://bucket/x","ttl_seconds":60}`, `{"project":"ml","domain":"dev","key":"a/b","output_uri":"s3://bucket/x","metadata":{},"created_at":"2026-11-21T12:00:00.000Z","last_updated_at":"2026-11-21T12:00:00.000Z","version":` + strconv.FormatInt(v(1), 10) + `,"expires_at":"2026-11-21T12:01:00.000Z"}`},
		{transport.OpGet, `{"project":"ml","domain":"dev","key":"a/b"}`, `{"found":true,"entry":{"project":"ml","domain":"dev","key":"a/b","output_uri":"s3://bucket/x"`},
		{transport.OpReserve, `{"project":"ml","domain":"dev","key":"a/b","owner_id":"exec-1","heartbeat_interval_seconds":5}`, `{"acquired":true,"reservation":{"project":"ml","domain":"dev","key":"a/b","owner_id":"exec-1","heartbeat_interval_seconds":5`},
		{transport.OpRelease, `{"project":"ml","domain":"dev","key":"a/b","owner_id":"exec-1"}`, `{"released":true}`},
		{transport.OpDelete, `{"project":"ml","domain":"dev","key":"a/b"}`, `{"deleted":true}`},
	}
	for _, s := range steps {
		counter.Reset()
		out, err := invoke(t, fns[s.op], s.payload)
		if err != nil {
			t.Fatalf("%s: %v", s.op, err)
		}
		data, _ := json.Marshal(out)
		if !strings.HasPrefix(string(data), s.want) {
			t.Fatalf("%s: %s, want prefix %s", s.op, data, s.want)
		}
		if n := counter.Total(); n != 1 {
			t.Errorf("%s: %d DynamoDB requests, want 1", s.op, n)
		}
	}
}

func TestDirectInvocationErrors(t *testing.T) {
	fns, _ := functions(t)
	if _, err := invoke(t, fns[transport.OpPut], `{"project":"ml","domain":"dev","key":"k","output_uri":"s3://bucket/x"}`); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		op      transport.Op
		payload string
		typ     string
		field   string
	}{
		{transport.OpGet, `{"domain":"dev","key":"k"}`, "Stampede.InvalidArgument", "project"},
		{transport.OpGet, `{"project":"ml","domain":"dev"}`, "Stampede.InvalidArgument", "key"},
		{transport.OpGet, `{"project":"ml","domain":"dev","key":"k","extra":1}`, "Stampede.InvalidArgument", "extra"},
		{transport.OpGet, `"just a string"`, "Stampede.InvalidArgument", "body"},
		{transport.OpGet, `{"project":"ml"`, "Stampede.InvalidArgument", "body"},
		{transport.OpPut, `{"project":"ml","domain":"dev","key":"k","output_uri":"s3://bucket/y"}`, "Stampede.AlreadyExists", "key"},
		{transport.OpPut, `{"project":"ml","domain":"dev","key":"k"}`, "Stampede.InvalidArgument", "output_uri"},
		{transport.OpReserve, `{"project":"ml","domain":"dev","key":"k","heartbeat_interval_seconds":-1,"owner_id":"o"}`, "Stampede.InvalidArgument", "heartbeat_interval_seconds"},
		{transport.OpRelease, `{"project":"ml","domain":"dev","key":"k"}`, "Stampede.InvalidArgument", "owner_id"},
		{transport.OpDelete, `{"project":"ml","domain":"dev","key":"k","padding":"` + strings.Repeat("x", 70000) + `"}`, "Stampede.PayloadTooLarge", "body"},
	}
	for _, tt := range tests {
		_, err := invoke(t, fns[tt.op], tt.payload)
		var lambdaErr messages.InvokeResponse_Error
		if !errors.As(err, &lambdaErr) || lambdaErr.Type != tt.typ {
			t.Errorf("%s %s: err = %v, want errorType %s", tt.op, tt.payload[:min(len(tt.payload), 60)], err, tt.typ)
			continue
		}
		var body struct {
			Error    struct{ Code, Message string }
			Existing map[string]any
		}
		if err := json.Unmarshal([]byte(lambdaErr.Message), &body); err != nil || !strings.HasPrefix(body.Error.Message, tt.field) {
			t.Errorf("%s: errorMessage %q does not name %q", tt.op, lambdaErr.Message, tt.field)
		}
		if tt.typ == "Stampede.AlreadyExists" && body.Existing["output_uri"] != "s3://bucket/x" {
			t.Errorf("conflict does not carry the existing entry: %s", lambdaErr.Message)
		}
	}
}

// faultyManager returns a manager whose DynamoDB client fails every request
// with err after the SDK's own handling (retries disabled). DynamoDB Local
// cannot throttle or fail on demand, so the fault is injected in the SDK
// middleware; the store's real error mapping still runs.
func faultyManager(t *testing.T, fault error) *manager.Manager {
	t.Helper()
	setup, _ := testenv.Client(t)
	table := testenv.Table(t, setup)
	client, _ := testenv.Client(t, func(o *dynamodb.Options) {
		o.RetryMaxAttempts = 1
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			return s.Finalize.Add(middleware.FinalizeMiddlewareFunc("InjectFault",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					return middleware.FinalizeOutput{}, middleware.Metadata{}, fault
				}), middleware.After)
		})
	})
	mgr, err := manager.New(dynamostore.New(client, table), manager.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return mgr
}

func TestStoreFaults(t *testing.T) {
	tests := []struct {
		name   string
		fault  error
		status int
		code   string
		typ    string
	}{
		{"throttled", &smithy.GenericAPIError{Code: "ProvisionedThroughputExceededException", Message: "slow down"}, 429, "throttled", "Stampede.Throttled"},
		{"request limit", &smithy.GenericAPIError{Code: "RequestLimitExceeded", Message: "account limit"}, 429, "throttled", "Stampede.Throttled"},
		{"deadline", context.DeadlineExceeded, 503, "unavailable", "Stampede.Unavailable"},
		{"other", errors.New("secret table arn:aws:dynamodb:eu-west-1:123456789012:table/x exploded"), 500, "internal", "Stampede.Internal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mgr := faultyManager(t, tt.fault)
			for _, op := range transport.Ops() {
				h := transport.NewFunction(mgr, op, transport.Options{Log: testLogger(t), Budget: testBudget})
				body := map[transport.Op]string{transport.OpPut: `{"output_uri":"s3://bucket/x"}`, transport.OpReserve: `{"owner_id":"o"}`}[op]
				query := map[transport.Op]string{transport.OpRelease: "owner_id=o"}[op]
				out, err := invoke(t, h, httpAPIEvent(routeOf(op), "ml", "dev", "k", query, body))
				if err != nil {
					t.Fatal(err)
				}
				resp := out.(events.APIGatewayV2HTTPResponse)
				if resp.StatusCode != tt.status || !strings.Contains(resp.Body, `"code":"`+tt.code+`"`) || strings.Contains(resp.Body, "123456789012") {
					t.Errorf("%s: %d %s", op, resp.StatusCode, resp.Body)
				}
			}
			_, err := invoke(t, transport.NewFunction(mgr, transport.OpGet, transport.Options{Log: testLogger(t), Budget: testBudget}), `{"project":"ml","domain":"dev","key":"k"}`)
			var lambdaErr messages.InvokeResponse_Error
			if !errors.As(err, &lambdaErr) || lambdaErr.Type != tt.typ || strings.Contains(lambdaErr.Message, "123456789012") {
				t.Errorf("direct: %v", err)
			}
		})
	}
}

func TestPanicsBecomeInternalErrors(t *testing.T) {
	// A nil manager panics on first use: the handler must answer 500, not crash.
	h := transport.NewFunction(nil, transport.OpGet, transport.Options{Log: testLogger(t)})
	out, err := invoke(t, h, httpAPIEvent(routeOf(transport.OpGet), "ml", "dev", "k", "", ""))
	if err != nil {
		t.Fatal(err)
	}
	if resp := out.(events.APIGatewayV2HTTPResponse); resp.StatusCode != http.StatusInternalServerError ||
		resp.Body != `{"error":{"code":"internal","message":"internal error"}}` {
		t.Fatalf("%#v", resp)
	}
	if _, err := invoke(t, h, `{"project":"ml","domain":"dev","key":"k"}`); !strings.Contains(err.Error(), "Stampede.Internal") {
		t.Fatalf("direct: %v", err)
	}
}

func TestMalformedEventsNeverFail(t *testing.T) {
	fns, _ := functions(t)
	payloads := []string{
		``, `null`, `[]`, `42`, `{"version":"2.0","routeKey":"GET /x","body":5}`,
		`{"httpMethod":"GET","resource":"/x","path":"/v1/projects/ml/domains/dev/cache/%zz"}`,
		`{"version":"2.0","routeKey":"$default","rawPath":"/v1/projects/ml/domains/dev/cache/k","requestContext":{"http":{"method":"GET"}},"body":"e30=","isBase64Encoded":true}`,
		`{"version":"2.0","routeKey":"$default","rawPath":"/v1/projects/ml/domains/dev/cache/k","requestContext":{"http":{"method":"PUT"}},"body":"!!!","isBase64Encoded":true}`,
	}
	for _, p := range payloads {
		for _, op := range transport.Ops() {

			out, err := invoke(t, fns[op], p)
			var lambdaErr messages.InvokeResponse_Error
			switch {
			case err != nil && errors.As(err, &lambdaErr):
				if lambdaErr.Type == "Stampede.Internal" {
					t.Errorf("%s %q: internal error %v", op, p, err)
				}
			case err != nil:
				t.Errorf("%s %q: %v", op, p, err)
			default:
				data, _ := json.Marshal(out)
				if strings.Contains(string(data), `"statusCode":5`) {
					t.Errorf("%s %q: %s", op, p, data)
				}
			}

		}
	}
}

func toJSON(v any) string {
	data, _ := json.Marshal(v)
	return string(data)
}

func TestHTTPAPIPayload1Events(t *testing.T) {
	// An HTTP API configured for payload 1.0 decodes the path, unlike a
	// REST API: "%25" must not be decoded twice.
	fns, _ := functions(t)
	if _, err := invoke(t, fns[transport.OpPut], `{"project":"ml","domain":"dev","key":"100%25 done","output_uri":"s3://bucket/x"}`); err != nil {
		t.Fatal(err)
	}
	route := routeOf(transport.OpGet)
	ev := map[string]any{
		"version": "1.0", "resource": route.Template, "httpMethod": "GET",
		"path":           "/v1/projects/ml/domains/dev/cache/100%25 done",
		"pathParameters": map[string]string{"project": "ml", "domain": "dev", "key": "100%25 done"},
	}
	out, err := invoke(t, fns[transport.OpGet], toJSON(ev))
	if err != nil {
		t.Fatal(err)
	}
	if resp := out.(events.APIGatewayProxyResponse); resp.StatusCode != 200 || !strings.Contains(resp.Body, `"key":"100%25 done"`) {
		t.Fatalf("%#v", resp)
	}
}
