package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/stampede-cache/stampede/client"
)

// The backoff between store attempts once the client's own retries have
// failed, and how often a retry is reported while its reason stays the
// same.
const (
	storeRetryBase   = time.Second
	storeRetryMax    = 15 * time.Second
	storeReportEvery = 30 * time.Second
)

// storeFinished stores a result that GetOrCompute could not store (the
// service unreachable or unavailable, the reservation lapsed meanwhile):
// it keeps trying for --store-timeout. When that fails too, the output URI
// and the put command that records it are printed and run exits 6, so a
// finished computation is never lost.
func (r *runner) storeFinished(ctx context.Context, cause error) error {
	r.mu.Lock()
	s := &storer{r: r, res: *r.finished, fence: r.fence}
	r.mu.Unlock()
	entry, err := s.run(ctx, cause)
	if err == nil {
		return r.o.f.out.print(r.a.stdout, entry, entryFields(entry))
	}
	uri := s.res.OutputURI
	fmt.Fprintf(r.a.stderr, "stampede run: the command succeeded but its result is not stored: %s\n", err)
	fmt.Fprintf(r.a.stderr, "stampede run: output: %s\nstampede run: to record it, run:\n  %s\n", uri, r.putCommand(uri))
	if perr := r.printUnstored(uri); perr != nil {
		return perr
	}
	return exitCode(exitNotStored)
}

// storer retries the fenced put-and-release of a finished result.
type storer struct {
	r     *runner
	res   client.ComputeResult
	fence int64

	attempts   int
	lastReport time.Time
	lastReason string
}

// run tries until the result is stored, another owner's result is found,
// the service refuses it for good, or --store-timeout passes.
func (s *storer) run(ctx context.Context, cause error) (*client.Entry, error) {
	o := s.r.o
	ctx, cancel := context.WithTimeout(ctx, o.storeTimeout)
	defer cancel()
	start := time.Now()
	s.report(cause, start)
	wait := storeRetryBase
	for {
		entry, final, err := s.attempt(ctx)
		if err == nil {
			if entry.OutputURI == s.res.OutputURI {
				s.r.status.printf("stampede run: stored %q (version %d) after %d attempts over %s", o.f.key, entry.Version, s.attempts, roundDuration(time.Since(start)))
			} else {
				s.r.status.printf("stampede run: another owner stored %q first (version %d); using its entry", o.f.key, entry.Version)
			}
			return entry, nil
		}
		if final {
			return nil, err
		}
		s.report(err, start)
		t := time.NewTimer(jitter(wait))
		select {
		case <-ctx.Done():
			t.Stop()
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, fmt.Errorf("gave up after %s (--store-timeout) and %d attempts; last: %s", o.storeTimeout, s.attempts, s.reason(err))
			}
			return nil, fmt.Errorf("interrupted after %d attempts; last: %s", s.attempts, s.reason(err))
		case <-t.C:
		}
		wait = min(2*wait, storeRetryMax)
	}
}

// attempt puts the result under our reservation, reserving the key again
// when it lapsed meanwhile and nobody took it. final says that retrying
// cannot help.
func (s *storer) attempt(ctx context.Context) (*client.Entry, bool, error) {
	o, cl := s.r.o, s.r.cl
	for range 2 { // a second round after re-reserving
		s.attempts++
		put, err := cl.Put(ctx, o.f.scope(), o.f.key, client.PutRequest{
			OutputURI: s.res.OutputURI,
			Metadata:  s.res.Metadata,
			Overwrite: o.m.overwrite,
			MaxAge:    o.m.maxAge,
			TTL:       o.m.ttl,
			OwnerID:   o.owner,
			Fence:     s.fence,
			Release:   true,
		})
		if err == nil {
			return &put.Entry, true, nil
		}
		var apiErr *client.APIError
		if !errors.As(err, &apiErr) {
			return nil, ctx.Err() != nil || !isTransportError(err), err
		}
		switch {
		case apiErr.Existing != nil && (apiErr.Code == client.CodeAlreadyExists || apiErr.Code == client.CodeFailedPrecondition):
			// Stored already: by an earlier attempt whose answer was lost, or
			// by another owner. Either way it is the key's result.
			s.releaseIfOurs(ctx, apiErr.Holder)
			return apiErr.Existing, true, nil
		case apiErr.Code == client.CodeFailedPrecondition && (apiErr.Holder == nil || apiErr.Holder.OwnerID == o.owner):
			// Our reservation lapsed while the service was away.
			again, err := cl.Reserve(ctx, o.f.scope(), o.f.key, client.ReserveRequest{OwnerID: o.owner, Heartbeat: o.heartbeat})
			if err != nil {
				return nil, s.isFinal(ctx, err), err
			}
			if !again.Acquired {
				h := again.Reservation
				return nil, true, fmt.Errorf("the reservation lapsed while the service was unreachable and %s (fence %d) holds the key now", h.OwnerID, h.Fence)
			}
			s.fence = again.Reservation.Fence
			continue
		case apiErr.Code == client.CodeFailedPrecondition:
			h := apiErr.Holder
			return nil, true, fmt.Errorf("the reservation lapsed while the service was unreachable and %s (fence %d) holds the key now", h.OwnerID, h.Fence)
		}
		return nil, s.isFinal(ctx, err), err
	}
	return nil, false, errors.New("the reservation lapsed again right after it was taken")
}

// isFinal reports whether retrying a failed call cannot help: anything but
// the service being unreachable, unavailable or throttling.
func (s *storer) isFinal(ctx context.Context, err error) bool {
	return ctx.Err() != nil || classify(err, "").code != exitUnavailable
}

// releaseIfOurs releases the reservation when the holder is us.
func (s *storer) releaseIfOurs(ctx context.Context, h *client.Reservation) {
	if h != nil && h.OwnerID == s.r.o.owner {
		_, _ = s.r.cl.Release(ctx, s.r.o.f.scope(), s.r.o.f.key, client.ReleaseRequest{OwnerID: s.r.o.owner})
	}
}

// report prints why storing failed, when the reason changed or a while
// after the last report.
func (s *storer) report(err error, start time.Time) {
	reason := s.reason(err)
	now := time.Now()
	if reason == s.lastReason && now.Sub(s.lastReport) < storeReportEvery {
		return
	}
	s.lastReason, s.lastReport = reason, now
	left := s.r.o.storeTimeout - now.Sub(start)
	s.r.status.printf("stampede run: could not store %q yet: %s; retrying for up to %s", s.r.o.f.key, reason, roundDuration(left))
}

// reason renders a failure to store, naming the endpoint.
func (s *storer) reason(err error) string {
	if errors.Is(err, client.ErrReservationLost) {
		return trimPrefix(err)
	}
	return classify(err, s.r.o.f.endpoint).msg
}

// jitter spreads d by ±20%.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// putCommand is the stampede put command line that records uri as run
// would have.
func (r *runner) putCommand(uri string) string {
	o := r.o
	args := []string{"stampede", "put", "--endpoint", o.f.endpoint, "--project", o.f.project, "--domain", o.f.domain, "--output-uri", uri}
	names := make([]string, 0, len(o.m.labels))
	for k := range o.m.labels {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		args = append(args, "--label", k+"="+o.m.labels[k])
	}
	for _, f := range []struct{ flag, v string }{
		{"--source-project", o.m.srcProject}, {"--source-domain", o.m.srcDomain},
		{"--source-name", o.m.srcName}, {"--source-version", o.m.srcVersion},
	} {
		if f.v != "" {
			args = append(args, f.flag, f.v)
		}
	}
	if o.m.ttl > 0 {
		args = append(args, "--ttl", o.m.ttl.String())
	}
	if o.m.overwrite {
		args = append(args, "--overwrite")
	}
	if o.m.maxAge > 0 {
		args = append(args, "--max-age", o.m.maxAge.String())
	}
	args = append(args, "--", o.f.key)
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = shellQuote(a)
	}
	return strings.Join(quoted, " ")
}

// printUnstored prints on stdout what is known of a result that is not
// stored, in the --output format: its URI.
func (r *runner) printUnstored(uri string) error {
	out := r.o.f.out
	switch out.format {
	case formatJSON:
		data, err := json.Marshal(map[string]any{"output_uri": uri, "stored": false})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(r.a.stdout, "%s\n", data)
		return err
	case formatText, "":
		printFields(r.a.stdout, []field{{"output_uri", uri}, {"stored", "false"}})
		return nil
	}
	return out.print(r.a.stdout, nil, []field{{"output_uri", uri}})
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:@%+,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
