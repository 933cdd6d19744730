package client

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
)

// IdempotencyKeyHeader is the request header naming a mutating call's
// attempt identity.
const IdempotencyKeyHeader = "Idempotency-Key"

// MaxIdempotencyKeyLen is the longest Idempotency-Key the service accepts.
const MaxIdempotencyKeyLen = 255

// NewIdempotencyKey returns a fresh random Idempotency-Key. Callers that
// must retry a call across process restarts (a worker that persists its
// intent before sending) make one, store it, and pass it in the request's
// IdempotencyKey field on every try.
func NewIdempotencyKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "stampede-" + hex.EncodeToString(b[:])
}

// validIdempotencyKey checks a caller's key as the service would: 1 to 255
// visible ASCII characters.
func validIdempotencyKey(k string) error {
	if k == "" || len(k) > MaxIdempotencyKeyLen {
		return invalidArgument("%s: must be 1 to %d characters, got %d", IdempotencyKeyHeader, MaxIdempotencyKeyLen, len(k))
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c < 0x21 || c > 0x7e {
			return invalidArgument("%s: only visible ASCII characters (0x21-0x7E) are allowed, found 0x%02X at byte %d", IdempotencyKeyHeader, c, i)
		}
	}
	return nil
}

// withIdempotencyKey adds a mutating call's Idempotency-Key to h (which may
// be nil): the caller's when given, else a fresh one for this call. It
// reports whether the key is the client's own, so the first successful
// attempt of this very call is the one the answer reflects.
func withIdempotencyKey(h http.Header, callerKey string) (http.Header, bool, error) {
	key, own := callerKey, callerKey == ""
	if own {
		key = NewIdempotencyKey()
	} else if err := validIdempotencyKey(key); err != nil {
		return nil, false, err
	}
	if h == nil {
		h = http.Header{}
	}
	h.Set(IdempotencyKeyHeader, key)
	return h, own, nil
}
