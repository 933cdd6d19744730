package manager

import (
	"slices"
	"strings"
)

// Tenancy: Stampede checks and deletes only objects of the request's own
// scope, s3://<managed bucket>/<project>/<domain>/… (with an org,
// s3://<managed bucket>/@<org>/<project>/<domain>/…), so a caller allowed
// on one project can neither delete nor probe another project's outputs by
// pointing an entry at them.

// ScopePath is id's scope as an object key prefix, "<project>/<domain>/" or
// "@<org>/<project>/<domain>/": injective like the store's keys.
func (id ID) ScopePath() string {
	p := id.Project + "/" + id.Domain + "/"
	if id.Org != "" {
		p = "@" + id.Org + "/" + p
	}
	return p
}

// scopePrefixes are the URI prefixes of id's scope in the managed buckets.
func (m *Manager) scopePrefixes(id ID) []string {
	out := make([]string, 0, len(m.managed))
	for _, b := range m.managed {
		out = append(out, "s3://"+b+"/"+id.ScopePath())
	}
	return out
}

// inScope reports whether uri is an object of id's scope in a managed
// bucket Stampede can reach.
func (m *Manager) inScope(id ID, uri string) bool {
	if m.blobs == nil {
		return false
	}
	return slices.ContainsFunc(m.scopePrefixes(id), func(p string) bool { return strings.HasPrefix(uri, p) })
}

// requireInScope refuses to check or delete uri outside id's scope.
func (m *Manager) requireInScope(field string, id ID, uri string) error {
	if m.inScope(id, uri) {
		return nil
	}
	bucket := bucketOf(uri)
	if m.blobs == nil || !slices.Contains(m.managed, bucket) {
		return Errorf(CodeInvalidArgument, "%s: bucket %q is not managed by Stampede", field, bucket)
	}
	return Errorf(CodeInvalidArgument, "%s: %s is outside this scope's outputs, s3://%s/%s", field, uri, bucket, id.ScopePath())
}

// requireManagedBuckets refuses delete_blob when Stampede manages no bucket.
func (m *Manager) requireManagedBuckets(deleteBlob bool) error {
	if deleteBlob && (m.blobs == nil || len(m.managed) == 0) {
		return Errorf(CodeInvalidArgument, "delete_blob: no managed buckets are configured")
	}
	return nil
}

// managedBucket reports whether uri is in a managed bucket.
func (m *Manager) managedBucket(uri string) bool {
	return slices.Contains(m.managed, bucketOf(uri))
}

func bucketOf(uri string) string {
	b, _, _ := SplitS3URI(uri)
	return b
}
