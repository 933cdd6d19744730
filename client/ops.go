package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Consistency is how fresh a get must be.
type Consistency string

// The consistency levels (see docs/api.md, Consistency).
const (
	// ConsistencyStrong (the default) sees every write that finished before
	// the get began.
	ConsistencyStrong Consistency = "strong"
	// ConsistencyEventual costs half as much and may miss writes of the
	// last second or so; with MinVersion it never answers older than that
	// version.
	ConsistencyEventual Consistency = "eventual"
)

// GetOptions tune a Get; the zero value is a strongly consistent read.
type GetOptions struct {
	// Consistency: "" (the service's default, strong), ConsistencyStrong or
	// ConsistencyEventual.
	Consistency Consistency
	// MinVersion, with ConsistencyEventual, makes the service read again
	// strongly rather than answer an entry older than this version (pass
	// the last version you wrote or saw: a session guarantee).
	MinVersion int64
	// MaxStaleness (1 ms to 1 min) lets the service answer from its
	// memory an entry read at most this long ago. Not with
	// ConsistencyStrong.
	MaxStaleness time.Duration
	// Verify checks that the output object exists (managed buckets only); a
	// dangling entry is removed and reads as ErrNotFound.
	Verify bool
	// IfNoneMatch, when positive, makes Get fail with ErrNotModified when the
	// live entry still has this version (its ETag).
	IfNoneMatch int64
	// Wait, on a miss, makes the service wait up to this long (at most
	// MaxGetWait; wait_ms) for the entry to appear and answer it the moment
	// it exists, else ErrNotFound when the wait ends. Rounded up to
	// milliseconds. See docs/api.md, Waiting for an entry, for where it
	// is cheap (a long-running server) and where it is not (Lambda).
	Wait time.Duration
}

// MaxGetWait is the longest GetOptions.Wait the service accepts.
const MaxGetWait = 20 * time.Second

// PutRequest is what a Put stores and when it may replace an entry.
type PutRequest struct {
	// OutputURI is where the output lives, s3://bucket/key. Required.
	OutputURI string
	Metadata  Metadata
	// Overwrite replaces a live entry. Without it (or MaxAge, or IfMatch) a
	// put on a key that has a live entry fails with ErrAlreadyExists and the
	// *APIError's Existing holds that entry.
	Overwrite bool
	// MaxAge, when positive, lets the put replace a live entry last written
	// more than MaxAge ago even without Overwrite. Rounded up to seconds.
	MaxAge time.Duration
	// TTL, when positive, is the entry's lifetime; zero means no expiry.
	// Rounded up to seconds.
	TTL time.Duration
	// IfMatch, when positive, replaces the entry only if it has this version
	// (compare-and-set); otherwise the put fails with ErrFailedPrecondition
	// and Existing holds the live entry.
	IfMatch int64
	// OwnerID makes the put fenced: it succeeds only while this owner holds
	// the key's live reservation, and with Fence (when positive) only while
	// the reservation has that fence. Otherwise it fails with
	// ErrFailedPrecondition and Holder is the current holder (nil when
	// nobody holds the key).
	OwnerID string
	Fence   int64
	// Release, with OwnerID, ends the reservation in the same write (not
	// when the put fails).
	Release bool
	// DeleteBlob deletes the replaced entry's output object (managed
	// buckets only) after the new entry is written.
	DeleteBlob bool
	// VerifyOutput makes the put fail with ErrFailedPrecondition unless the
	// new output object exists (managed buckets only).
	VerifyOutput bool
	// IdempotencyKey names this put across retries (1 to 255 visible ASCII
	// characters). Empty: the client makes one per call, reused by its own
	// retries; pass your own (NewIdempotencyKey) to retry safely across
	// process restarts.
	IdempotencyKey string
}

// DeleteOptions tune a Delete.
type DeleteOptions struct {
	// IfMatch, when positive, deletes the entry only if it has this version;
	// otherwise the delete fails with ErrFailedPrecondition.
	IfMatch int64
	// DeleteBlob deletes the output object too (managed buckets only).
	DeleteBlob bool
	// IdempotencyKey names this delete across retries; see
	// PutRequest.IdempotencyKey.
	IdempotencyKey string
}

// DeleteResult is what a delete did.
type DeleteResult struct {
	// Deleted is true when a live entry was removed.
	Deleted bool `json:"deleted"`
	// OutputDeleted, with DeleteBlob, says whether the output object was
	// deleted.
	OutputDeleted *bool `json:"output_deleted,omitempty"`
}

// ReserveRequest asks for (or extends) a key's reservation.
type ReserveRequest struct {
	// OwnerID identifies the caller; reserving again with the same owner
	// extends the reservation. Required; NewOwnerID makes one.
	OwnerID string
	// Heartbeat is how often the owner promises to extend the reservation;
	// zero means the service's default. The service clamps it to its
	// maximum (10 s by default) and reports the effective value in the
	// reservation. Rounded up to seconds.
	Heartbeat time.Duration
	// IdempotencyKey names this reserve across retries; see
	// PutRequest.IdempotencyKey. An extension is a new call: give each its
	// own key, or the service answers the first one's result again.
	IdempotencyKey string
}

// ReleaseRequest ends a reservation.
type ReleaseRequest struct {
	// OwnerID must be the holder's; another owner's reservation is left
	// alone and Release reports false. Required.
	OwnerID string
	// IdempotencyKey names this release across retries; see
	// PutRequest.IdempotencyKey.
	IdempotencyKey string
}

// seconds rounds a positive duration up to whole seconds; nil for zero.
func seconds(field string, d time.Duration) (*int64, error) {
	if d < 0 {
		return nil, invalidArgument("%s: must not be negative", field)
	}
	if d == 0 {
		return nil, nil
	}
	s := int64((d + time.Second - 1) / time.Second)
	return &s, nil
}

// etag renders a version as an entity tag.
func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// Get returns the live entry of key, or an error that is ErrNotFound when
// there is none. opts may be nil.
//
// Concurrent strong reads of a key through one client share requests, each
// still seeing every write that finished before it began (see
// docs/client.md, Coalesced reads). Eventual and bounded-staleness reads
// carry the newest version the client has seen or written of the key as
// min_version, so they never answer older than that (session guarantees).
func (c *Client) Get(ctx context.Context, s Scope, key string, opts *GetOptions) (*Entry, error) {
	path, err := resourcePath(s, key, "cache")
	if err != nil {
		return nil, err
	}
	var o GetOptions
	if opts != nil {
		o = *opts
	}
	if o.MaxStaleness < 0 {
		return nil, invalidArgument("max_staleness: must not be negative")
	}
	if o.Wait < 0 || o.Wait > MaxGetWait {
		return nil, invalidArgument("wait: must be from 0 to %s", MaxGetWait)
	}
	o = c.session.apply(path, o)
	ctx, cancel := c.bound(ctx)
	defer cancel()
	if c.reads != nil && o.plainStrong() {
		return c.reads.read(ctx, path, func(ctx context.Context) (*Entry, error) {
			return c.fetch(ctx, path, o)
		})
	}
	return c.fetch(ctx, path, o)
}

// plainStrong reports whether o asks for nothing but a strong read: the
// reads that coalesce.
func (o GetOptions) plainStrong() bool {
	return (o.Consistency == "" || o.Consistency == ConsistencyStrong) &&
		o.MinVersion == 0 && o.MaxStaleness == 0 && !o.Verify && o.IfNoneMatch == 0 && o.Wait == 0
}

// fetch sends one get and records what it saw in the session.
func (c *Client) fetch(ctx context.Context, path string, o GetOptions) (*Entry, error) {
	req := request{method: http.MethodGet, path: path}
	q := url.Values{}
	if o.Consistency != "" {
		q.Set("consistency", string(o.Consistency))
	}
	if o.MinVersion > 0 {
		q.Set("min_version", strconv.FormatInt(o.MinVersion, 10))
	}
	if o.MaxStaleness > 0 {
		q.Set("max_staleness_ms", strconv.FormatInt(max(o.MaxStaleness.Milliseconds(), 1), 10))
	}
	if o.Verify {
		q.Set("verify", "true")
	}
	if o.Wait > 0 {
		q.Set("wait_ms", strconv.FormatInt(int64((o.Wait+time.Millisecond-1)/time.Millisecond), 10))
		// The service answers up to the wait later than usual.
		req.wait = o.Wait
	}
	if len(q) > 0 {
		req.query = q
	}
	if o.IfNoneMatch > 0 {
		req.header = http.Header{"If-None-Match": {etag(o.IfNoneMatch)}}
	}
	var e Entry
	resp, err := c.call(ctx, req, &e)
	switch {
	case err == nil:
		c.session.sawEntry(path, e.Version)
		return &e, nil
	case errors.Is(err, ErrNotModified):
		c.session.sawEntry(path, o.IfNoneMatch)
	case errors.Is(err, ErrNotFound) && resp.status == http.StatusNotFound:
		// Only a strong read's miss is news: an eventual one may be a
		// replica that has not seen the entry yet.
		read := resp.header.Get("Stampede-Read")
		if read == "strong" || read == "" && o.Consistency != ConsistencyEventual && o.MaxStaleness == 0 {
			c.session.sawAbsent(path)
		}
	}
	return nil, err
}

// Put stores where key's output lives. It fails with ErrAlreadyExists (the
// *APIError's Existing is the live entry) when an entry exists and neither
// Overwrite, MaxAge nor IfMatch allow replacing it, and with
// ErrFailedPrecondition when IfMatch or a fenced put's reservation does not
// hold. Retries carry the call's Idempotency-Key, so a put whose first
// attempt landed answers what that attempt earned (201 stays 201).
func (c *Client) Put(ctx context.Context, s Scope, key string, in PutRequest) (*PutResult, error) {
	path, err := resourcePath(s, key, "cache")
	if err != nil {
		return nil, err
	}
	if in.OwnerID == "" && (in.Fence != 0 || in.Release) {
		return nil, invalidArgument("owner_id: required with fence or release")
	}
	body := struct {
		OutputURI     string    `json:"output_uri"`
		Metadata      *Metadata `json:"metadata,omitempty"`
		Overwrite     bool      `json:"overwrite,omitempty"`
		MaxAgeSeconds *int64    `json:"max_age_seconds,omitempty"`
		TTLSeconds    *int64    `json:"ttl_seconds,omitempty"`
		OwnerID       string    `json:"owner_id,omitempty"`
		Fence         *int64    `json:"fence,omitempty"`
		Release       bool      `json:"release,omitempty"`
		DeleteBlob    bool      `json:"delete_blob,omitempty"`
		VerifyOutput  bool      `json:"verify_output,omitempty"`
	}{OutputURI: in.OutputURI, Overwrite: in.Overwrite, OwnerID: in.OwnerID, Release: in.Release, DeleteBlob: in.DeleteBlob, VerifyOutput: in.VerifyOutput}
	if in.Metadata.Source != nil || len(in.Metadata.Labels) > 0 {
		body.Metadata = &in.Metadata
	}
	if in.Fence != 0 {
		body.Fence = &in.Fence
	}
	if body.MaxAgeSeconds, err = seconds("max_age", in.MaxAge); err != nil {
		return nil, err
	}
	if body.TTLSeconds, err = seconds("ttl", in.TTL); err != nil {
		return nil, err
	}
	data, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req := request{method: http.MethodPut, path: path, body: data}
	if in.IfMatch > 0 {
		req.header = http.Header{"If-Match": {etag(in.IfMatch)}}
	}
	if req.header, _, err = withIdempotencyKey(req.header, in.IdempotencyKey); err != nil {
		return nil, err
	}
	var res PutResult
	resp, err := c.call(ctx, req, &res.Entry)
	if err != nil {
		var apiErr *APIError
		if errors.As(err, &apiErr) && apiErr.Existing != nil {
			c.session.sawEntry(path, apiErr.Existing.Version)
		}
		return nil, err
	}
	c.session.sawEntry(path, res.Entry.Version)
	res.Created = resp.status == http.StatusCreated
	res.OutputDeleteFailed = resp.header.Get("Stampede-Output-Deleted") == "false"
	return &res, nil
}

// Delete removes key's entry (and, with DeleteBlob, its output object).
// Deleting a missing entry is not an error: Deleted is false. opts may be
// nil.
func (c *Client) Delete(ctx context.Context, s Scope, key string, opts *DeleteOptions) (*DeleteResult, error) {
	path, err := resourcePath(s, key, "cache")
	if err != nil {
		return nil, err
	}
	req := request{method: http.MethodDelete, path: path}
	var callerKey string
	if o := opts; o != nil {
		if o.DeleteBlob {
			req.query = url.Values{"delete_blob": {"true"}}
		}
		if o.IfMatch > 0 {
			req.header = http.Header{"If-Match": {etag(o.IfMatch)}}
		}
		callerKey = o.IdempotencyKey
	}
	if req.header, _, err = withIdempotencyKey(req.header, callerKey); err != nil {
		return nil, err
	}
	var out DeleteResult
	if _, err := c.call(ctx, req, &out); err != nil {
		return nil, err
	}
	c.session.sawAbsent(path)
	return &out, nil
}

// Reserve acquires key's reservation for in.OwnerID, or extends it when
// that owner holds it already. When another owner holds a live
// reservation, Acquired is false and the result carries the holder's
// reservation; that is not an error. When Acquired, LeaseDeadline is how
// long the caller may count on the reservation, by its own clock.
func (c *Client) Reserve(ctx context.Context, s Scope, key string, in ReserveRequest) (*ReserveResult, error) {
	path, err := resourcePath(s, key, "reservations")
	if err != nil {
		return nil, err
	}
	if in.OwnerID == "" {
		return nil, invalidArgument("owner_id: required")
	}
	body := struct {
		OwnerID          string `json:"owner_id"`
		HeartbeatSeconds *int64 `json:"heartbeat_interval_seconds,omitempty"`
	}{OwnerID: in.OwnerID}
	if body.HeartbeatSeconds, err = seconds("heartbeat", in.Heartbeat); err != nil {
		return nil, err
	}
	data, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	header, ownKey, err := withIdempotencyKey(nil, in.IdempotencyKey)
	if err != nil {
		return nil, err
	}
	// The lease is counted from before the request left, never from when
	// the answer arrived.
	sent := time.Now()
	// The entry field is decoded apart, to tell null (no entry) from
	// absent (a service older than the field).
	var answer struct {
		ReserveResult
		Entry json.RawMessage `json:"entry"`
	}
	if _, err := c.call(ctx, request{method: http.MethodPost, path: path, header: header, body: data}, &answer); err != nil {
		return nil, err
	}
	res := answer.ReserveResult
	if answer.Entry != nil {
		res.EntryKnown = true
		if string(answer.Entry) != "null" {
			if err := json.Unmarshal(answer.Entry, &res.Entry); err != nil {
				return nil, fmt.Errorf("stampede: reserve: decode the entry: %w", err)
			}
		}
	}
	res.sent = sent
	if res.Acquired {
		res.LeaseDeadline = leaseDeadline(res.Reservation, sent, time.Now(), ownKey)
	}
	return &res, nil
}

// Release ends in.OwnerID's reservation of key. It reports whether a
// reservation was released: false when there was none or another owner
// holds it (which is left alone).
func (c *Client) Release(ctx context.Context, s Scope, key string, in ReleaseRequest) (bool, error) {
	path, err := resourcePath(s, key, "reservations")
	if err != nil {
		return false, err
	}
	if in.OwnerID == "" {
		return false, invalidArgument("owner_id: required")
	}
	var out struct {
		Released bool `json:"released"`
	}
	req := request{method: http.MethodDelete, path: path, query: url.Values{"owner_id": {in.OwnerID}}}
	if req.header, _, err = withIdempotencyKey(nil, in.IdempotencyKey); err != nil {
		return false, err
	}
	if _, err := c.call(ctx, req, &out); err != nil {
		return false, err
	}
	return out.Released, nil
}
