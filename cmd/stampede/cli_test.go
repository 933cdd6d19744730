package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stampede-cache/stampede/client"
	"github.com/stampede-cache/stampede/internal/config"
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
	for _, name := range []string{envEndpoint, envProject, envDomain, envSigV4, envOwnerID, config.EnvRequestTimeout} {
		os.Unsetenv(name)
	}
	os.Exit(testenv.Main(m))
}

// testApp is the command line as tests run it in-process: env overrides
// the process environment, and client retries are quick.
func testApp(stdout, stderr io.Writer, env map[string]string) *app {
	return &app{
		stdin:  strings.NewReader(""),
		stdout: stdout,
		stderr: stderr,
		getenv: func(name string) string {
			if v, ok := env[name]; ok {
				return v
			}
			return os.Getenv(name)
		},
		clientOptions: []client.Option{client.WithRetry(2, time.Millisecond, time.Millisecond)},
	}
}

// runCLI runs a command line in-process and returns its exit code and
// output.
func runCLI(ctx context.Context, env map[string]string, args ...string) (int, string, string) {
	var stdout, stderr syncBuffer
	code := testApp(&stdout, &stderr, env).execute(ctx, args)
	return code, stdout.String(), stderr.String()
}

// syncBuffer is a bytes.Buffer safe for concurrent writers (a command's
// output and the status lines).
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
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
		{name: "run_command_not_executable", args: []string{"run", "--key", "run/none", "--owner", "w", "--", "/dev/null"}},
		{name: "run_two_uris", args: []string{"run", "--key", "run/none", "--owner", "w", "--", "sh", "-c", `printf 's3://bucket/a\ns3://bucket/b\n' > "$STAMPEDE_OUTPUT_URI_FILE"`}},
		{name: "run_output_uri_field", args: []string{"run", "-o", "uri", "--quiet", "--key", "run/file", "--", "false"}},
		{name: "run_invalid_uri_from_file", args: []string{"run", "--key", "run/badfile", "--owner", "w", "--", "sh", "-c", `echo s3://ml/x > "$STAMPEDE_OUTPUT_URI_FILE"`}},
		{name: "run_timeout", args: []string{"run", "--key", "run/slow", "--owner", "w", "--timeout", "3s", "--output-uri", "s3://bucket/slow", "--", "sleep", "60"}},
		{name: "reserve_after_timeout", args: []string{"reserve", "--owner", "next", "run/slow"}},
		// output fields
		{name: "get_output_uri", args: []string{"get", "-o", "uri", "run/file"}},
		{name: "get_output_label", args: []string{"get", "--output", "metadata.labels.by", "run/file"}},
		{name: "get_output_absent_field", args: []string{"get", "-o", "expires_at", "run/file"}},
		{name: "get_miss_output_uri", args: []string{"get", "-o", "uri", "run/none"}},
		{name: "reserve_output_fence", args: []string{"reserve", "-o", "acquired", "--owner", "worker-9", "jobs/z"}},
		// failures and usage errors
		{name: "unreachable", raw: true, args: []string{"get", "--endpoint", "http://127.0.0.1:1", "--project", "proj", "--domain", "dev", "k"}},
		{name: "wrong_endpoint", raw: true, args: []string{"get", "--endpoint", url + "/api", "--project", "proj", "--domain", "dev", "k"}},
		{name: "run_unreachable", raw: true, args: []string{"run", "--endpoint", "http://127.0.0.1:1", "--project", "proj", "--domain", "dev", "--key", "k",
			"--output-uri", "s3://bucket/k", "--", "sh", "-c", "echo must not run"}},
		{name: "run_fail_open", raw: true, args: []string{"run", "--endpoint", "http://127.0.0.1:1", "--project", "proj", "--domain", "dev", "--key", "k", "--fail-open",
			"--", "sh", "-c", `echo ran uncached; echo s3://bucket/uncached > "$STAMPEDE_OUTPUT_URI_FILE"`}},
		{name: "usage_no_command", raw: true, args: []string{}},
		{name: "usage_unknown_command", raw: true, args: []string{"fetch"}},
		{name: "usage_get_no_key", args: []string{"get"}},
		{name: "usage_get_two_keys", args: []string{"get", "a", "b"}},
		{name: "usage_get_key_twice", args: []string{"get", "--key", "a", "b"}},
		{name: "usage_get_control_key", args: []string{"get", "a\x01b"}},
		{name: "usage_no_project", raw: true, args: []string{"get", "--domain", "dev", "k"}},
		{name: "usage_bad_project", raw: true, args: []string{"get", "--project", "ML", "--domain", "dev", "k"}},
		{name: "usage_bad_flag", args: []string{"get", "--nope", "k"}},
		{name: "usage_bad_sigv4", args: []string{"get", "--sigv4", "maybe", "k"}},
		{name: "usage_bad_endpoint", raw: true, args: []string{"get", "--endpoint", "localhost:8080", "--project", "p", "--domain", "d", "k"}},
		{name: "usage_bad_output", args: []string{"get", "-o", "yaml", "k"}},
		{name: "usage_get_bad_consistency", args: []string{"get", "--consistency", "linearizable", "k"}},
		{name: "usage_put_fence_without_owner", args: []string{"put", "--fence", "3", "--output-uri", "s3://bucket/k", "k"}},
		{name: "usage_put_no_uri", args: []string{"put", "k"}},
		{name: "usage_put_invalid_bucket", args: []string{"put", "--output-uri", "s3://ml/models/resnet", "k"}},
		{name: "usage_put_bad_label", args: []string{"put", "--output-uri", "s3://bucket/k", "--label", "novalue", "k"}},
		{name: "usage_release_no_owner", args: []string{"release", "k"}},
		{name: "usage_run_no_key", args: []string{"run", "--", "true"}},
		{name: "usage_run_no_command", args: []string{"run", "--key", "k"}},
		{name: "usage_run_invalid_bucket", args: []string{"run", "--key", "k", "--output-uri", "s3://ml/models/x", "--", "sh", "-c", "echo must not run"}},
		{name: "usage_run_bad_key", args: []string{"run", "--key", "tab\tkey", "--", "sh", "-c", "echo must not run"}},
		{name: "usage_run_negative_timeout", args: []string{"run", "--key", "k", "--timeout", "-1s", "--", "true"}},
		{name: "help_get", raw: true, args: []string{"get", "--help"}},
		{name: "help_run", raw: true, args: []string{"run", "-h"}},
		{name: "help_command", raw: true, args: []string{"help", "reservation"}},
	}
	runGolden(t, url, cases)
}

// runGolden runs each case in order against the API at url and compares
// its transcript with testdata/NAME.golden.
func runGolden(t *testing.T, url string, cases []cliCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			for _, s := range tc.setup {
				if code, out, errOut := runCLI(ctx, tc.env, withCommon(url, s)...); code != 0 {
					t.Fatalf("setup %q: exit %d\n%s%s", s, code, out, errOut)
				}
			}
			args := tc.args
			if !tc.raw {
				args = withCommon(url, args)
			}
			code, stdout, stderr := runCLI(ctx, tc.env, args...)
			got := transcript(tc, code, stdout, stderr)
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
