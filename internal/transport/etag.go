package transport

import (
	"strconv"
	"strings"

	"github.com/stampede-cache/stampede/internal/manager"
)

// Entity tags (RFC 9110, section 8.8.3): an entry's ETag is its version in
// quotes, "<version>". Parsing is strict: a malformed header is a 400, never
// read as something it does not say.

// etag is an entry version as an HTTP entity tag.
func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// parseETag reads one entity tag at the start of s: its version, whether it
// is weak, and the rest of s.
func parseETag(s string) (version int64, weak bool, rest string, ok bool) {
	if strings.HasPrefix(s, "W/") {
		weak, s = true, s[2:]
	}
	if !strings.HasPrefix(s, `"`) {
		return 0, false, "", false
	}
	end := strings.IndexByte(s[1:], '"')
	if end < 0 {
		return 0, false, "", false
	}
	opaque := s[1 : end+1]
	n, err := strconv.ParseInt(opaque, 10, 64)
	if err != nil || n < 1 || opaque != strconv.FormatInt(n, 10) {
		// A well-formed tag that names no version of ours matches nothing.
		n = 0
		for _, c := range opaque {
			if c == 0x7f || c < 0x21 && c != 0x20 || c == '"' {
				return 0, false, "", false
			}
		}
	}
	return n, weak, s[end+2:], true
}

// parseIfMatch reads an If-Match header: exactly one strong entity tag,
// "<version>" (the put or delete then applies only to that version).
func parseIfMatch(v string) (*int64, error) {
	if v == "" {
		return nil, nil
	}
	n, weak, rest, ok := parseETag(strings.TrimSpace(v))
	if !ok || weak || n == 0 || strings.TrimSpace(rest) != "" {
		return nil, manager.Errorf(manager.CodeInvalidArgument, `If-Match: must be one strong entity tag such as "1763773200124" (the entry's version)`)
	}
	return &n, nil
}

// etagSet is a parsed If-None-Match header.
type etagSet struct {
	any      bool
	versions []int64
}

// matches reports whether the set names the version (weak comparison).
func (s etagSet) matches(version int64) bool {
	if s.any {
		return true
	}
	for _, v := range s.versions {
		if v == version {
			return true
		}
	}
	return false
}

// parseIfNoneMatch reads an If-None-Match header: "*" or a comma-separated
// list of entity tags, weak or strong.
func parseIfNoneMatch(v string) (etagSet, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return etagSet{}, nil
	}
	if v == "*" {
		return etagSet{any: true}, nil
	}
	var set etagSet
	for {
		n, _, rest, ok := parseETag(v)
		if !ok {
			return etagSet{}, manager.Errorf(manager.CodeInvalidArgument, `If-None-Match: must be "*" or a list of entity tags such as "1763773200124"`)
		}
		if n > 0 {
			set.versions = append(set.versions, n)
		}
		rest = strings.TrimSpace(rest)
		if rest == "" {
			return set, nil
		}
		if v = strings.TrimSpace(strings.TrimPrefix(rest, ",")); v == rest || v == "" {
			return etagSet{}, manager.Errorf(manager.CodeInvalidArgument, `If-None-Match: must be "*" or a list of entity tags such as "1763773200124"`)
		}
	}
}
