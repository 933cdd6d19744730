// Package client is the Go client of Stampede, the cache-and-reservation
// service for workflow task outputs.
//
// A Client makes the service's five calls (Get, Put, Delete, Reserve and
// Release) over its HTTP contract, with retries (exponential backoff with
// full jitter on 429, 5xx and network errors, honoring Retry-After, never
// past the call's deadline), an Idempotency-Key on every mutating call so
// that a retry answers what the first successful attempt earned, a
// deadline on every request (the caller's, or a default), and, for
// deployed APIs, AWS Signature Version 4 signing with credentials from the
// default chain.
//
// Concurrent strong reads of a key through one Client share requests
// without ever answering older than a write acknowledged before the read
// began, and cheaper reads (eventual, bounded staleness) carry the newest
// version the Client has seen of the key, so they never go back in time.
//
// On top of them, GetOrCompute runs the protocol most callers want:
// "compute this once, across all my workers, and give everyone the result".
// It returns a cached entry when there is one; otherwise exactly one caller
// (the one holding the key's reservation) runs compute while heartbeating,
// stores the output and releases the reservation, and the others wait for
// its result, taking over when its reservation expires. See docs/client.md.
//
// Errors from the service are *APIError values; test them with errors.Is
// against ErrNotFound, ErrAlreadyExists, ErrFailedPrecondition,
// ErrInvalidArgument, ErrThrottled, ErrUnavailable and the other sentinels,
// or with errors.As to read the entry or reservation that made a
// conditional request fail.
package client
