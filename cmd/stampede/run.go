package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/stampede-cache/stampede/client"
)

// Environment `stampede run` gives its command.
const (
	// envOutputURIFile names an empty file; the command may write its
	// output's URI there (one line), which takes precedence over
	// --output-uri.
	envOutputURIFile = "STAMPEDE_OUTPUT_URI_FILE"
	envKey           = "STAMPEDE_KEY"
	envFence         = "STAMPEDE_FENCE"
)

// defaultStoreTimeout is how long run keeps trying to store a finished
// result through an outage before it prints the put command instead.
const defaultStoreTimeout = 2 * time.Minute

// errTimedOut is the cause of run's context when --timeout expires.
var errTimedOut = errors.New("--timeout expired")

// runOptions are run's flags.
type runOptions struct {
	f            *clientFlags
	m            metadataFlags
	owner        string
	heartbeat    time.Duration
	poll         time.Duration
	timeout      time.Duration
	storeTimeout time.Duration
	quiet        bool
	failOpen     bool
	argv         []string
}

func (a *app) newRunCmd() *cobra.Command {
	o := &runOptions{}
	cmd := &cobra.Command{
		Use:   "run --key KEY [flags] -- COMMAND [ARGS...]",
		Short: "Run a command once across machines, memoized under a key",
		Long: `Memoize COMMAND across machines. On a cache hit, print the entry and exit 0
without running COMMAND. On a miss, run COMMAND only if this process gets
KEY's reservation (heartbeating while it runs) and, when it exits 0, store
the entry: the URI COMMAND wrote to the file named by $STAMPEDE_OUTPUT_URI_FILE,
else --output-uri. When it fails, release the reservation and exit with its
code. When another process holds the reservation, wait for its result (or
take over when it dies).

Everything that can be checked is checked before COMMAND starts (exit 2).
A result that cannot be stored (the service unreachable) is retried for
--store-timeout, then its URI and the put command that records it are
printed (exit 6). Exit codes: docs/cli.md.`,
		GroupID: groupRes,
		Args:    cobra.ArbitraryArgs,
	}
	o.f = a.addClientFlags(cmd, entryFieldSet())
	fl := cmd.Flags()
	// COMMAND's own flags are its own: stop at the first argument.
	fl.SetInterspersed(false)
	o.m.register(fl, "the output's URI, s3://bucket/key, unless COMMAND writes one to $"+envOutputURIFile)
	fl.StringVar(&o.owner, "owner", a.getenv(envOwnerID), "reservation owner ID (env "+envOwnerID+"); default: host name plus a random suffix")
	fl.DurationVar(&o.heartbeat, "heartbeat", 0, "heartbeat interval to ask for; the server clamps it (default: the server's)")
	fl.DurationVar(&o.poll, "poll", 0, "how often to look for another owner's result (default: its heartbeat interval)")
	fl.DurationVar(&o.timeout, "timeout", 0, "give up after this long, waiting or running (the command is stopped; exit 124); 0: no limit")
	fl.DurationVar(&o.storeTimeout, "store-timeout", defaultStoreTimeout, "how long to keep trying to store a finished result through an outage")
	fl.BoolVar(&o.quiet, "quiet", false, "print no status lines on stderr")
	fl.BoolVar(&o.failOpen, "fail-open", false, "when the service is unreachable, run COMMAND uncached (with a warning) instead of failing")
	cmd.RunE = action(func(cmd *cobra.Command, args []string) error {
		o.argv = args
		if err := o.check(); err != nil {
			return err
		}
		r, err := newRunner(a, o)
		if err != nil {
			return err
		}
		defer r.close()
		return r.execute(cmd.Context())
	})
	return cmd
}

// check validates everything that can be before anything runs.
func (o *runOptions) check() error {
	f := o.f
	if f.key == "" {
		return usageErrorf("--key is required")
	}
	if len(o.argv) == 0 {
		return usageErrorf("a command to run is required, after --")
	}
	if err := f.checkID("--key"); err != nil {
		return err
	}
	if _, err := f.signMode(); err != nil {
		return err
	}
	if err := f.out.check(); err != nil {
		return err
	}
	if err := checkEndpoint(f.endpoint); err != nil {
		return err
	}
	if err := o.m.check(); err != nil {
		return err
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"--heartbeat", o.heartbeat}, {"--poll", o.poll}, {"--timeout", o.timeout}} {
		if d.v < 0 {
			return usageErrorf("%s must not be negative", d.flag)
		}
	}
	if o.storeTimeout <= 0 {
		return usageErrorf("--store-timeout must be positive")
	}
	if _, err := exec.LookPath(o.argv[0]); err != nil {
		code := exitCannotExecute
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			code = exitCommandNotFound
		}
		return exitErrorf(code, "cannot run %s: %v (nothing was reserved)", o.argv[0], unwrapExecError(err))
	}
	if o.owner == "" {
		o.owner = client.NewOwnerID()
	}
	return nil
}

// unwrapExecError drops exec's and the file system's repetitions of the
// command name.
func unwrapExecError(err error) error {
	var ee *exec.Error
	if errors.As(err, &ee) {
		err = ee.Err
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return err
}

// runner is one `stampede run`.
type runner struct {
	a      *app
	o      *runOptions
	cl     *client.Client
	status *runStatus
	// dir holds the output-URI file; created before anything is reserved.
	dir string

	mu sync.Mutex
	// started is set when the command was started (compute called).
	started bool
	// finished is the command's result once it exited 0 and named a valid
	// output; fence is the reservation's it ran under.
	finished *client.ComputeResult
	fence    int64
}

func newRunner(a *app, o *runOptions) (*runner, error) {
	cl, err := o.f.client()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "stampede-run-")
	if err != nil {
		return nil, fmt.Errorf("create the output-URI file: %w", err)
	}
	return &runner{a: a, o: o, cl: cl, dir: dir, status: newRunStatus(a.stderr, o.f.key, o.f.endpoint, o.quiet)}, nil
}

func (r *runner) close() { os.RemoveAll(r.dir) }

// execute runs the protocol and turns its outcome into output and an exit
// code.
func (r *runner) execute(ctx context.Context) error {
	runCtx, cancel := ctx, context.CancelFunc(func() {})
	if r.o.timeout > 0 {
		runCtx, cancel = context.WithTimeoutCause(ctx, r.o.timeout, errTimedOut)
	}
	defer cancel()
	entry, err := r.cl.GetOrCompute(runCtx, r.o.f.scope(), r.o.f.key, r.compute, r.computeOptions()...)
	r.status.close()
	if err == nil {
		return r.o.f.out.print(r.a.stdout, entry, entryFields(entry))
	}
	return r.failed(ctx, runCtx, err)
}

func (r *runner) computeOptions() []client.ComputeOption {
	o := r.o
	opts := []client.ComputeOption{client.WithOwnerID(o.owner), client.WithObserver(r.status.observe)}
	if o.heartbeat > 0 {
		opts = append(opts, client.WithHeartbeat(o.heartbeat))
	}
	if o.poll > 0 {
		opts = append(opts, client.WithPollInterval(o.poll))
	}
	if o.m.overwrite {
		opts = append(opts, client.WithOverwrite())
	}
	if o.m.maxAge > 0 {
		opts = append(opts, client.WithMaxAge(o.m.maxAge))
	}
	if o.m.ttl > 0 {
		opts = append(opts, client.WithTTL(o.m.ttl))
	}
	return opts
}

// compute runs the command under the reservation GetOrCompute acquired.
func (r *runner) compute(ctx context.Context) (client.ComputeResult, error) {
	res := r.status.reservation()
	r.mu.Lock()
	r.started = true
	r.mu.Unlock()
	uri, err := r.command(res.OwnerID, res.Fence).run(ctx)
	if err != nil {
		return client.ComputeResult{}, err
	}
	out := client.ComputeResult{OutputURI: uri, Metadata: r.o.m.metadata()}
	r.mu.Lock()
	r.finished, r.fence = &out, res.Fence
	r.mu.Unlock()
	return out, nil
}

// command is the command to run as owner under fence.
func (r *runner) command(owner string, fence int64) *command {
	f := r.o.f
	env := append(os.Environ(),
		envEndpoint+"="+f.endpoint,
		envProject+"="+f.project,
		envDomain+"="+f.domain,
		envKey+"="+f.key,
		envOwnerID+"="+owner,
		envFence+"="+strconv.FormatInt(fence, 10),
	)
	return &command{
		argv:         r.o.argv,
		env:          env,
		stdin:        r.a.stdin,
		stdout:       r.a.stdout,
		stderr:       r.a.stderr,
		uriFile:      filepath.Join(r.dir, "output-uri"),
		fallbackURI:  r.o.m.outputURI,
		fallbackFlag: "--output-uri",
	}
}

// failed handles a GetOrCompute that did not end with an entry.
func (r *runner) failed(ctx, runCtx context.Context, err error) error {
	r.mu.Lock()
	started, finished := r.started, r.finished
	r.mu.Unlock()
	var cmdErr *commandError
	var outErr *outputError
	switch {
	case finished != nil:
		// The command succeeded: its result must not be lost.
		return r.storeFinished(ctx, err)
	case errors.Is(context.Cause(runCtx), errTimedOut):
		what := "before the command started (waiting for the service, or for another owner's result)"
		if started {
			what = "while the command ran; it was stopped and the reservation released"
		}
		return exitErrorf(exitTimeout, "timed out after %s %s", r.o.timeout, what)
	case errors.As(err, &cmdErr):
		return exitErrorf(cmdErr.code, "%v; released the reservation", cmdErr)
	case errors.As(err, &outErr):
		return exitErrorf(exitFailure, "%v; released the reservation", outErr)
	case ctx.Err() != nil:
		return exitErrorf(r.a.interruptedCode(), "interrupted")
	case errors.Is(err, client.ErrReservationLost):
		return exitErrorf(exitFailure, "%v; the command was stopped and its output not stored", trimPrefix(err))
	}
	ce := r.o.f.fail(err)
	if ce.code == exitUnavailable && !started {
		if r.o.failOpen {
			return r.runUncached(runCtx, ce)
		}
		ce.msg += " (--fail-open runs the command uncached when the service is unreachable)"
	}
	return ce
}

// runUncached runs the command without the service (--fail-open).
func (r *runner) runUncached(ctx context.Context, why *cliError) error {
	fmt.Fprintf(r.a.stderr, "stampede run: warning: %s; --fail-open: running the command uncached\n", why.msg)
	uri, err := r.command(r.o.owner, 0).run(ctx)
	var cmdErr *commandError
	switch {
	case errors.As(err, &cmdErr):
		return exitErrorf(cmdErr.code, "%v (uncached)", cmdErr)
	case err != nil:
		return err
	}
	fmt.Fprintf(r.a.stderr, "stampede run: the command succeeded uncached; its output %s is not recorded. To record it:\n  %s\n",
		uri, r.putCommand(uri))
	return r.printUnstored(uri)
}

// trimPrefix renders a client error without its "stampede: " prefix.
func trimPrefix(err error) string { return oneLine(strings.TrimPrefix(err.Error(), "stampede: ")) }
