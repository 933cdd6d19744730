package e2e_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stampede-cache/stampede/internal/faultproxy"
)

// TestLateSDKRetryLandsOnce pins down, deterministically, a history the
// fault run can meet by chance: DynamoDB applies a put and its answer is
// lost (a 500 after the write), a reader sees the put, four other writes
// of the key are acknowledged, and only then does the SDK's retry of the
// put reach DynamoDB. The put took effect once, before the reader; the
// last acknowledged write must survive its retry.
func TestLateSDKRetryLandsOnce(t *testing.T) {
	skipOnDeployment(t)
	seen := newLandings()
	srv := newProofServer(t, proofOptions{proxy: true, budget: 20 * time.Second, landings: seen})
	const tag = "late-retry"
	release := make(chan struct{})
	var attempts atomic.Int32
	srv.proxy.SetRules(faultproxy.Rules{Request: func(r faultproxy.Request) faultproxy.Fault {
		if r.Header.Get(opTagHeader) != tag {
			return faultproxy.Fault{}
		}
		if attempts.Add(1) == 1 {
			// Applied, then answered 500: the SDK retries.
			return faultproxy.DynamoDBError(http.StatusInternalServerError, "InternalServerError", "Internal server error", true)
		}
		// Retries wait here until the other writes are done.
		select {
		case <-release:
		case <-time.After(15 * time.Second):
		}
		return faultproxy.Fault{}
	}})
	put := func(uri string, tag string) answer {
		body := `{"output_uri":"s3://proof-outputs/` + uri + `","overwrite":true,"metadata":{"labels":{"put":"` + uri + `"}}}`
		return srv.send(httpRequest{method: "PUT", path: srv.path("cache", "late"), header: http.Header{}, body: body}, tag, time.Minute)
	}
	get := func() answer {
		return srv.send(httpRequest{method: "GET", path: srv.path("cache", "late"), header: http.Header{}}, "", time.Minute)
	}

	done := make(chan answer, 1)
	go func() { done <- put("a", tag) }()
	// The first attempt has landed once DynamoDB answered it.
	deadline := time.Now().Add(time.Minute)
	for attempts.Load() < 2 {
		if time.Now().After(deadline) {
			close(release)
			t.Fatal("the SDK never retried the put")
		}
		time.Sleep(10 * time.Millisecond)
	}
	read := get()
	var last string
	for i, uri := range []string{"w1", "w2", "w3", "w4"} {
		if a := put(uri, ""); a.err != nil || a.status != http.StatusOK {
			close(release)
			t.Fatalf("write %d: %s", i+1, a)
		}
		last = uri
	}
	close(release)
	answerA := <-done
	final := get()
	t.Logf("put a: %s\nread during its retry: %s\nafter w1..w4 and the retry: %s", answerA, read, final)
	if !strings.Contains(string(read.body), `"put":"a"`) {
		t.Fatalf("the read during the retry should see put a (its first attempt landed): %s", read)
	}
	if answerA.status >= 300 && answerA.status != http.StatusServiceUnavailable {
		t.Errorf("put a answered %s; its first attempt landed", answerA)
	}
	if !strings.Contains(string(final.body), `"put":"`+last+`"`) {
		t.Errorf("request: PUT …/cache/late {\"output_uri\":\"s3://proof-outputs/a\",\"overwrite\":true} (DynamoDB applies it, answers 500; the SDK retry lands after 4 other acknowledged overwrites)\n"+
			"      expected: the last acknowledged write %s survives (put a took effect before a reader saw it)\n"+
			"      got: put a answered %s; the entry is now %s", last, abbreviate(answerA.String()), abbreviate(final.String()))
	}
}
