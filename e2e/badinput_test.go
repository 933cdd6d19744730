package e2e_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// hostile is one request of the bad-input catalogue, sent as raw bytes so
// nothing on the client side cleans it up.
type hostile struct {
	name   string
	method string
	// path is the request target after /v1/projects/proof/domains/<domain>,
	// exactly as sent; a path starting with "!" is sent as is, without the
	// prefix.
	path   string
	header string // raw header lines, each ending in \r\n
	body   string
	// chunked sends the body with chunked transfer encoding.
	chunked bool

	status int
	code   string
	// fields are the names the error message may start with.
	fields []string
}

func f(names ...string) []string { return names }

// badInputs is the catalogue: every way a client can get a request wrong,
// each answered 4xx with the JSON error naming what was wrong.
func badInputs() []hostile {
	const uri = `"output_uri":"s3://proof-outputs/x"`
	put := func(name, body string, fields ...string) hostile {
		return hostile{name: name, method: "PUT", path: "/cache/cat", body: body, status: 400, code: "invalid_argument", fields: fields}
	}
	reserve := func(name, body string, fields ...string) hostile {
		return hostile{name: name, method: "POST", path: "/reservations/cat", body: body, status: 400, code: "invalid_argument", fields: fields}
	}
	at := func(name, method, path string, status int, code string, fields ...string) hostile {
		return hostile{name: name, method: method, path: path, status: status, code: code, fields: fields}
	}
	withHeader := func(h hostile, header string) hostile {
		h.header = header
		return h
	}
	// withBody gives a request a valid body, so only its path is wrong.
	withBody := func(h hostile, body string) hostile {
		h.body = body
		return h
	}
	manyLabels := make([]string, 65)
	for i := range manyLabels {
		manyLabels[i] = fmt.Sprintf(`"l%d":"v"`, i)
	}
	return []hostile{
		// Invalid UTF-8 in every string field, and in a member name.
		put("invalid UTF-8 in output_uri", `{"output_uri":"s3://proof-outputs/a`+"\xff"+`"}`, "output_uri"),
		put("invalid UTF-8 in owner_id", `{`+uri+`,"owner_id":"w-`+"\xfe"+`"}`, "owner_id"),
		put("invalid UTF-8 in a label value", `{`+uri+`,"metadata":{"labels":{"a":"`+"\xc3\x28"+`"}}}`, "metadata"),
		put("invalid UTF-8 in a label key", `{`+uri+`,"metadata":{"labels":{"`+"\xff"+`":"v"}}}`, "metadata"),
		put("invalid UTF-8 in metadata.source.name", `{`+uri+`,"metadata":{"source":{"name":"`+"\xed\xa0\x80"+`"}}}`, "metadata"),
		put("invalid UTF-8 in a member name", `{`+uri+`,"o`+"\xff"+`":1}`, "*"),
		reserve("invalid UTF-8 in a reserve's owner_id", `{"owner_id":"worker-`+"\xff"+`"}`, "owner_id"),
		reserve("a lone surrogate escape in owner_id", `{"owner_id":"worker-\ud800"}`, "owner_id"),
		put("a lone surrogate escape in a label", `{`+uri+`,"metadata":{"labels":{"a":"\udfff"}}}`, "metadata"),
		// Duplicate member names.
		put("duplicate output_uri", `{"output_uri":"s3://proof-outputs/a","output_uri":"s3://proof-outputs/b"}`, "output_uri"),
		put("duplicate overwrite", `{`+uri+`,"overwrite":false,"overwrite":true}`, "overwrite"),
		put("duplicate label", `{`+uri+`,"metadata":{"labels":{"a":"1","a":"2"}}}`, "metadata"),
		reserve("duplicate owner_id", `{"owner_id":"a","owner_id":"b"}`, "owner_id"),
		// Member names in the wrong letter case.
		put("Output_URI", `{"Output_URI":"s3://proof-outputs/x"}`, "Output_URI", "output_uri"),
		put("OVERWRITE", `{`+uri+`,"OVERWRITE":true}`, "OVERWRITE", "overwrite"),
		reserve("Owner_Id", `{"Owner_Id":"w"}`, "Owner_Id", "owner_id"),
		put("Metadata.Labels", `{`+uri+`,"metadata":{"Labels":{"a":"b"}}}`, "metadata", "Labels"),
		// Unknown members, trailing data, not JSON.
		put("unknown member", `{`+uri+`,"colour":"red"}`, "colour"),
		put("unknown nested member", `{`+uri+`,"metadata":{"source":{"team":"x"}}}`, "metadata", "team"),
		put("trailing object", `{`+uri+`}{}`, "body"),
		put("trailing garbage", `{`+uri+`} x`, "body"),
		put("not JSON", `output_uri=s3://proof-outputs/x`, "body"),
		put("a JSON array", `["s3://proof-outputs/x"]`, "body"),
		put("a byte-order mark", "\xef\xbb\xbf{"+uri+"}", "body"),
		put("truncated JSON", `{"output_uri":"s3://proof`, "body"),
		put("nested 10000 deep", strings.Repeat("[", 10000)+strings.Repeat("]", 10000), "body"),
		// Wrong types.
		put("output_uri a number", `{"output_uri":42}`, "output_uri"),
		put("output_uri null", `{"output_uri":null}`, "output_uri"),
		put("overwrite a string", `{`+uri+`,"overwrite":"true"}`, "overwrite"),
		put("ttl_seconds a string", `{`+uri+`,"ttl_seconds":"60"}`, "ttl_seconds"),
		put("metadata a string", `{`+uri+`,"metadata":"x"}`, "metadata"),
		put("a label a number", `{`+uri+`,"metadata":{"labels":{"a":1}}}`, "metadata"),
		put("fence a string", `{`+uri+`,"owner_id":"w","fence":"7"}`, "fence"),
		reserve("owner_id an object", `{"owner_id":{"id":"w"}}`, "owner_id"),
		reserve("heartbeat a string", `{"owner_id":"w","heartbeat_interval_seconds":"10"}`, "heartbeat_interval_seconds"),
		// Numbers out of range.
		put("ttl_seconds a fraction", `{`+uri+`,"ttl_seconds":1.5}`, "ttl_seconds"),
		put("ttl_seconds overflowing int64", `{`+uri+`,"ttl_seconds":99999999999999999999}`, "ttl_seconds"),
		put("ttl_seconds 1e400", `{`+uri+`,"ttl_seconds":1e400}`, "ttl_seconds"),
		put("ttl_seconds zero", `{`+uri+`,"ttl_seconds":0}`, "ttl_seconds"),
		put("ttl_seconds past ten years", `{`+uri+`,"ttl_seconds":315360001}`, "ttl_seconds"),
		put("max_age_seconds negative", `{`+uri+`,"max_age_seconds":-1}`, "max_age_seconds"),
		put("fence overflowing int64", `{`+uri+`,"owner_id":"w","fence":9223372036854775808}`, "fence"),
		reserve("heartbeat zero", `{"owner_id":"w","heartbeat_interval_seconds":0}`, "heartbeat_interval_seconds"),
		reserve("heartbeat overflowing", `{"owner_id":"w","heartbeat_interval_seconds":1e30}`, "heartbeat_interval_seconds"),
		// Missing or inconsistent fields, and values out of bounds.
		put("no output_uri", `{}`, "output_uri"),
		put("output_uri not s3", `{"output_uri":"https://example.com/x"}`, "output_uri"),
		put("output_uri past 2048 bytes", `{"output_uri":"s3://proof-outputs/`+strings.Repeat("x", 2040)+`"}`, "output_uri"),
		put("output_uri with a NUL", `{"output_uri":"s3://proof-outputs/a\u0000b"}`, "output_uri"),
		put("fence without owner_id", `{`+uri+`,"fence":3}`, "fence"),
		put("release without owner_id", `{`+uri+`,"release":true}`, "release"),
		put("owner_id empty", `{`+uri+`,"owner_id":""}`, "owner_id"),
		put("owner_id past 256 bytes", `{`+uri+`,"owner_id":"`+strings.Repeat("w", 257)+`"}`, "owner_id"),
		put("65 labels", `{`+uri+`,"metadata":{"labels":{`+strings.Join(manyLabels, ",")+`}}}`, "metadata"),
		put("an empty label key", `{`+uri+`,"metadata":{"labels":{"":"v"}}}`, "metadata"),
		put("a label value past 1024 bytes", `{`+uri+`,"metadata":{"labels":{"a":"`+strings.Repeat("v", 1025)+`"}}}`, "metadata"),
		reserve("no owner_id", `{}`, "owner_id"),
		reserve("owner_id with a control character", `{"owner_id":"w\u0007"}`, "owner_id"),
		// Oversized bodies.
		{name: "body past 64 KiB", method: "PUT", path: "/cache/cat", body: `{` + uri + `,"metadata":{"labels":{"a":"` + strings.Repeat("x", 70000) + `"}}}`,
			status: 413, code: "payload_too_large", fields: f("body")},
		{name: "chunked body past 64 KiB", method: "PUT", path: "/cache/cat", chunked: true, body: `{` + uri + `,"metadata":{"labels":{"a":"` + strings.Repeat("x", 70000) + `"}}}`,
			status: 413, code: "payload_too_large", fields: f("body")},
		// Keys and names.
		// Go's HTTP server refuses these itself, before any handler: the
		// message can name only the request.
		at("bad percent-encoding in the key", "GET", "/cache/a%zzb", 400, "invalid_argument", "key", "path", "request"),
		withBody(at("truncated percent-encoding in the key", "PUT", "/cache/a%2", 400, "invalid_argument", "key", "path", "request"), `{`+uri+`}`),
		at("bad percent-encoding in the project", "GET", "!/v1/projects/pr%zz/domains/d/cache/k", 400, "invalid_argument", "project", "path", "request"),
		at("a NUL in the key", "GET", "/cache/a%00b", 400, "invalid_argument", "key"),
		at("a newline in the key", "DELETE", "/cache/a%0Ab", 400, "invalid_argument", "key"),
		withBody(at("invalid UTF-8 in the key", "POST", "/reservations/a%FFb", 400, "invalid_argument", "key"), `{"owner_id":"w"}`),
		at("a key past 1024 bytes", "GET", "/cache/"+strings.Repeat("k", 1025), 400, "invalid_argument", "key"),
		at("an empty key", "GET", "/cache/", 400, "invalid_argument", "key"),
		at("an upper-case project", "GET", "!/v1/projects/Proof/domains/d/cache/k", 400, "invalid_argument", "project"),
		at("a project past 63 characters", "GET", "!/v1/projects/"+strings.Repeat("p", 64)+"/domains/d/cache/k", 400, "invalid_argument", "project"),
		at("a domain starting with _", "GET", "!/v1/projects/proof/domains/_d/cache/k", 400, "invalid_argument", "domain"),
		at("a project with a space", "GET", "!/v1/projects/pr%20oof/domains/d/cache/k", 400, "invalid_argument", "project"),
		// Traversal: dot segments are never resolved, a scope never escaped.
		withBody(at("dot-dot out of the domain", "PUT", "!/v1/projects/proof/domains/d/../../projects/other/domains/d/cache/k", 404, "not_found", "path"), `{`+uri+`}`),
		withBody(at("dot-dot as the project", "PUT", "!/v1/projects/../domains/d/cache/k", 400, "invalid_argument", "project"), `{`+uri+`}`),
		withBody(at("an encoded slash in the project", "PUT", "!/v1/projects/proof%2F..%2Fother/domains/d/cache/k", 400, "invalid_argument", "project"), `{`+uri+`}`),
		withBody(at("a NUL in the key of a put", "PUT", "/cache/a%00b", 400, "invalid_argument", "key"), `{`+uri+`}`),
		// Query parameters.
		at("an unknown query parameter", "GET", "/cache/cat?colour=red", 400, "invalid_argument", "colour"),
		at("an unknown query parameter on a put", "PUT", "/cache/cat?overwrite=true", 400, "invalid_argument", "overwrite"),
		at("a repeated query parameter", "GET", "/cache/cat?consistency=strong&consistency=eventual", 400, "invalid_argument", "consistency"),
		at("consistency misspelt", "GET", "/cache/cat?consistency=Strong", 400, "invalid_argument", "consistency"),
		at("min_version not a number", "GET", "/cache/cat?consistency=eventual&min_version=abc", 400, "invalid_argument", "min_version"),
		at("min_version overflowing", "GET", "/cache/cat?consistency=eventual&min_version=99999999999999999999", 400, "invalid_argument", "min_version"),
		at("max_staleness_ms zero", "GET", "/cache/cat?max_staleness_ms=0", 400, "invalid_argument", "max_staleness_ms"),
		at("max_staleness_ms with strong reads", "GET", "/cache/cat?consistency=strong&max_staleness_ms=10", 400, "invalid_argument", "max_staleness_ms"),
		at("bad percent-encoding in the query", "GET", "/cache/cat?%zz=1", 400, "invalid_argument", "query"),
		at("delete_blob not a boolean", "DELETE", "/cache/cat?delete_blob=maybe", 400, "invalid_argument", "delete_blob"),
		at("release without owner_id", "DELETE", "/reservations/cat", 400, "invalid_argument", "owner_id"),
		at("release with invalid UTF-8 in owner_id", "DELETE", "/reservations/cat?owner_id=%FF", 400, "invalid_argument", "owner_id"),
		{name: "a body on a release", method: "DELETE", path: "/reservations/cat?owner_id=w", body: `{"owner_id":"w"}`, status: 400, code: "invalid_argument", fields: f("body")},
		{name: "a body on a get", method: "GET", path: "/cache/cat", body: `{}`, status: 400, code: "invalid_argument", fields: f("body")},
		// Validators.
		withHeader(put("If-Match unterminated", `{`+uri+`}`, "If-Match"), "If-Match: \"1\r\n"),
		withHeader(put("If-Match unquoted", `{`+uri+`}`, "If-Match"), "If-Match: 1\r\n"),
		withHeader(put("If-Match weak", `{`+uri+`}`, "If-Match"), "If-Match: W/\"1\"\r\n"),
		withHeader(put("If-Match a list", `{`+uri+`}`, "If-Match"), "If-Match: \"1\", \"2\"\r\n"),
		withHeader(put("If-Match a star", `{`+uri+`}`, "If-Match"), "If-Match: *\r\n"),
		withHeader(put("If-Match not a number", `{`+uri+`}`, "If-Match"), "If-Match: \"abc\"\r\n"),
		withHeader(put("If-Match overflowing", `{`+uri+`}`, "If-Match"), "If-Match: \"99999999999999999999\"\r\n"),
		withHeader(at("If-Match unterminated on a delete", "DELETE", "/cache/cat", 400, "invalid_argument", "If-Match"), "If-Match: \"1\r\n"),
		withHeader(at("If-None-Match unterminated", "GET", "/cache/cat", 400, "invalid_argument", "If-None-Match"), "If-None-Match: \"1\r\n"),
		withHeader(at("If-None-Match unquoted", "GET", "/cache/cat", 400, "invalid_argument", "If-None-Match"), "If-None-Match: abc\r\n"),
		// Idempotency keys.
		withHeader(put("Idempotency-Key past 255 characters", `{`+uri+`}`, "Idempotency-Key"), "Idempotency-Key: "+strings.Repeat("i", 256)+"\r\n"),
		withHeader(put("Idempotency-Key with a space", `{`+uri+`}`, "Idempotency-Key"), "Idempotency-Key: a b\r\n"),
		withHeader(reserve("Idempotency-Key not ASCII", `{"owner_id":"w"}`, "Idempotency-Key"), "Idempotency-Key: clé\r\n"),
		withHeader(at("Idempotency-Key not ASCII on a release", "DELETE", "/reservations/cat?owner_id=w", 400, "invalid_argument", "Idempotency-Key"), "Idempotency-Key: \xff\r\n"),
		// Methods and routes.
		at("PATCH an entry", "PATCH", "/cache/cat", 404, "not_found", "path"),
		at("POST an entry", "POST", "/cache/cat", 404, "not_found", "path"),
		at("PUT a reservation", "PUT", "/reservations/cat", 404, "not_found", "path"),
		at("an unknown collection", "GET", "/entries/cat", 404, "not_found", "path"),
		at("the root", "GET", "!/", 404, "not_found", "path"),
		at("an unknown version", "GET", "!/v2/projects/proof/domains/d/cache/k", 404, "not_found", "path"),
	}
}

// TestBadInputCatalogue sends every request of the catalogue to the local
// server as raw bytes and checks that each is answered with its status and
// error code, a JSON error naming the field, and Stampede-Request-Id; that
// nothing was stored; and that the server still answers a good request.
func TestBadInputCatalogue(t *testing.T) {
	skipOnDeployment(t)
	srv := newProofServer(t, proofOptions{})
	cases := badInputs()
	if len(cases) < 60 {
		t.Fatalf("the catalogue holds %d requests, want at least 60", len(cases))
	}
	addr := strings.TrimPrefix(srv.url, "http://")
	prefix := "/v1/projects/" + proofProject + "/domains/" + srv.domain
	stored := countItems(t, srv)
	for i, h := range cases {
		t.Run(h.name, func(t *testing.T) {
			// Each request has a key of its own, so one wrongly stored
			// request cannot change another's answer.
			target := prefix + strings.Replace(h.path, "/cat", fmt.Sprintf("/cat-%d", i), 1)
			if strings.HasPrefix(h.path, "!") {
				target = h.path[1:]
			}
			resp, body, err := sendRaw(addr, h, target)
			if err != nil {
				t.Fatalf("%s %s: %v", h.method, target, err)
			}
			if msg := checkErrorAnswer(resp, body, h.status, h.code, h.fields); msg != "" {
				t.Errorf("%s %s\n      want: %d %s naming %s\n      got:  %d %s\n      %s",
					h.method, abbreviate(target), h.status, h.code, strings.Join(h.fields, " or "), resp.StatusCode, abbreviate(string(body)), msg)
			}
			if resp.Header.Get("Stampede-Request-Id") == "" {
				t.Errorf("%s %s: no Stampede-Request-Id on the answer", h.method, abbreviate(target))
			}
			if n := countItems(t, srv); n != stored {
				t.Errorf("%s %s: the table holds %d items, %d before; a refused request must store nothing", h.method, abbreviate(target), n, stored)
				stored = n
			}
			healthy(t, srv)
		})
	}
}

// sendRaw writes the request byte for byte and reads the answer.
func sendRaw(addr string, h hostile, target string) (*http.Response, []byte, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	var req strings.Builder
	fmt.Fprintf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\n%sConnection: close\r\n", h.method, target, addr, h.header)
	if h.chunked {
		req.WriteString("Transfer-Encoding: chunked\r\n\r\n")
		for rest := h.body; rest != ""; {
			n := min(len(rest), 4096)
			fmt.Fprintf(&req, "%x\r\n%s\r\n", n, rest[:n])
			rest = rest[n:]
		}
		req.WriteString("0\r\n\r\n")
	} else {
		fmt.Fprintf(&req, "Content-Length: %d\r\n\r\n%s", len(h.body), h.body)
	}
	if _, err := io.WriteString(conn, req.String()); err != nil {
		return nil, nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// checkErrorAnswer checks the status, the JSON error shape, the code and
// that the message starts with one of fields ("*": any); "" when all hold.
func checkErrorAnswer(resp *http.Response, body []byte, status int, code string, fields []string) string {
	var e struct {
		Error *struct {
			Code    *string `json:"code"`
			Message *string `json:"message"`
		} `json:"error"`
	}
	switch {
	case resp.StatusCode != status:
		return "wrong status"
	case resp.Header.Get("Content-Type") != "application/json":
		return fmt.Sprintf("Content-Type %q, not application/json", resp.Header.Get("Content-Type"))
	case json.Unmarshal(body, &e) != nil || e.Error == nil || e.Error.Code == nil || e.Error.Message == nil:
		return `not the JSON error shape {"error":{"code":…,"message":…}}`
	case *e.Error.Code != code:
		return "wrong code"
	}
	for _, field := range fields {
		if field == "*" || strings.HasPrefix(*e.Error.Message, field+":") || strings.HasPrefix(*e.Error.Message, field+".") {
			return ""
		}
	}
	return "the message does not start with the field"
}

func abbreviate(s string) string {
	if len(s) > 160 {
		return fmt.Sprintf("%s…(%d bytes)", s[:160], len(s))
	}
	return s
}

// countItems counts the items in the server's table.
func countItems(t *testing.T, srv *proofServer) int32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := srv.direct.Scan(ctx, &dynamodb.ScanInput{TableName: &srv.table, Select: "COUNT"})
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	return out.Count
}

// healthy checks the server still answers a good request correctly.
func healthy(t *testing.T, srv *proofServer) {
	t.Helper()
	a := srv.send(httpRequest{method: "GET", path: srv.path("cache", "health/"+url.PathEscape("ü"))}, "", 30*time.Second)
	if a.err != nil || a.status != http.StatusNotFound || !strings.Contains(string(a.body), `"not_found"`) {
		t.Errorf("the server is unwell after the request: a plain get answered %s", a)
	}
}
