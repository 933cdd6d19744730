package client

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"unicode"
)

// NewOwnerID returns a reservation owner ID unique to this call: the host
// name plus a random suffix, e.g. "build-7f9c-4a1b2c3d4e5f".
func NewOwnerID() string {
	host, err := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return -1
		}
		return r
	}, host)
	if err != nil || host == "" {
		host = "stampede"
	}
	if len(host) > 200 {
		host = strings.ToValidUTF8(host[:200], "")
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}
