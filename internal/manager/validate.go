package manager

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on what callers may send. They keep every item far below
// DynamoDB's 400 KB item limit and its 2048-byte partition key limit.
const (
	MaxNameLength     = 63
	MaxKeyBytes       = 1024
	MaxOwnerIDBytes   = 256
	MaxOutputURIBytes = 2048
	MaxLabels         = 64
	MaxLabelKeyBytes  = 128
	MaxLabelValBytes  = 1024
	MaxSourceBytes    = 256
	// MaxLifetimeSeconds bounds ttl_seconds and max_age_seconds (ten years).
	MaxLifetimeSeconds = 10 * 365 * 24 * 3600
)

// Validate checks the scope names and the key. The org is optional and,
// when set, follows the rules of project and domain names.
func (id ID) Validate() error {
	if id.Org != "" {
		if err := validateName("org", id.Org); err != nil {
			return err
		}
	}
	if err := validateName("project", id.Project); err != nil {
		return err
	}
	if err := validateName("domain", id.Domain); err != nil {
		return err
	}
	return validateText("key", id.Key, MaxKeyBytes, true)
}

// validateName checks a project or domain: 1-63 characters of [a-z0-9_-],
// starting and ending with a letter or digit.
func validateName(field, s string) error {
	if s == "" {
		return Errorf(CodeInvalidArgument, "%s: required", field)
	}
	if len(s) > MaxNameLength {
		return Errorf(CodeInvalidArgument, "%s: longer than %d characters", field, MaxNameLength)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && c != '-' && c != '_' {
			return Errorf(CodeInvalidArgument, "%s: only a-z, 0-9, '-' and '_' are allowed", field)
		}
		if !alnum && (i == 0 || i == len(s)-1) {
			return Errorf(CodeInvalidArgument, "%s: must start and end with a letter or digit", field)
		}
	}
	return nil
}

// validateText checks free text: valid UTF-8, no control characters, at most
// maxBytes bytes, and non-empty when required.
func validateText(field, s string, maxBytes int, required bool) error {
	if s == "" {
		if required {
			return Errorf(CodeInvalidArgument, "%s: required", field)
		}
		return nil
	}
	if len(s) > maxBytes {
		return Errorf(CodeInvalidArgument, "%s: longer than %d bytes", field, maxBytes)
	}
	if !utf8.ValidString(s) {
		return Errorf(CodeInvalidArgument, "%s: not valid UTF-8", field)
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return Errorf(CodeInvalidArgument, "%s: control characters are not allowed", field)
	}
	return nil
}

// validateOutputURI checks an s3://bucket/key URI.
func validateOutputURI(uri string) error {
	const field = "output_uri"
	if err := validateText(field, uri, MaxOutputURIBytes, true); err != nil {
		return err
	}
	bucket, key, ok := SplitS3URI(uri)
	if !ok {
		return Errorf(CodeInvalidArgument, "%s: must be an s3://bucket/key URI", field)
	}
	if !validBucketName(bucket) {
		return Errorf(CodeInvalidArgument, "%s: %q is not a valid S3 bucket name", field, bucket)
	}
	if key == "" {
		return Errorf(CodeInvalidArgument, "%s: the object key is empty", field)
	}
	return nil
}

// SplitS3URI splits s3://bucket/key into its bucket and key.
func SplitS3URI(uri string) (bucket, key string, ok bool) {
	rest, found := strings.CutPrefix(uri, "s3://")
	if !found {
		return "", "", false
	}
	bucket, key, found = strings.Cut(rest, "/")
	return bucket, key, found
}

// validBucketName follows S3's general-purpose bucket naming rules: 3-63
// characters of a-z, 0-9, '.' and '-', starting and ending with a letter or
// digit.
func validBucketName(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && c != '.' && c != '-' {
			return false
		}
		if !alnum && (i == 0 || i == len(b)-1) {
			return false
		}
	}
	return !strings.Contains(b, "..")
}

func validateMetadata(md Metadata) error {
	if s := md.Source; s != nil {
		for _, f := range []struct{ name, value string }{
			{"metadata.source.project", s.Project},
			{"metadata.source.domain", s.Domain},
			{"metadata.source.name", s.Name},
			{"metadata.source.version", s.Version},
		} {
			if err := validateText(f.name, f.value, MaxSourceBytes, false); err != nil {
				return err
			}
		}
	}
	if len(md.Labels) > MaxLabels {
		return Errorf(CodeInvalidArgument, "metadata.labels: more than %d entries", MaxLabels)
	}
	for k, v := range md.Labels {
		if err := validateText("metadata.labels key", k, MaxLabelKeyBytes, true); err != nil {
			return err
		}
		if err := validateText("metadata.labels."+k, v, MaxLabelValBytes, false); err != nil {
			return err
		}
	}
	return nil
}
