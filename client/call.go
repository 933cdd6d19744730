package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// request is one call to the API.
type request struct {
	method string
	// path is the escaped path after the endpoint.
	path   string
	query  url.Values
	header http.Header
	body   []byte
	// wait is how much longer than usual the service may take to answer
	// (a get's wait_ms): it extends each attempt's timeout.
	wait time.Duration
}

// response is a response's status and headers; call returns it with
// errors from the service too.
type response struct {
	status int
	header http.Header
}

// bound gives ctx the client's default deadline when it has none, so that
// no request waits without one.
func (c *Client) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.callTimeout)
}

// call sends req, retrying as the policy allows, and decodes a successful
// response into out. Every attempt of one call carries the same headers,
// so a mutating request's Idempotency-Key makes the service answer a
// retry with what the first successful attempt earned.
func (c *Client) call(ctx context.Context, req request, out any) (response, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	for attempt := 1; ; attempt++ {
		status, header, body, err := c.attempt(ctx, req)
		if err == nil && status >= 200 && status < 300 {
			if header.Get(WaitsHeader) == WaitsShared {
				c.sharedWaits.Store(true)
			}
			if out != nil {
				if err := json.Unmarshal(body, out); err != nil {
					return response{}, fmt.Errorf("stampede: %s %s: decode the response: %w", req.method, c.base+req.path, err)
				}
			}
			return response{status, header}, nil
		}
		if ctx.Err() != nil {
			// The caller gave up; say why the last attempt failed too.
			if err == nil {
				err = parseError(status, body)
			}
			return response{}, fmt.Errorf("stampede: %s %s: %w (last attempt: %v)", req.method, c.base+req.path, context.Cause(ctx), err)
		}
		var wait time.Duration
		if err == nil {
			apiErr := parseError(status, body)
			if loc := header.Get("Location"); loc != "" && status/100 == 3 {
				apiErr.Message = "redirected to " + loc + "; the client does not follow redirects (check the endpoint)"
			}
			if !apiErr.retryable() || attempt >= c.retry.maxAttempts {
				return response{status, header}, apiErr
			}
			err = apiErr
			wait = retryAfter(header)
		} else {
			var se *signingError
			if errors.As(err, &se) || attempt >= c.retry.maxAttempts {
				if se == nil && attempt > 1 {
					err = fmt.Errorf("%w (%d attempts)", err, attempt)
				}
				return response{}, err
			}
		}
		// Retry-After is a floor; the backoff on top spreads a herd that
		// was told the same instant.
		wait += c.backoff(attempt)
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			// The next attempt would start after the deadline: answer now,
			// with what the service said, rather than sleep into it.
			return response{}, fmt.Errorf("stampede: %s %s: %w: %w (the next attempt was due after the deadline)", req.method, c.base+req.path, err, context.DeadlineExceeded)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return response{}, fmt.Errorf("stampede: %s %s: %w (last attempt: %v)", req.method, c.base+req.path, context.Cause(ctx), err)
		case <-t.C:
		}
	}
}

// backoff returns the wait after the n-th failed attempt: full jitter over
// an exponentially growing cap.
func (c *Client) backoff(n int) time.Duration {
	ceiling := c.retry.max
	if n-1 < 32 {
		ceiling = min(c.retry.max, c.retry.base<<(n-1))
	}
	if ceiling <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(ceiling) + 1))
}

// retryAfter reads a Retry-After header (seconds or an HTTP date).
func retryAfter(h http.Header) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = time.Until(t)
	}
	return min(max(d, 0), maxRetryAfter)
}

// attempt sends req once. A non-nil error is a network error, a timeout of
// the attempt or a signing failure; HTTP error statuses are not errors here.
func (c *Client) attempt(ctx context.Context, req request) (int, http.Header, []byte, error) {
	actx, cancel := context.WithTimeout(ctx, c.attemptTimeout+req.wait)
	defer cancel()
	target := c.base + req.path
	if len(req.query) > 0 {
		target += "?" + req.query.Encode()
	}
	var body io.Reader = http.NoBody
	if req.body != nil {
		body = bytes.NewReader(req.body)
	}
	hr, err := http.NewRequestWithContext(actx, req.method, target, body)
	if err != nil {
		return 0, nil, nil, &signingError{fmt.Errorf("stampede: build request: %w", err)}
	}
	for k, v := range req.header {
		hr.Header[k] = v
	}
	if req.body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if c.signer != nil {
		if err := c.signer.sign(actx, hr, req.body); err != nil {
			return 0, nil, nil, err
		}
	}
	// The signer ignores User-Agent; set it afterwards all the same.
	hr.Header.Set("User-Agent", c.userAgent)
	resp, err := c.hc.Do(hr)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("stampede: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("stampede: %s %s: read the response: %w", req.method, target, err)
	}
	return resp.StatusCode, resp.Header, data, nil
}

// signingError is a failure to build or sign a request: retrying does not
// help.
type signingError struct{ err error }

func (e *signingError) Error() string { return e.err.Error() }
func (e *signingError) Unwrap() error { return e.err }
