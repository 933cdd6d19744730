package client

import (
	"strings"
)

// resourcePath returns the escaped path of a key's cache entry
// (collection "cache") or reservation ("reservations").
func resourcePath(s Scope, key, collection string) (string, error) {
	if s.Project == "" {
		return "", invalidArgument("project: required")
	}
	if s.Domain == "" {
		return "", invalidArgument("domain: required")
	}
	if key == "" {
		return "", invalidArgument("key: required")
	}
	return "/v1/projects/" + escape(s.Project) + "/domains/" + escape(s.Domain) + "/" + collection + "/" + escape(key), nil
}

// escape percent-encodes every byte of s outside RFC 3986's unreserved set,
// "/" included: a key is one path segment, so "a//b", "/a" or "a/../b"
// reach the service as they are, with no path cleaning on the way. A key
// made only of dots has them encoded too, for the same reason.
func escape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) * 3)
	dots := strings.Trim(s, ".") == ""
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) && !(dots && c == '.') {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}
