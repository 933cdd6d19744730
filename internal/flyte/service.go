// Package flyte serves Flyte 2's cache service,
// flyteidl2.cacheservice.v2.CacheService, over Stampede's manager: it
// translates Flyte's messages to manager calls and back (docs/flyte.md has
// the mapping table). Mount hands it to the transport, which serves it in
// the local server and in the flyte Lambda function; the code under gen/ is
// generated from the .proto files in proto/ (make generate).
package flyte

import (
	"context"
	"net/http"

	"connectrpc.com/connect"

	"github.com/stampede-cache/stampede/internal/flyte/gen/flyteidl2/cacheservice"
	cacheservicev2 "github.com/stampede-cache/stampede/internal/flyte/gen/flyteidl2/cacheservice/v2"
	"github.com/stampede-cache/stampede/internal/flyte/gen/flyteidl2/cacheservice/v2/cacheservicev2connect"
	"github.com/stampede-cache/stampede/internal/manager"
)

// The service's name and its procedures' paths, as Flyte routes them.
const (
	ServiceName                     = cacheservicev2connect.CacheServiceName
	GetProcedure                    = cacheservicev2connect.CacheServiceGetProcedure
	PutProcedure                    = cacheservicev2connect.CacheServicePutProcedure
	DeleteProcedure                 = cacheservicev2connect.CacheServiceDeleteProcedure
	GetOrExtendReservationProcedure = cacheservicev2connect.CacheServiceGetOrExtendReservationProcedure
	ReleaseReservationProcedure     = cacheservicev2connect.CacheServiceReleaseReservationProcedure
)

// PathPrefix is the prefix of every procedure's path.
const PathPrefix = "/" + ServiceName + "/"

// Service implements Flyte's CacheService over a manager. Each call is one
// manager call, so one DynamoDB request, as on the HTTP API.
type Service struct {
	mgr *manager.Manager
}

var _ cacheservicev2connect.CacheServiceHandler = (*Service)(nil)

// NewService returns the service over mgr.
func NewService(mgr *manager.Manager) *Service { return &Service{mgr: mgr} }

// NewHandler returns the path prefix and the HTTP handler serving the
// service over the Connect, gRPC and gRPC-Web protocols, with the binary
// protobuf and JSON codecs.
func NewHandler(mgr *manager.Manager, opts ...connect.HandlerOption) (string, http.Handler) {
	return cacheservicev2connect.NewCacheServiceHandler(NewService(mgr), opts...)
}

// Get answers the live entry of a key, or not_found.
func (s *Service) Get(ctx context.Context, req *connect.Request[cacheservicev2.GetCacheRequest]) (*connect.Response[cacheservice.GetCacheResponse], error) {
	call := begin(ctx)
	id, err := scope(req.Msg.GetIdentifier(), req.Msg.GetBaseRequest() != nil, req.Msg.GetBaseRequest().GetKey())
	if err != nil {
		return nil, call.fail(err)
	}
	call.about(id, "")
	res, err := s.mgr.Get(ctx, id, manager.GetOptions{})
	if manager.ErrorCode(err) == manager.CodeNotFound {
		call.Outcome = "miss"
	}
	if err != nil {
		return nil, call.fail(err)
	}
	call.Outcome = "hit"
	return connect.NewResponse(&cacheservice.GetCacheResponse{Output: toCachedOutput(res.Entry)}), nil
}

// Put stores an output URI under a key: created when the key has no live
// entry, else only as OverwriteOutput allows.
func (s *Service) Put(ctx context.Context, req *connect.Request[cacheservicev2.PutCacheRequest]) (*connect.Response[cacheservice.PutCacheResponse], error) {
	call := begin(ctx)
	base := req.Msg.GetBaseRequest()
	id, err := scope(req.Msg.GetIdentifier(), base != nil, base.GetKey())
	if err != nil {
		return nil, call.fail(err)
	}
	call.about(id, "")
	put, err := putRequest(base, req.Header())
	if err != nil {
		return nil, call.fail(err)
	}
	res, err := s.mgr.Put(ctx, id, put)
	switch manager.ErrorCode(err) {
	case "":
	case manager.CodeAlreadyExists:
		call.Outcome = "conflict"
		return nil, call.fail(err)
	case manager.CodeFailedPrecondition:
		call.Outcome = "precondition_failed"
		return nil, call.fail(err)
	default:
		return nil, call.fail(err)
	}
	call.Outcome, call.Warning = "overwritten", res.BlobErr
	if res.Created {
		call.Outcome = "created"
	}
	return connect.NewResponse(&cacheservice.PutCacheResponse{}), nil
}

// Delete removes a key's entry; a key without a live entry is not_found,
// as in Flyte's own service.
func (s *Service) Delete(ctx context.Context, req *connect.Request[cacheservicev2.DeleteCacheRequest]) (*connect.Response[cacheservice.DeleteCacheResponse], error) {
	call := begin(ctx)
	id, err := scope(req.Msg.GetIdentifier(), req.Msg.GetBaseRequest() != nil, req.Msg.GetBaseRequest().GetKey())
	if err != nil {
		return nil, call.fail(err)
	}
	call.about(id, "")
	key, err := idempotencyKey(req.Header())
	if err != nil {
		return nil, call.fail(err)
	}
	res, err := s.mgr.Delete(ctx, id, manager.DeleteRequest{IdempotencyKey: key})
	if err != nil {
		return nil, call.fail(err)
	}
	if !res.Deleted {
		call.Outcome = "absent"
		return nil, call.fail(manager.Errorf(manager.CodeNotFound, "key: no cached entry"))
	}
	call.Outcome = "deleted"
	return connect.NewResponse(&cacheservice.DeleteCacheResponse{}), nil
}

// GetOrExtendReservation acquires or extends the caller's reservation of a
// key and answers the reservation's holder: the caller when it holds it,
// else the current owner (whose lease the caller waits out).
func (s *Service) GetOrExtendReservation(ctx context.Context, req *connect.Request[cacheservicev2.GetOrExtendReservationRequest]) (*connect.Response[cacheservice.GetOrExtendReservationResponse], error) {
	call := begin(ctx)
	base := req.Msg.GetBaseRequest()
	id, err := scope(req.Msg.GetIdentifier(), base != nil, base.GetKey())
	if err != nil {
		return nil, call.fail(err)
	}
	call.about(id, base.GetOwnerId())
	heartbeat, err := heartbeatSeconds(base.GetHeartbeatInterval())
	if err != nil {
		return nil, call.fail(err)
	}
	res, err := s.mgr.Reserve(ctx, id, manager.ReserveRequest{OwnerID: base.GetOwnerId(), HeartbeatSeconds: heartbeat})
	if err != nil {
		return nil, call.fail(err)
	}
	switch {
	case res.TookOver:
		call.Outcome = "taken_over"
	case res.Acquired:
		call.Outcome = "acquired"
	default:
		call.Outcome = "contended"
	}
	return connect.NewResponse(&cacheservice.GetOrExtendReservationResponse{
		Reservation: toReservation(base.GetKey(), res.Reservation),
	}), nil
}

// ReleaseReservation ends the caller's reservation of a key. Releasing a
// key the caller does not hold succeeds and leaves any other owner's
// reservation alone.
func (s *Service) ReleaseReservation(ctx context.Context, req *connect.Request[cacheservicev2.ReleaseReservationRequest]) (*connect.Response[cacheservice.ReleaseReservationResponse], error) {
	call := begin(ctx)
	base := req.Msg.GetBaseRequest()
	id, err := scope(req.Msg.GetIdentifier(), base != nil, base.GetKey())
	if err != nil {
		return nil, call.fail(err)
	}
	call.about(id, base.GetOwnerId())
	key, err := idempotencyKey(req.Header())
	if err != nil {
		return nil, call.fail(err)
	}
	released, err := s.mgr.Release(ctx, id, manager.ReleaseRequest{OwnerID: base.GetOwnerId(), IdempotencyKey: key})
	if err != nil {
		return nil, call.fail(err)
	}
	call.Outcome = "not_held"
	if released {
		call.Outcome = "released"
	}
	return connect.NewResponse(&cacheservice.ReleaseReservationResponse{}), nil
}
