package manager

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// MaxIdempotencyKeyBytes bounds a caller's idempotency key.
const MaxIdempotencyKeyBytes = 255

// validateIdempotencyKey checks a caller's key: visible ASCII, 1 to 255
// characters (empty means none).
func validateIdempotencyKey(field, key string) error {
	if len(key) > MaxIdempotencyKeyBytes {
		return Errorf(CodeInvalidArgument, "%s: longer than %d characters", field, MaxIdempotencyKeyBytes)
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x21 || key[i] > 0x7e {
			return Errorf(CodeInvalidArgument, "%s: only visible ASCII characters are allowed", field)
		}
	}
	return nil
}

// newToken returns the identity of one logical write. With a caller's
// idempotency key it is derived from the key, the operation, the ID and
// the request, so re-sending the same request is recognised and reusing a
// key for a different request is simply a different request. Without one
// it is random: it still recognises the SDK's own retries of the write.
func newToken(op string, id ID, idempotencyKey string, req any) (Token, error) {
	if idempotencyKey == "" {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("token: %w", err)
		}
		return Token(base64.RawURLEncoding.EncodeToString(b[:])), nil
	}
	fingerprint, err := json.Marshal(req)
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	h := sha256.New()
	for _, part := range []string{op, id.Project, id.Domain, id.Key, idempotencyKey, string(fingerprint)} {
		fmt.Fprintf(h, "%d:%s", len(part), part)
	}
	return Token(base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])), nil
}
