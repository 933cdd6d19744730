package flyte

import (
	"maps"
	"net/http"
	"strings"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/stampede-cache/stampede/internal/flyte/gen/flyteidl2/cacheservice"
	cacheservicev2 "github.com/stampede-cache/stampede/internal/flyte/gen/flyteidl2/cacheservice/v2"
	"github.com/stampede-cache/stampede/internal/flyte/gen/flyteidl2/core"
	"github.com/stampede-cache/stampede/internal/manager"
)

// The labels that keep the parts of a source_identifier Stampede's Source
// has no field for. key_map keys starting with SourceLabelPrefix are
// refused, so these never mix with a client's own labels.
const (
	SourceLabelPrefix       = "flyte.source_identifier."
	sourceOrgLabel          = SourceLabelPrefix + "org"
	sourceResourceTypeLabel = SourceLabelPrefix + "resource_type"
)

// IdempotencyKeyHeader is the request header carrying an idempotency key
// for Put, Delete and ReleaseReservation, as on the HTTP API.
const IdempotencyKeyHeader = "Idempotency-Key"

// scope turns a request's Identifier and key into a manager ID. The org
// is optional: an empty org is the default org of the HTTP API's routes.
// Names and the key are checked by the manager.
func scope(id *cacheservicev2.Identifier, hasBase bool, key string) (manager.ID, error) {
	if !hasBase {
		return manager.ID{}, manager.Errorf(manager.CodeInvalidArgument, "base_request: required")
	}
	if id == nil {
		return manager.ID{}, manager.Errorf(manager.CodeInvalidArgument, "identifier: required")
	}
	return manager.ID{Org: id.GetOrg(), Project: id.GetProject(), Domain: id.GetDomain(), Key: key}, nil
}

// putRequest translates a PutCacheRequest into the manager's.
func putRequest(base *cacheservice.PutCacheRequest, header http.Header) (manager.PutRequest, error) {
	out := base.GetOutput()
	if out == nil {
		return manager.PutRequest{}, manager.Errorf(manager.CodeInvalidArgument, "base_request.output: required")
	}
	if _, ok := out.GetOutput().(*cacheservice.CachedOutput_OutputLiterals); ok {
		return manager.PutRequest{}, manager.Errorf(manager.CodeInvalidArgument, "base_request.output.output_literals: only output_uri is supported")
	}
	md, err := toMetadata(out.GetMetadata())
	if err != nil {
		return manager.PutRequest{}, err
	}
	key, err := idempotencyKey(header)
	if err != nil {
		return manager.PutRequest{}, err
	}
	req := manager.PutRequest{
		OutputURI:      out.GetOutputUri(),
		Metadata:       md,
		Overwrite:      base.GetOverwrite().GetOverwrite(),
		DeleteBlob:     base.GetOverwrite().GetDeleteBlob(),
		IdempotencyKey: key,
	}
	if maxAge := base.GetOverwrite().GetMaxAge(); maxAge != nil {
		seconds, err := wholeSeconds("base_request.overwrite.max_age", maxAge)
		if err != nil {
			return manager.PutRequest{}, err
		}
		req.MaxAgeSeconds = &seconds
	}
	return req, nil
}

// heartbeatSeconds turns a requested heartbeat interval into the
// manager's: absent or zero means the default (proto3 clients cannot tell
// them apart), a fraction of a second rounds up, and the manager clamps
// it to the configured maximum as on the HTTP API.
func heartbeatSeconds(d *durationpb.Duration) (*int64, error) {
	if d == nil || d.GetSeconds() == 0 && d.GetNanos() == 0 {
		return nil, nil
	}
	seconds, err := wholeSeconds("base_request.heartbeat_interval", d)
	if err != nil {
		return nil, err
	}
	return &seconds, nil
}

// wholeSeconds converts a non-negative Duration to whole seconds, rounding
// a fraction up: Stampede's lifetimes are whole seconds, and rounding up
// never makes a max_age replace an entry younger than asked.
func wholeSeconds(field string, d *durationpb.Duration) (int64, error) {
	if err := d.CheckValid(); err != nil {
		return 0, manager.Errorf(manager.CodeInvalidArgument, "%s: not a valid duration", field)
	}
	if d.GetSeconds() < 0 || d.GetNanos() < 0 {
		return 0, manager.Errorf(manager.CodeInvalidArgument, "%s: must not be negative", field)
	}
	s := d.GetSeconds()
	if d.GetNanos() > 0 {
		s++
	}
	return s, nil
}

// idempotencyKey reads the Idempotency-Key header; the manager checks it.
func idempotencyKey(header http.Header) (string, error) {
	values := header.Values(IdempotencyKeyHeader)
	switch {
	case len(values) == 0:
		return "", nil
	case len(values) > 1:
		return "", manager.Errorf(manager.CodeInvalidArgument, "%s: given more than once", IdempotencyKeyHeader)
	case values[0] == "":
		return "", manager.Errorf(manager.CodeInvalidArgument, "%s: must not be empty", IdempotencyKeyHeader)
	}
	return values[0], nil
}

// toMetadata translates Flyte's Metadata: key_map becomes the labels;
// source_identifier's project, domain, name and version become the source,
// and its org and resource type, which the source has no field for, two
// labels under SourceLabelPrefix. created_at and last_updated_at are the
// server's to set and are ignored.
func toMetadata(md *cacheservice.Metadata) (manager.Metadata, error) {
	var out manager.Metadata
	values := md.GetKeyMap().GetValues()
	for k := range values {
		if strings.HasPrefix(k, SourceLabelPrefix) {
			return out, manager.Errorf(manager.CodeInvalidArgument, "base_request.output.metadata.key_map.values: keys starting with %q are reserved", SourceLabelPrefix)
		}
	}
	labels := maps.Clone(values)
	if src := md.GetSourceIdentifier(); src != nil {
		out.Source = &manager.Source{Project: src.GetProject(), Domain: src.GetDomain(), Name: src.GetName(), Version: src.GetVersion()}
		if labels == nil && (src.GetOrg() != "" || src.GetResourceType() != core.ResourceType_UNSPECIFIED) {
			labels = map[string]string{}
		}
		if src.GetOrg() != "" {
			labels[sourceOrgLabel] = src.GetOrg()
		}
		if rt := src.GetResourceType(); rt != core.ResourceType_UNSPECIFIED {
			labels[sourceResourceTypeLabel] = rt.String()
		}
	}
	out.Labels = labels
	return out, nil
}

// toCachedOutput translates an entry into Flyte's CachedOutput; its
// metadata is always set, with the entry's own timestamps.
func toCachedOutput(e *manager.Entry) *cacheservice.CachedOutput {
	md := &cacheservice.Metadata{
		CreatedAt:     timestamppb.New(e.CreatedAt),
		LastUpdatedAt: timestamppb.New(e.LastUpdatedAt),
	}
	labels := maps.Clone(e.Metadata.Labels)
	if s := e.Metadata.Source; s != nil {
		md.SourceIdentifier = &core.Identifier{Project: s.Project, Domain: s.Domain, Name: s.Name, Version: s.Version}
		if org, ok := labels[sourceOrgLabel]; ok {
			md.SourceIdentifier.Org = org
			delete(labels, sourceOrgLabel)
		}
		// A label written through the HTTP API may name no resource type:
		// it then stays a label.
		if v, ok := core.ResourceType_value[labels[sourceResourceTypeLabel]]; ok {
			md.SourceIdentifier.ResourceType = core.ResourceType(v)
			delete(labels, sourceResourceTypeLabel)
		}
	}
	if len(labels) > 0 {
		md.KeyMap = &cacheservice.KeyMapMetadata{Values: labels}
	}
	return &cacheservice.CachedOutput{
		Output:   &cacheservice.CachedOutput_OutputUri{OutputUri: e.OutputURI},
		Metadata: md,
	}
}

// toReservation translates a reservation into Flyte's, under the key the
// caller named.
func toReservation(key string, r manager.Reservation) *cacheservice.Reservation {
	return &cacheservice.Reservation{
		Key:               key,
		OwnerId:           r.OwnerID,
		HeartbeatInterval: durationpb.New(r.HeartbeatInterval),
		ExpiresAt:         timestamppb.New(r.ExpiresAt),
	}
}
