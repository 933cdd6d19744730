package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/spf13/cobra"

	"github.com/stampede-cache/stampede/client"
)

func (a *app) newReservationCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "reservation [flags] KEY",
		Aliases: []string{"holder"},
		Short:   "Show who holds a key's reservation, changing nothing",
		Long: `Show the live reservation of KEY (owner, fence, expiry) without taking or
extending it. Exits 3 when nobody holds the key.`,
		GroupID: groupRes,
		Args:    keyArgs,
	}
	f := a.addClientFlags(cmd, reservationFieldSet())
	cmd.RunE = action(func(cmd *cobra.Command, args []string) error {
		if err := f.resolve(args); err != nil {
			return err
		}
		if _, err := f.client(); err != nil { // the same checks as every command
			return err
		}
		r, err := f.inspect(cmd.Context())
		if err != nil {
			ce := f.fail(err)
			if ce.code == exitMiss {
				ce.msg = fmt.Sprintf("nobody holds %q", f.key)
			}
			return ce
		}
		return f.out.print(a.stdout, r, reservationFields(r))
	})
	return cmd
}

// inspectAttempts and inspectTimeout bound inspect's retries of network
// errors, 429 and 5xx.
const (
	inspectAttempts = 3
	inspectTimeout  = 15 * time.Second
)

// inspect calls GET …/reservations/{key}: the live reservation, or an
// *client.APIError (not_found when there is none).
//
// The Go client has no call for this route yet; this is the smallest
// request that answers it, with the client's conventions: its path
// encoding, its error type, SigV4 when the client would sign, and a few
// retries. Replace it with the client's method once there is one.
func (f *clientFlags) inspect(ctx context.Context) (*client.Reservation, error) {
	target := strings.TrimSuffix(f.endpoint, "/") + "/v1/projects/" + escapeSegment(f.project) +
		"/domains/" + escapeSegment(f.domain) + "/reservations/" + escapeSegment(f.key)
	var lastErr error
	for attempt := 1; attempt <= inspectAttempts; attempt++ {
		if attempt > 1 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Duration(attempt-1) * 500 * time.Millisecond):
			}
		}
		status, body, err := f.inspectOnce(ctx, target)
		switch {
		case err != nil:
			lastErr = err
			if ctx.Err() != nil {
				return nil, err
			}
			continue
		case status == http.StatusOK:
			var out struct {
				Reservation *client.Reservation `json:"reservation"`
			}
			if err := json.Unmarshal(body, &out); err != nil || out.Reservation == nil {
				return nil, fmt.Errorf("GET %s: an answer that is not a reservation: %q", target, snippet(body))
			}
			return out.Reservation, nil
		}
		lastErr = apiError(status, body)
		if status != http.StatusTooManyRequests && status < 500 {
			break
		}
	}
	return nil, lastErr
}

// inspectOnce sends one GET, signed when the client would sign it.
func (f *clientFlags) inspectOnce(ctx context.Context, target string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, inspectTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, http.NoBody)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("User-Agent", userAgent)
	if err := f.signIfNeeded(ctx, req); err != nil {
		return 0, nil, err
	}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, nil, err
	}
	if resp.StatusCode/100 == 3 {
		body = fmt.Appendf(nil, `{"message":"redirected to %s"}`, resp.Header.Get("Location"))
	}
	return resp.StatusCode, body, nil
}

// signIfNeeded signs req with SigV4 for API Gateway when --sigv4 says so
// (auto: for amazonaws.com hosts), as the client does.
func (f *clientFlags) signIfNeeded(ctx context.Context, req *http.Request) error {
	sign := false
	switch strings.ToLower(f.sigv4) {
	case "on", "1", "true", "yes":
		sign = true
	case "auto", "":
		sign = client.IsAWSEndpoint(req.URL.Hostname())
	}
	if !sign {
		return nil
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("SigV4: load the AWS configuration: %w", err)
	}
	if cfg.Credentials == nil {
		return fmt.Errorf("SigV4: the AWS default configuration has no credentials")
	}
	region := cfg.Region
	if region == "" {
		region = regionFromHost(req.URL.Hostname())
	}
	if region == "" {
		return fmt.Errorf("SigV4: no region; set AWS_REGION")
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("SigV4: retrieve AWS credentials: %w", err)
	}
	const emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	return v4.NewSigner().SignHTTP(ctx, creds, req, emptyHash, "execute-api", region, time.Now())
}

// regionFromHost reads the region of {id}.execute-api.{region}.amazonaws.com.
func regionFromHost(host string) string {
	parts := strings.Split(strings.ToLower(host), ".")
	for i := 0; i+2 < len(parts); i++ {
		if parts[i] == "execute-api" && strings.HasPrefix(parts[i+2], "amazonaws") {
			return parts[i+1]
		}
	}
	return ""
}

// apiError reads an error answer as the client does.
func apiError(status int, body []byte) *client.APIError {
	var w struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &w) == nil && w.Error != nil && w.Error.Code != "" {
		return &client.APIError{Status: status, Code: w.Error.Code, Message: w.Error.Message}
	}
	e := &client.APIError{Status: status, Message: w.Message}
	switch {
	case status == http.StatusTooManyRequests:
		e.Code = client.CodeThrottled
	case status == http.StatusBadGateway, status == http.StatusServiceUnavailable, status == http.StatusGatewayTimeout:
		e.Code = client.CodeUnavailable
	case status >= 500:
		e.Code = client.CodeInternal
	}
	if e.Message == "" {
		e.Message = snippet(body)
	}
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	return e
}

// snippet is the start of a body, on one line.
func snippet(body []byte) string {
	s := oneLine(string(bytes.ToValidUTF8(body, nil)))
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "…"
	}
	return s
}

// escapeSegment percent-encodes everything outside RFC 3986's unreserved
// set, "/" included, as the client does: a key is one path segment.
func escapeSegment(s string) string {
	if strings.Trim(s, ".") == "" {
		return strings.ReplaceAll(url.PathEscape(s), ".", "%2E")
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
