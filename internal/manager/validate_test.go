package manager_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stampede-cache/stampede/internal/manager"
)

func TestValidationNamesTheField(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	long := strings.Repeat("a", 64)
	tests := []struct {
		name  string
		id    manager.ID
		put   manager.PutRequest
		field string
	}{
		{"empty project", manager.ID{Domain: "d", Key: "k"}, manager.PutRequest{}, "project"},
		{"upper-case project", manager.ID{Project: "Proj", Domain: "d", Key: "k"}, manager.PutRequest{}, "project"},
		{"project with slash", manager.ID{Project: "a/b", Domain: "d", Key: "k"}, manager.PutRequest{}, "project"},
		{"project ends with dash", manager.ID{Project: "a-", Domain: "d", Key: "k"}, manager.PutRequest{}, "project"},
		{"project too long", manager.ID{Project: long, Domain: "d", Key: "k"}, manager.PutRequest{}, "project"},
		{"domain starts with underscore", manager.ID{Project: "p", Domain: "_d", Key: "k"}, manager.PutRequest{}, "domain"},
		{"empty key", manager.ID{Project: "p", Domain: "d"}, manager.PutRequest{}, "key"},
		{"key over 1024 bytes", manager.ID{Project: "p", Domain: "d", Key: strings.Repeat("é", 513)}, manager.PutRequest{}, "key"},
		{"key with control char", manager.ID{Project: "p", Domain: "d", Key: "a\nb"}, manager.PutRequest{}, "key"},
		{"key invalid utf-8", manager.ID{Project: "p", Domain: "d", Key: "a\xffb"}, manager.PutRequest{}, "key"},
		{"missing output_uri", id("k"), manager.PutRequest{}, "output_uri"},
		{"not s3", id("k"), manager.PutRequest{OutputURI: "gs://bucket/x"}, "output_uri"},
		{"bad bucket", id("k"), manager.PutRequest{OutputURI: "s3://B/x"}, "output_uri"},
		{"no object key", id("k"), manager.PutRequest{OutputURI: "s3://bucket/"}, "output_uri"},
		{"uri too long", id("k"), manager.PutRequest{OutputURI: "s3://bucket/" + strings.Repeat("x", 2040)}, "output_uri"},
		{"too many labels", id("k"), manager.PutRequest{OutputURI: "s3://bucket/x", Metadata: manager.Metadata{Labels: manyLabels(65)}}, "metadata.labels"},
		{"empty label key", id("k"), manager.PutRequest{OutputURI: "s3://bucket/x", Metadata: manager.Metadata{Labels: map[string]string{"": "v"}}}, "metadata.labels"},
		{"bad source", id("k"), manager.PutRequest{OutputURI: "s3://bucket/x", Metadata: manager.Metadata{Source: &manager.Source{Name: "\x00"}}}, "metadata.source.name"},
		{"ttl zero", id("k"), manager.PutRequest{OutputURI: "s3://bucket/x", TTLSeconds: ptr[int64](0)}, "ttl_seconds"},
		{"ttl huge", id("k"), manager.PutRequest{OutputURI: "s3://bucket/x", TTLSeconds: ptr[int64](1 << 60)}, "ttl_seconds"},
		{"negative max age", id("k"), manager.PutRequest{OutputURI: "s3://bucket/x", MaxAgeSeconds: ptr[int64](-1)}, "max_age_seconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.mgr.Put(ctx, tt.id, tt.put)
			e := wantCode(t, err, manager.CodeInvalidArgument)
			if !strings.HasPrefix(e.Message, tt.field) {
				t.Fatalf("message %q does not start with the field %q", e.Message, tt.field)
			}
		})
	}
	_, err := f.mgr.Reserve(ctx, id("k"), manager.ReserveRequest{OwnerID: strings.Repeat("o", 257)})
	if e := wantCode(t, err, manager.CodeInvalidArgument); !strings.HasPrefix(e.Message, "owner_id") {
		t.Fatalf("message %q", e.Message)
	}
	_, err = f.mgr.Release(ctx, id("k"), manager.ReleaseRequest{OwnerID: ""})
	if e := wantCode(t, err, manager.CodeInvalidArgument); !strings.HasPrefix(e.Message, "owner_id") {
		t.Fatalf("message %q", e.Message)
	}
}

func TestWeirdKeysAreAccepted(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, key := range []string{"a/b/c", "#hash", "100%", "with space", "日本語", "emoji 🐘", "..", "/leading", "trailing/", strings.Repeat("k", 1024)} {
		if _, err := f.mgr.Put(ctx, id(key), manager.PutRequest{OutputURI: "s3://bucket/x"}); err != nil {
			t.Fatalf("put %q: %v", key, err)
		}
		got, err := f.mgr.Get(ctx, id(key), manager.GetOptions{})
		if err != nil || got.Entry.Key != key {
			t.Fatalf("get %q = %+v, %v", key, got, err)
		}
	}
}

func manyLabels(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m["l"+strings.Repeat("x", i)] = "v"
	}
	return m
}
