package flyte

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/stampede-cache/stampede/internal/flyte/gen/flyteidl2/cacheservice"
	"github.com/stampede-cache/stampede/internal/flyte/gen/flyteidl2/core"
	"github.com/stampede-cache/stampede/internal/manager"
)

func TestConnectError(t *testing.T) {
	tests := []struct {
		err        error
		code       connect.Code
		msg        string
		retryAfter bool
	}{
		{manager.Errorf(manager.CodeInvalidArgument, "project: required"), connect.CodeInvalidArgument, "identifier.project: required", false},
		{manager.Errorf(manager.CodeInvalidArgument, "org: longer than 63 characters"), connect.CodeInvalidArgument, "identifier.org: longer than 63 characters", false},
		{manager.Errorf(manager.CodeInvalidArgument, "metadata.labels.x: control characters are not allowed"), connect.CodeInvalidArgument,
			"base_request.output.metadata.key_map.values.x: control characters are not allowed", false},
		{manager.Errorf(manager.CodeInvalidArgument, "metadata.source.name: not valid UTF-8"), connect.CodeInvalidArgument,
			"base_request.output.metadata.source_identifier.name: not valid UTF-8", false},
		{manager.Errorf(manager.CodeInvalidArgument, "idempotency_key: must be 1 to 255 visible ASCII characters"), connect.CodeInvalidArgument,
			"Idempotency-Key: must be 1 to 255 visible ASCII characters", false},
		{manager.Errorf(manager.CodeInvalidArgument, "keyless message"), connect.CodeInvalidArgument, "keyless message", false},
		{manager.Errorf(manager.CodeNotFound, "key: no cached entry"), connect.CodeNotFound, "base_request.key: no cached entry", false},
		{&manager.Error{Code: manager.CodeAlreadyExists, Message: "key: an entry exists; set overwrite or max_age_seconds to replace it"},
			connect.CodeAlreadyExists, "base_request.key: an entry exists; set overwrite.overwrite or overwrite.max_age to replace it", false},
		{manager.Errorf(manager.CodeFailedPrecondition, "output_uri: the object s3://b/k does not exist"), connect.CodeFailedPrecondition,
			"base_request.output.output_uri: the object s3://b/k does not exist", false},
		{manager.Errorf(manager.CodePayloadTooLarge, "body: too large"), connect.CodeResourceExhausted, "body: too large", false},
		{fmt.Errorf("put entry: %w", manager.Errorf(manager.CodeThrottled, "DynamoDB is throttling")), connect.CodeResourceExhausted, "DynamoDB is throttling", true},
		{&manager.Error{Code: manager.CodeUnavailable, Message: "DynamoDB did not answer in time", Err: errors.New("dial tcp: secret detail")},
			connect.CodeUnavailable, "DynamoDB did not answer in time", true},
		{errors.New("nil pointer somewhere"), connect.CodeInternal, "internal error", false},
	}
	for _, tt := range tests {
		got := ConnectError(tt.err)
		if got.Code() != tt.code || got.Message() != tt.msg {
			t.Errorf("%v: got %s %q, want %s %q", tt.err, got.Code(), got.Message(), tt.code, tt.msg)
		}
		if ra := got.Meta().Get("Retry-After"); (ra == RetryAfterSeconds) != tt.retryAfter {
			t.Errorf("%v: Retry-After %q", tt.err, ra)
		}
	}
}

func TestDurations(t *testing.T) {
	tests := []struct {
		d       *durationpb.Duration
		max     *int64 // max_age seconds; nil with err
		beat    *int64 // heartbeat seconds; nil means the default
		invalid bool
	}{
		{d: nil, beat: nil},
		{d: durationpb.New(0), max: ptr(int64(0)), beat: nil},
		{d: durationpb.New(time.Nanosecond), max: ptr(int64(1)), beat: ptr(int64(1))},
		{d: durationpb.New(2500 * time.Millisecond), max: ptr(int64(3)), beat: ptr(int64(3))},
		{d: durationpb.New(time.Hour), max: ptr(int64(3600)), beat: ptr(int64(3600))},
		{d: &durationpb.Duration{Seconds: 315576000000}, max: ptr(int64(315576000000)), beat: ptr(int64(315576000000))},
		{d: durationpb.New(-time.Second), invalid: true},
		{d: &durationpb.Duration{Seconds: 1, Nanos: -1}, invalid: true},
		{d: &durationpb.Duration{Nanos: 2e9}, invalid: true},
	}
	for _, tt := range tests {
		beat, err := heartbeatSeconds(tt.d)
		if (err != nil) != tt.invalid || !samePtr(beat, tt.beat) {
			t.Errorf("heartbeat %v: got %v, %v", tt.d, deref(beat), err)
		}
		if tt.d == nil {
			continue
		}
		req, err := putRequest(&cacheservice.PutCacheRequest{
			Output:    &cacheservice.CachedOutput{Output: &cacheservice.CachedOutput_OutputUri{OutputUri: "s3://b/k"}},
			Overwrite: &cacheservice.OverwriteOutput{MaxAge: tt.d},
		}, http.Header{})
		if (err != nil) != tt.invalid || !samePtr(req.MaxAgeSeconds, tt.max) {
			t.Errorf("max_age %v: got %v, %v", tt.d, deref(req.MaxAgeSeconds), err)
		}
	}
}

func TestMetadataRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   *cacheservice.Metadata
	}{
		{"none", nil},
		{"key map only", &cacheservice.Metadata{KeyMap: &cacheservice.KeyMapMetadata{Values: map[string]string{"a": "1"}}}},
		{"source without org or type", &cacheservice.Metadata{SourceIdentifier: &core.Identifier{Project: "p", Domain: "d", Name: "n", Version: "v"}}},
		{"everything", &cacheservice.Metadata{
			SourceIdentifier: &core.Identifier{ResourceType: core.ResourceType_WORKFLOW, Org: "o", Project: "p", Domain: "d", Name: "n", Version: "v"},
			KeyMap:           &cacheservice.KeyMapMetadata{Values: map[string]string{"a": "1", "b": ""}},
		}},
	}
	created := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	for _, tt := range tests {
		md, err := toMetadata(tt.in)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		out := toCachedOutput(&manager.Entry{OutputURI: "s3://b/k", Metadata: md, CreatedAt: created, LastUpdatedAt: created.Add(time.Second)})
		want := proto.Clone(tt.in).(*cacheservice.Metadata)
		if want == nil {
			want = &cacheservice.Metadata{}
		}
		want.CreatedAt, want.LastUpdatedAt = timestamppb.New(created), timestamppb.New(created.Add(time.Second))
		if !proto.Equal(out.GetMetadata(), want) || out.GetOutputUri() != "s3://b/k" {
			t.Errorf("%s: got %v, want %v", tt.name, out.GetMetadata(), want)
		}
	}
}

// A label set through the HTTP API that names no resource type stays a
// label.
func TestUnknownResourceTypeLabelStays(t *testing.T) {
	out := toCachedOutput(&manager.Entry{OutputURI: "s3://b/k", Metadata: manager.Metadata{
		Source: &manager.Source{Name: "n"},
		Labels: map[string]string{sourceResourceTypeLabel: "GADGET"},
	}})
	if out.GetMetadata().GetSourceIdentifier().GetResourceType() != core.ResourceType_UNSPECIFIED ||
		out.GetMetadata().GetKeyMap().GetValues()[sourceResourceTypeLabel] != "GADGET" {
		t.Fatalf("got %v", out.GetMetadata())
	}
}

func ptr[T any](v T) *T { return &v }

func samePtr(a, b *int64) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }

func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}
