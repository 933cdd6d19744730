package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stampede-cache/stampede/client"
	"github.com/stampede-cache/stampede/internal/manager"
	"github.com/stampede-cache/stampede/internal/testenv"
	"github.com/stampede-cache/stampede/internal/transport"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// envRunMain makes the test binary act as the stampede command, so
// multi-process tests need no separate build.
const envRunMain = "STAMPEDE_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envRunMain) == "1" {
		main()
		return
	}
	// The developer's own settings must not leak into the tests.
	for _, name := range []string{envEndpoint, envProject, envDomain, envSigV4, envOwnerID} {
		os.Unsetenv(name)
	}
	clientOptions = []client.Option{client.WithRetry(2, time.Millisecond, time.Millisecond)}
	os.Exit(testenv.Main(m))
}

// epoch is the golden tests' server time.
var epoch = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// startAPI starts the local API over a fresh table, with 1 s heartbeats
// expiring after three; clock may be nil (real time).
func startAPI(t *testing.T, clock func() time.Time) string {
	t.Helper()
	store, _ := testenv.Store(t)
	mgr, err := manager.New(store, manager.Config{HeartbeatMultiplier: 3, MaxHeartbeat: time.Second, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(transport.NewRouter(mgr, transport.Options{Log: slog.New(slog.DiscardHandler)}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// cliCase is one command run whose output is compared with a golden file.
type cliCase struct {
	name string
	// setup runs first, output ignored (the common flags are added).
	setup [][]string
	args  []string
	// raw leaves out the common flags (--endpoint, --project, --domain).
	raw bool
	env map[string]string
}

// withCommon inserts the common flags after the subcommand.
func withCommon(url string, args []string) []string {
	out := []string{args[0], "--endpoint", url, "--project", "proj", "--domain", "dev"}
	return append(out, args[1:]...)
}

func TestCLIGolden(t *testing.T) {
	clock := testenv.NewClock(epoch)
	url := startAPI(t, clock.Now)
	fail := `echo "failing on purpose" >&2; exit 3`
	cases := []cliCase{
		// get, put, delete
		{name: "get_miss", args: []string{"get", "models/resnet"}},
		{name: "put_created", args: []string{"put", "--output-uri", "s3://bucket/models/resnet/1", "--label", "team=ml", "--label", "stage=dev",
			"--source-project", "ml", "--source-name", "train", "--source-version", "v1", "--ttl", "720h", "models/resnet"}},
		{name: "put_conflict", args: []string{"put", "--output-uri", "s3://bucket/models/resnet/2", "models/resnet"}},
		{name: "put_overwrite_json", args: []string{"put", "--json", "--overwrite", "--output-uri", "s3://bucket/models/resnet/2", "models/resnet"}},
		{name: "put_if_match_stale", args: []string{"put", "--if-match", "1", "--output-uri", "s3://bucket/models/resnet/3", "models/resnet"}},
		{name: "get_eventual", args: []string{"get", "--consistency", "eventual", "--min-version", "2", "models/resnet"}},
		{name: "put_invalid_uri", args: []string{"put", "--output-uri", "s3://NOPE/x", "models/resnet"}},
		{name: "get_hit", args: []string{"get", "models/resnet"}},
		{name: "get_hit_json", args: []string{"get", "--json", "--key", "models/resnet"}},
		{name: "get_weird_key", setup: [][]string{{"put", "--output-uri", "s3://bucket/weird", "a b/c%2F?#ü"}}, args: []string{"get", "--", "a b/c%2F?#ü"}},
		{name: "delete_if_match_stale", args: []string{"delete", "--if-match", "1", "models/resnet"}},
		{name: "delete", args: []string{"delete", "models/resnet"}},
		{name: "delete_missing_json", args: []string{"delete", "--json", "models/resnet"}},
		// reserve, release
		{name: "reserve_acquired", args: []string{"reserve", "--owner", "worker-1", "--heartbeat", "1s", "jobs/a"}},
		{name: "reserve_contended", args: []string{"reserve", "--owner", "worker-2", "jobs/a"}},
		{name: "reserve_json", args: []string{"reserve", "--json", "--owner", "worker-1", "jobs/a"}},
		{name: "reserve_owner_from_env", args: []string{"reserve", "jobs/b"}, env: map[string]string{envOwnerID: "env-owner"}},
		{name: "put_fenced_not_holder", setup: [][]string{{"reserve", "--owner", "worker-1", "jobs/c"}},
			args: []string{"put", "--owner", "worker-2", "--output-uri", "s3://bucket/jobs/c", "jobs/c"}},
		{name: "put_fenced_release", args: []string{"put", "--owner", "worker-1", "--fence", "1795262400001", "--release", "--output-uri", "s3://bucket/jobs/c", "jobs/c"}},
		{name: "put_fenced_not_reserved", args: []string{"put", "--owner", "worker-1", "--overwrite", "--output-uri", "s3://bucket/jobs/c", "jobs/c"}},
		{name: "release_not_holder", args: []string{"release", "--owner", "worker-2", "jobs/a"}},
		{name: "release", args: []string{"release", "--owner", "worker-1", "jobs/a"}},
		{name: "release_json", args: []string{"release", "--json", "--owner", "worker-1", "jobs/a"}},
		// run
		{name: "run_miss_output_uri_flag", args: []string{"run", "--key", "run/flag", "--owner", "w", "--output-uri", "s3://bucket/run/flag", "--",
			"sh", "-c", `echo "computing $STAMPEDE_KEY as $STAMPEDE_OWNER_ID with fence $STAMPEDE_FENCE"`}},
		{name: "run_hit", args: []string{"run", "--key", "run/flag", "--owner", "w", "--", "sh", "-c", "echo must not run"}},
		{name: "run_output_uri_file", args: []string{"run", "--key", "run/file", "--owner", "w", "--output-uri", "s3://bucket/ignored", "--label", "by=run", "--",
			"sh", "-c", `echo s3://bucket/run/file > "$STAMPEDE_OUTPUT_URI_FILE"`}},
		{name: "run_json", args: []string{"run", "--json", "--quiet", "--key", "run/file", "--", "false"}},
		{name: "run_command_fails", args: []string{"run", "--key", "run/fail", "--owner", "w", "--", "sh", "-c", fail}},
		{name: "run_after_failure", args: []string{"run", "--key", "run/fail", "--owner", "w2", "--output-uri", "s3://bucket/run/fail", "--", "true"}},
		{name: "run_no_output_uri", args: []string{"run", "--key", "run/none", "--owner", "w", "--", "true"}},
		{name: "run_command_not_found", args: []string{"run", "--key", "run/none", "--owner", "w", "--", "/nonexistent/command"}},
		{name: "run_two_uris", args: []string{"run", "--key", "run/none", "--owner", "w", "--", "sh", "-c", `printf 's3://bucket/a\ns3://bucket/b\n' > "$STAMPEDE_OUTPUT_URI_FILE"`}},
		// failures and usage errors
		{name: "unreachable", raw: true, args: []string{"get", "--endpoint", "http://127.0.0.1:1", "--project", "proj", "--domain", "dev", "k"}},
		{name: "usage_no_command", raw: true, args: []string{}},
		{name: "usage_unknown_command", raw: true, args: []string{"fetch"}},
		{name: "usage_get_no_key", args: []string{"get"}},
		{name: "usage_get_two_keys", args: []string{"get", "a", "b"}},
		{name: "usage_get_key_twice", args: []string{"get", "--key", "a", "b"}},
		{name: "usage_no_project", raw: true, args: []string{"get", "--domain", "dev", "k"}},
		{name: "usage_bad_flag", args: []string{"get", "--nope", "k"}},
		{name: "usage_bad_sigv4", args: []string{"get", "--sigv4", "maybe", "k"}},
		{name: "usage_bad_endpoint", raw: true, args: []string{"get", "--endpoint", "localhost:8080", "--project", "p", "--domain", "d", "k"}},
		{name: "usage_get_bad_consistency", args: []string{"get", "--consistency", "linearizable", "k"}},
		{name: "usage_put_fence_without_owner", args: []string{"put", "--fence", "3", "--output-uri", "s3://bucket/k", "k"}},
		{name: "usage_put_no_uri", args: []string{"put", "k"}},
		{name: "usage_put_bad_label", args: []string{"put", "--output-uri", "s3://bucket/k", "--label", "novalue", "k"}},
		{name: "usage_release_no_owner", args: []string{"release", "k"}},
		{name: "usage_run_no_key", args: []string{"run", "--", "true"}},
		{name: "usage_run_no_command", args: []string{"run", "--key", "k"}},
		{name: "help_get", raw: true, args: []string{"get", "-h"}},
		{name: "help_run", raw: true, args: []string{"run", "-h"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			ctx := context.Background()
			for _, s := range tc.setup {
				var out bytes.Buffer
				if code := run(ctx, withCommon(url, s), &out, &out); code != 0 {
					t.Fatalf("setup %q: exit %d\n%s", s, code, out.String())
				}
			}
			args := tc.args
			if !tc.raw {
				args = withCommon(url, args)
			}
			var stdout, stderr bytes.Buffer
			code := run(ctx, args, &stdout, &stderr)
			got := transcript(tc, code, stdout.String(), stderr.String())
			got = strings.ReplaceAll(got, url, "$ENDPOINT")
			golden(t, filepath.Join("testdata", tc.name+".golden"), got)
		})
	}
}

// transcript renders one command run for a golden file.
func transcript(tc cliCase, code int, stdout, stderr string) string {
	var b strings.Builder
	b.WriteString("$ stampede")
	if !tc.raw {
		b.WriteString(" [--endpoint $ENDPOINT --project proj --domain dev]")
	}
	for _, a := range tc.args {
		b.WriteString(" " + shellQuote(a))
	}
	fmt.Fprintf(&b, "\nexit %d\n--- stdout\n%s--- stderr\n%s", code, stdout, stderr)
	return b.String()
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:@%+,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// golden compares got with the file, or rewrites it under -update.
func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/stampede -run TestCLIGolden -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (rerun with -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
