package transport_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// FuzzServeHTTP sends the local server's handler any request a real HTTP
// server would pass it: any method, request target, validators,
// Idempotency-Key and body.
func FuzzServeHTTP(f *testing.F) {
	const p = "/v1/projects/fuzz/domains/dev"
	seeds := []struct {
		method, target, ifMatch, ifNoneMatch, idem, body string
	}{
		{"GET", p + "/cache/k", "", "", "", ""},
		{"GET", p + "/cache/a/b%2Fc?consistency=eventual&min_version=3", "", `"3"`, "", ""},
		{"GET", p + "/cache/k?max_staleness_ms=500&verify=true", "", `W/"1", "2"`, "", ""},
		{"PUT", p + "/cache/k", "", "", "put-1", `{"output_uri":"s3://bucket/k","metadata":{"source":{"name":"t"},"labels":{"a":"b"}},"ttl_seconds":60}`},
		{"PUT", p + "/cache/k", `"1"`, "", "", `{"output_uri":"s3://bucket/k2","overwrite":true}`},
		{"PUT", p + "/cache/k", "", "", "", `{"output_uri":"s3://bucket/k","owner_id":"w","fence":3,"release":true}`},
		{"PUT", p + "/cache/k", "", "", "", `{"output_uri":"s3://bucket/k","max_age_seconds":0,"delete_blob":true,"verify_output":true}`},
		{"PUT", p + "/cache/k", "", "", "", `{"output_uri":"s3://bucket/\xff","output_uri":"x","Overwrite":true}`},
		{"DELETE", p + "/cache/k?delete_blob=false", `"2"`, "", "del-1", ""},
		{"POST", p + "/reservations/k", "", "", "res-1", `{"owner_id":"w","heartbeat_interval_seconds":5}`},
		{"POST", p + "/reservations/k", "", "", "", `{"owner_id":"w-\ud800","heartbeat_interval_seconds":1e30}`},
		{"DELETE", p + "/reservations/k?owner_id=w", "", "", "rel-1", ""},
		{"GET", p + "/reservations/k", "", "", "", ""},
		{"PATCH", p + "/cache/k", "", "", "", "{}"},
		{"GET", "/v1/projects/Fuzz/domains/dev/cache/a%00b", "", "", "", ""},
		{"GET", p + "/cache/%C3%28?%zz", `"1`, `"1`, strings.Repeat("i", 256), ""},
		{"PUT", p + "/cache/k", "", "", "", strings.Repeat("[", 5000)},
	}
	for _, s := range seeds {
		f.Add(s.method, s.target, s.ifMatch, s.ifNoneMatch, s.idem, []byte(s.body))
	}
	rig := newFuzzRig(f)
	f.Fuzz(func(t *testing.T, method, target, ifMatch, ifNoneMatch, idem string, body []byte) {
		req, ok := serverRequest(method, target, body)
		if !ok {
			// net/http refuses it before any handler runs.
			return
		}
		for name, v := range map[string]string{"If-Match": ifMatch, "If-None-Match": ifNoneMatch, "Idempotency-Key": idem} {
			if v != "" {
				if !validHeaderValue(v) {
					return
				}
				req.Header.Set(name, v)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		rec := httptest.NewRecorder()
		rig.router.ServeHTTP(rec, req.WithContext(ctx))
		if msg := checkHTTPAnswer(rec.Code, rec.Header().Get("Content-Type"), rec.Body.String()); msg != "" {
			t.Fatalf("%s %s (If-Match %q, If-None-Match %q, Idempotency-Key %q) %q\n  answered %d %s\n  wrong: %s\n  log: %s",
				method, target, ifMatch, ifNoneMatch, idem, body, rec.Code, rec.Body.String(), msg, rig.log)
		}
	})
}

// serverRequest builds the request net/http's server would hand a handler
// for this request line and body; false when the server would refuse it.
func serverRequest(method, target string, body []byte) (*http.Request, bool) {
	if method == "" || strings.IndexFunc(method, func(r rune) bool { return !isTokenChar(r) }) >= 0 {
		return nil, false
	}
	if target == "" || target[0] != '/' || strings.ContainsAny(target, " \r\n\x00") {
		return nil, false
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, false
	}
	return &http.Request{
		Method:        method,
		URL:           u,
		RequestURI:    target,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Host:          "127.0.0.1:8080",
		RemoteAddr:    "127.0.0.1:50000",
	}, true
}

// isTokenChar reports whether r may appear in an HTTP method (RFC 9110 token).
func isTokenChar(r rune) bool {
	return r < 0x7f && r > 0x20 && !strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r)
}

// validHeaderValue reports whether net/http's server accepts v as a header
// value: no control characters but tab.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
