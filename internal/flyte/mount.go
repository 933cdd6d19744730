package flyte

import (
	"net/http"

	"connectrpc.com/connect"

	"github.com/stampede-cache/stampede/internal/manager"
	"github.com/stampede-cache/stampede/internal/transport"
)

// Routes lists the service's procedures and the operation each runs; the
// stack routes the same (internal/contract.FlyteRoutes).
func Routes() []transport.Route {
	return []transport.Route{
		{Method: http.MethodPost, Template: GetProcedure, Op: transport.OpGet},
		{Method: http.MethodPost, Template: PutProcedure, Op: transport.OpPut},
		{Method: http.MethodPost, Template: DeleteProcedure, Op: transport.OpDelete},
		{Method: http.MethodPost, Template: GetOrExtendReservationProcedure, Op: transport.OpReserve},
		{Method: http.MethodPost, Template: ReleaseReservationProcedure, Op: transport.OpRelease},
	}
}

// Mount returns the service as the transport serves it beside the HTTP
// API (transport.Options.RPC) or in a function of its own
// (transport.NewRPCFunction): over Connect, gRPC and gRPC-Web, each call
// through the transport's budget, log line and metrics.
func Mount(mgr *manager.Manager) transport.RPCService {
	_, h := NewHandler(mgr,
		connect.WithReadMaxBytes(transport.MaxBodyBytes),
		// Answers are a few hundred bytes: not worth compressing.
		connect.WithCompressMinBytes(4<<10),
	)
	return mount{handler: h}
}

// mount is the service behind transport.RPCService.
type mount struct {
	handler http.Handler
}

func (mount) Prefix() string { return PathPrefix }

func (mount) Op(path string) (transport.Op, bool) {
	for _, r := range Routes() {
		if r.Template == path {
			return r.Op, true
		}
	}
	return "", false
}

func (m mount) Serve(w http.ResponseWriter, r *http.Request) transport.RPCCall {
	call := &Call{}
	m.handler.ServeHTTP(w, r.WithContext(WithCall(r.Context(), call)))
	return transport.RPCCall{
		Served: call.Served, ID: call.ID, OwnerID: call.OwnerID,
		Outcome: call.Outcome, Err: call.Err, Warning: call.Warning,
	}
}

func (mount) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	_ = connect.NewErrorWriter().Write(w, r, ConnectError(err))
}
