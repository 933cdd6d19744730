package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/stampede-cache/stampede/client"
)

// Environment variables of the client commands.
const (
	envEndpoint = "STAMPEDE_ENDPOINT"
	envProject  = "STAMPEDE_PROJECT"
	envDomain   = "STAMPEDE_DOMAIN"
	envSigV4    = "STAMPEDE_SIGV4"
	envOwnerID  = "STAMPEDE_OWNER_ID"
)

// Exit codes of the client commands (run also exits with its command's).
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// clientOptions are added to every client the commands build; tests use
// them to shorten retries.
var clientOptions []client.Option

// cli is one client command being run: its name, flag set and output.
type cli struct {
	name           string
	fs             *flag.FlagSet
	stdout, stderr io.Writer

	endpoint string
	project  string
	domain   string
	sigv4    string
	json     bool
	key      string

	help func()
}

// newCLI returns a command with the flags every client command takes.
func newCLI(name, args, summary string, stdout, stderr io.Writer) *cli {
	c := &cli{name: name, stdout: stdout, stderr: stderr}
	c.fs = flag.NewFlagSet(name, flag.ContinueOnError)
	// Parse errors are reported by parseFlags, on one line.
	c.fs.SetOutput(io.Discard)
	c.fs.Usage = func() {}
	c.help = func() {
		fmt.Fprintf(stderr, "usage: stampede %s %s\n\n%s\n\nflags:\n", name, args, summary)
		c.fs.SetOutput(stderr)
		c.fs.PrintDefaults()
		c.fs.SetOutput(io.Discard)
	}
	c.fs.StringVar(&c.endpoint, "endpoint", envDefault(envEndpoint, client.DefaultEndpoint), "API endpoint (env "+envEndpoint+")")
	c.fs.StringVar(&c.project, "project", os.Getenv(envProject), "project (env "+envProject+")")
	c.fs.StringVar(&c.domain, "domain", os.Getenv(envDomain), "domain (env "+envDomain+")")
	c.fs.StringVar(&c.sigv4, "sigv4", envDefault(envSigV4, "auto"), "SigV4-sign requests: auto (for *.amazonaws.com), on or off (env "+envSigV4+")")
	c.fs.BoolVar(&c.json, "json", false, "print the response as JSON")
	c.fs.StringVar(&c.key, "key", "", "the cache key (or give it as the argument)")
	return c
}

// parse parses the arguments, which may mix flags and at most one
// positional key. It returns false, with the exit code, when the command
// must stop (help, usage error).
func (c *cli) parse(args []string) (int, bool) {
	var pos []string
	for {
		if code, ok := c.parseFlags(args); !ok {
			return code, false
		}
		rest := c.fs.Args()
		if len(rest) == 0 {
			break
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	switch {
	case len(pos) > 1:
		return c.usage("unexpected argument %q", pos[1]), false
	case len(pos) == 1 && c.key != "":
		return c.usage("give the key either as --key or as the argument, not both"), false
	case len(pos) == 1:
		c.key = pos[0]
	}
	if c.key == "" {
		return c.usage("a key is required"), false
	}
	return c.checkCommon()
}

// parseFlags parses flags up to the first argument that is not one.
func (c *cli) parseFlags(args []string) (int, bool) {
	err := c.fs.Parse(args)
	switch {
	case err == nil:
		return 0, true
	case errors.Is(err, flag.ErrHelp):
		c.help()
		return exitOK, false
	}
	return c.usage("%v", err), false
}

// checkCommon validates the flags every command shares.
func (c *cli) checkCommon() (int, bool) {
	if c.project == "" {
		return c.usage("--project is required (or set %s)", envProject), false
	}
	if c.domain == "" {
		return c.usage("--domain is required (or set %s)", envDomain), false
	}
	if _, err := c.signMode(); err != nil {
		return c.usage("%v", err), false
	}
	return 0, true
}

// usage reports a usage error and returns its exit code.
func (c *cli) usage(format string, args ...any) int {
	fmt.Fprintf(c.stderr, "stampede %s: %s\nRun 'stampede %s -h' for usage.\n", c.name, fmt.Sprintf(format, args...), c.name)
	return exitUsage
}

func (c *cli) signMode() (client.Option, error) {
	switch strings.ToLower(c.sigv4) {
	case "auto", "":
		return nil, nil
	case "on", "1", "true", "yes":
		return client.WithDefaultSigV4(), nil
	case "off", "0", "false", "no":
		return client.WithoutSigV4(), nil
	}
	return nil, fmt.Errorf("--sigv4 must be auto, on or off, not %q", c.sigv4)
}

func (c *cli) scope() client.Scope { return client.Scope{Project: c.project, Domain: c.domain} }

// client builds the API client; a failure is reported and returns false.
func (c *cli) client() (*client.Client, int, bool) {
	opts := []client.Option{client.WithUserAgent("stampede-cli/1")}
	if mode, _ := c.signMode(); mode != nil {
		opts = append(opts, mode)
	}
	opts = append(opts, clientOptions...)
	cl, err := client.New(c.endpoint, opts...)
	if err != nil {
		if strings.Contains(err.Error(), "endpoint") {
			return nil, c.usage("--endpoint %q: want http(s)://host[:port][/base-path]", c.endpoint), false
		}
		return nil, c.fail(err), false
	}
	return cl, 0, true
}

// fail reports an operation failure on one line and returns exit code 1.
func (c *cli) fail(err error) int {
	fmt.Fprintf(c.stderr, "stampede %s: %s\n", c.name, describe(err, c.endpoint))
	return exitFailure
}

// describe renders an error on one line, for people.
func describe(err error, endpoint string) string {
	var apiErr *client.APIError
	var opErr *net.OpError
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &apiErr):
		s := apiErr.Code
		if s == "" {
			s = fmt.Sprintf("HTTP %d", apiErr.Status)
		}
		if apiErr.Message != "" {
			s += ": " + apiErr.Message
		}
		if e := apiErr.Existing; e != nil {
			s += fmt.Sprintf(" (existing entry: version %d, %s, last updated %s)", e.Version, e.OutputURI, formatTime(e.LastUpdatedAt))
		}
		if h := apiErr.Holder; h != nil {
			s += fmt.Sprintf(" (held by %s, fence %d, until %s)", h.OwnerID, h.Fence, formatTime(h.ExpiresAt))
		}
		return oneLine(s)
	case errors.As(err, &dnsErr):
		return oneLine(fmt.Sprintf("cannot reach %s: %v", endpoint, dnsErr))
	case errors.As(err, &opErr):
		return oneLine(fmt.Sprintf("cannot reach %s: %v", endpoint, opErr.Err))
	case errors.Is(err, context.DeadlineExceeded):
		return oneLine(fmt.Sprintf("%s did not answer in time: %v", endpoint, strings.TrimPrefix(err.Error(), "stampede: ")))
	}
	return oneLine(strings.TrimPrefix(err.Error(), "stampede: "))
}

// envDefault returns the environment variable name, or def when it is
// unset or empty.
func envDefault(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// formatTime renders an instant as the service does.
func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// printJSON prints v as one line of JSON.
func (c *cli) printJSON(v any) {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err) // every value printed is a plain struct
	}
	fmt.Fprintf(c.stdout, "%s\n", data)
}

// field is one line of human output.
type field struct{ name, value string }

// printFields prints name/value lines in aligned columns.
func (c *cli) printFields(fields []field) {
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	for _, f := range fields {
		fmt.Fprintf(tw, "%s\t%s\n", f.name, f.value)
	}
	_ = tw.Flush()
}

// entryFields renders an entry for people.
func entryFields(e *client.Entry) []field {
	fs := []field{
		{"project", e.Project},
		{"domain", e.Domain},
		{"key", e.Key},
		{"output_uri", e.OutputURI},
		{"version", strconv.FormatInt(e.Version, 10)},
		{"created_at", formatTime(e.CreatedAt)},
		{"last_updated_at", formatTime(e.LastUpdatedAt)},
	}
	if !e.ExpiresAt.IsZero() {
		fs = append(fs, field{"expires_at", formatTime(e.ExpiresAt)})
	}
	if s := e.Metadata.Source; s != nil {
		for _, f := range []field{{"project", s.Project}, {"domain", s.Domain}, {"name", s.Name}, {"version", s.Version}} {
			if f.value != "" {
				fs = append(fs, field{"metadata.source." + f.name, f.value})
			}
		}
	}
	names := make([]string, 0, len(e.Metadata.Labels))
	for k := range e.Metadata.Labels {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fs = append(fs, field{"metadata.labels." + k, e.Metadata.Labels[k]})
	}
	return fs
}

// reservationFields renders a reservation for people.
func reservationFields(r *client.Reservation) []field {
	return []field{
		{"project", r.Project},
		{"domain", r.Domain},
		{"key", r.Key},
		{"owner_id", r.OwnerID},
		{"heartbeat_interval_seconds", strconv.FormatInt(int64(r.HeartbeatInterval/time.Second), 10)},
		{"expires_at", formatTime(r.ExpiresAt)},
		{"fence", strconv.FormatInt(r.Fence, 10)},
	}
}

// labelFlag collects repeated --label name=value flags.
type labelFlag map[string]string

func (l labelFlag) String() string { return "" }

func (l labelFlag) Set(s string) error {
	name, value, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return fmt.Errorf("want name=value, got %q", s)
	}
	l[name] = value
	return nil
}

// metadataFlags are the flags that describe an output.
type metadataFlags struct {
	labels                labelFlag
	srcProject, srcDomain string
	srcName, srcVersion   string
	overwrite             bool
	maxAge, ttl           time.Duration
	outputURI             string
	outputURIHelp         string
}

func (m *metadataFlags) register(fs *flag.FlagSet) {
	m.labels = labelFlag{}
	fs.StringVar(&m.outputURI, "output-uri", "", m.outputURIHelp)
	fs.Var(m.labels, "label", "a metadata label, name=value (repeatable)")
	fs.StringVar(&m.srcProject, "source-project", "", "metadata: the producing task's project")
	fs.StringVar(&m.srcDomain, "source-domain", "", "metadata: the producing task's domain")
	fs.StringVar(&m.srcName, "source-name", "", "metadata: the producing task's name")
	fs.StringVar(&m.srcVersion, "source-version", "", "metadata: the producing task's version")
	fs.BoolVar(&m.overwrite, "overwrite", false, "replace an existing entry")
	fs.DurationVar(&m.maxAge, "max-age", 0, "replace an existing entry last written longer ago than this (e.g. 24h)")
	fs.DurationVar(&m.ttl, "ttl", 0, "the entry's lifetime (e.g. 720h); none by default")
}

func (m *metadataFlags) check(c *cli) (int, bool) {
	if m.maxAge < 0 || m.ttl < 0 {
		return c.usage("--max-age and --ttl must not be negative"), false
	}
	return 0, true
}

func (m *metadataFlags) metadata() client.Metadata {
	var md client.Metadata
	if m.srcProject != "" || m.srcDomain != "" || m.srcName != "" || m.srcVersion != "" {
		md.Source = &client.Source{Project: m.srcProject, Domain: m.srcDomain, Name: m.srcName, Version: m.srcVersion}
	}
	if len(m.labels) > 0 {
		md.Labels = m.labels
	}
	return md
}
