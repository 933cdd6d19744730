package transport_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/stampede-cache/stampede/internal/transport"
)

// fuzzRoute picks one of the contract's routes.
func fuzzRoute(i uint8) transport.Route {
	routes := transport.Routes()
	return routes[int(i)%len(routes)]
}

// routePath fills a route template with a project, a domain and a key.
func routePath(r transport.Route, project, domain, key string) string {
	p := strings.Replace(r.Template, "{project}", project, 1)
	p = strings.Replace(p, "{domain}", domain, 1)
	return strings.Replace(p, "{key+}", key, 1)
}

// invokeWithin invokes h with a deadline, as Lambda does.
func invokeWithin(h *transport.Handler, payload []byte) (any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return h.Invoke(ctx, json.RawMessage(payload))
}

// FuzzHTTPAPIEvent invokes each function with HTTP API (payload 2.0) events
// as API Gateway builds them for a matched route: decoded path parameters,
// any query string, headers and body, base64-encoded or not.
func FuzzHTTPAPIEvent(f *testing.F) {
	f.Add(uint8(0), uint8(0), "fuzz", "dev", "k", "consistency=strong", "", "", `"1"`, false)
	f.Add(uint8(1), uint8(1), "fuzz", "dev", "a/b c", "", `{"output_uri":"s3://bucket/x","ttl_seconds":5}`, "idem-1", "", false)
	f.Add(uint8(1), uint8(1), "fuzz", "dev", "k", "", base64.StdEncoding.EncodeToString([]byte(`{"output_uri":"s3://bucket/\xff"}`)), "", "", true)
	f.Add(uint8(2), uint8(2), "fuzz", "dev", "k", "delete_blob=true", "", "", `"abc`, false)
	f.Add(uint8(3), uint8(3), "fuzz", "dev", "k?x", "", `{"owner_id":"w","heartbeat_interval_seconds":-1}`, "\x7f", "", false)
	f.Add(uint8(4), uint8(4), "fuzz", "dev", "k", "owner_id=w&owner_id=v", "", "", "", false)
	f.Add(uint8(0), uint8(4), "FUZZ", "-dev", "", "%zz", "{}", "", "", false)
	f.Add(uint8(5), uint8(0), "fuzz", "dev", "k", "", "", "", "", false)
	rig := newFuzzRig(f)
	f.Fuzz(func(t *testing.T, fn, route uint8, project, domain, key, query, body, idem, ifMatch string, isBase64 bool) {
		r := fuzzRoute(route)
		path := routePath(r, project, domain, key)
		ev := events.APIGatewayV2HTTPRequest{
			Version:        "2.0",
			RouteKey:       r.Key(),
			RawPath:        path,
			RawQueryString: query,
			Headers:        map[string]string{"content-type": "application/json"},
			PathParameters: map[string]string{"project": project, "domain": domain, "key": key},
			RequestContext: events.APIGatewayV2HTTPRequestContext{
				RouteKey: r.Key(),
				Stage:    "$default",
				HTTP:     events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: r.Method, Path: path},
			},
			Body:            body,
			IsBase64Encoded: isBase64,
		}
		if q, err := url.ParseQuery(query); err == nil && len(q) > 0 {
			ev.QueryStringParameters = map[string]string{}
			for k, v := range q {
				ev.QueryStringParameters[k] = strings.Join(v, ",")
			}
		}
		if idem != "" {
			ev.Headers["idempotency-key"] = idem
		}
		if ifMatch != "" {
			ev.Headers["if-match"] = ifMatch
			ev.Headers["if-none-match"] = ifMatch
		}
		payload, err := json.Marshal(ev)
		if err != nil {
			return
		}
		out, err := invokeWithin(rig.fn(fn), payload)
		if msg := checkInvokeAnswer(out, err); msg != "" {
			t.Fatalf("event %s\n  answered %+v %v\n  wrong: %s\n  log: %s", payload, out, err, msg, rig.log)
		}
	})
}

// FuzzRESTEvent invokes each function with REST API (payload 1.0) proxy
// events: the resource template, the path and its parameters still
// percent-encoded, single- and multi-value query parameters and headers.
func FuzzRESTEvent(f *testing.F) {
	f.Add(uint8(0), uint8(0), "fuzz", "dev", "a%2Fb", "consistency", "eventual", "", "", false)
	f.Add(uint8(1), uint8(1), "fuzz", "dev", "100%25", "", "", `{"output_uri":"s3://bucket/x"}`, `"3"`, false)
	f.Add(uint8(2), uint8(2), "fuzz", "dev", "%zz", "delete_blob", "yes", "", "", false)
	f.Add(uint8(3), uint8(3), "fuzz", "dev", "k", "", "", `{"owner_id":"w","owner_id":"v"}`, "", false)
	f.Add(uint8(4), uint8(4), "fuzz", "dev", "k", "owner_id", "%FF", "", "", true)
	f.Add(uint8(2), uint8(0), "fuzz", "dev%2F..", "k", "", "", "", "", false)
	rig := newFuzzRig(f)
	f.Fuzz(func(t *testing.T, fn, route uint8, project, domain, escapedKey, qName, qValue, body, ifMatch string, multi bool) {
		r := fuzzRoute(route)
		ev := events.APIGatewayProxyRequest{
			Resource:       r.Template,
			Path:           routePath(r, project, domain, escapedKey),
			HTTPMethod:     r.Method,
			Headers:        map[string]string{"Content-Type": "application/json"},
			PathParameters: map[string]string{"project": project, "domain": domain, "key": escapedKey},
			RequestContext: events.APIGatewayProxyRequestContext{Stage: "prod", ResourcePath: r.Template, HTTPMethod: r.Method},
			Body:           body,
		}
		if qName != "" {
			ev.QueryStringParameters = map[string]string{qName: qValue}
			if multi {
				ev.MultiValueQueryStringParameters = map[string][]string{qName: {qValue, qValue}}
			}
		}
		if ifMatch != "" {
			ev.Headers["If-Match"] = ifMatch
			ev.MultiValueHeaders = map[string][]string{"Idempotency-Key": {ifMatch}}
		}
		payload, err := json.Marshal(ev)
		if err != nil {
			return
		}
		out, err := invokeWithin(rig.fn(fn), payload)
		if msg := checkInvokeAnswer(out, err); msg != "" {
			t.Fatalf("event %s\n  answered %+v %v\n  wrong: %s\n  log: %s", payload, out, err, msg, rig.log)
		}
	})
}

// FuzzDirectInvocation invokes each function with any payload: direct
// invocations (Step Functions) and malformed events alike.
func FuzzDirectInvocation(f *testing.F) {
	seeds := []string{
		`{"project":"fuzz","domain":"dev","key":"k"}`,
		`{"project":"fuzz","domain":"dev","key":"k","consistency":"eventual","min_version":2,"max_staleness_ms":10,"verify":false}`,
		`{"project":"fuzz","domain":"dev","key":"k","output_uri":"s3://bucket/x","if_version":1,"idempotency_key":"i-1"}`,
		`{"project":"fuzz","domain":"dev","key":"k","if_version":9223372036854775807,"delete_blob":true}`,
		`{"project":"fuzz","domain":"dev","key":"k","owner_id":"w","heartbeat_interval_seconds":3}`,
		`{"project":"fuzz","domain":"dev","key":"k","owner_id":"w\u0000"}`,
		`{"project":"fuzz","domain":"dev","key":"k","Owner_ID":"w","owner_id":"v","owner_id":"v"}`,
		`{"project":"fuzz","domain":"dev","key":"k\ud800","output_uri":"s3://bucket/x"} trailing`,
		`{"version":"2.0","routeKey":"$default","rawPath":"/v1/projects/fuzz/domains/dev/cache/k","requestContext":{"http":{"method":"PUT"}},"body":"!!","isBase64Encoded":true}`,
		`{"httpMethod":"GET","resource":"/{proxy+}","path":"/v1/projects/fuzz/domains/dev/cache/%zz"}`,
		`{"version":"1.0","httpMethod":"DELETE","resource":"` + transport.ReservationRoute + `","path":"/v1/projects/fuzz/domains/dev/reservations/k","queryStringParameters":{"owner_id":"w"}}`,
		`null`, `[]`, `"x"`, `{}`, ``,
	}
	for i, s := range seeds {
		f.Add(uint8(i), []byte(s))
	}
	rig := newFuzzRig(f)
	f.Fuzz(func(t *testing.T, fn uint8, payload []byte) {
		out, err := invokeWithin(rig.fn(fn), payload)
		if msg := checkInvokeAnswer(out, err); msg != "" {
			t.Fatalf("payload %q\n  answered %+v %v\n  wrong: %s\n  log: %s", payload, out, err, msg, rig.log)
		}
	})
}
