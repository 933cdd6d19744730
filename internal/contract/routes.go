package contract

import "net/http"

// Operations: each is served by one Lambda function, named in Route.
const (
	OpGet     = "get"
	OpPut     = "put"
	OpDelete  = "delete"
	OpReserve = "reserve"
	OpRelease = "release"
	// OpInspect reads a key's reservation without changing it; the get
	// function serves it.
	OpInspect = "inspect"
)

// Route templates, in API Gateway's syntax ({key+} is the rest of the
// path, percent-encoded).
const (
	CacheRoute       = "/v1/projects/{project}/domains/{domain}/cache/{key+}"
	ReservationRoute = "/v1/projects/{project}/domains/{domain}/reservations/{key+}"
)

// Route is one method on one path template: the operation it invokes and
// the Lambda function serving it.
type Route struct {
	Method   string `json:"method"`
	Template string `json:"template"`
	Op       string `json:"op"`
	Function string `json:"function"`
}

// Key returns the route in API Gateway's routeKey form, "GET /v1/…".
func (r Route) Key() string { return r.Method + " " + r.Template }

// Routes lists the HTTP API.
func Routes() []Route {
	return []Route{
		{http.MethodGet, CacheRoute, OpGet, FunctionGet},
		{http.MethodPut, CacheRoute, OpPut, FunctionPut},
		{http.MethodDelete, CacheRoute, OpDelete, FunctionDelete},
		{http.MethodPost, ReservationRoute, OpReserve, FunctionReserve},
		{http.MethodDelete, ReservationRoute, OpRelease, FunctionRelease},
		{http.MethodGet, ReservationRoute, OpInspect, FunctionGet},
	}
}

// FlyteService is the path prefix of Flyte's cache service
// (flyteidl2.cacheservice.v2.CacheService over Connect, gRPC-Web, gRPC).
const FlyteService = "/flyteidl2.cacheservice.v2.CacheService/"

// FlyteRoutes lists the routes of Flyte's cache service: one POST per
// method, each running the matching operation. One function serves them
// all, so that the protobuf and Connect code stays out of the five
// functions of the HTTP API.
func FlyteRoutes() []Route {
	return []Route{
		{http.MethodPost, FlyteService + "Get", OpGet, FunctionFlyte},
		{http.MethodPost, FlyteService + "Put", OpPut, FunctionFlyte},
		{http.MethodPost, FlyteService + "Delete", OpDelete, FunctionFlyte},
		{http.MethodPost, FlyteService + "GetOrExtendReservation", OpReserve, FunctionFlyte},
		{http.MethodPost, FlyteService + "ReleaseReservation", OpRelease, FunctionFlyte},
	}
}

// FlyteBinaryMediaTypes are the binary content types of Flyte's calls: a
// REST API must list them or it corrupts their bodies.
func FlyteBinaryMediaTypes() []string {
	return []string{"application/proto", "application/grpc-web+proto"}
}

// Ops lists every operation, in the order of Routes.
func Ops() []string {
	var ops []string
	for _, r := range Routes() {
		ops = append(ops, r.Op)
	}
	return ops
}

// The Lambda functions, by the name of their folder under functions/ and
// build/ (the stack names them stampede-<env>-<name>).
const (
	FunctionGet     = "get"
	FunctionPut     = "put"
	FunctionDelete  = "delete"
	FunctionReserve = "reserve"
	FunctionRelease = "release"
	// FunctionFlyte serves Flyte's cache service (FlyteRoutes), every
	// operation of it.
	FunctionFlyte = "flyte"
)

// Functions lists the Lambda functions.
func Functions() []string {
	return []string{FunctionGet, FunctionPut, FunctionDelete, FunctionReserve, FunctionRelease, FunctionFlyte}
}

// FunctionOf returns the function serving op over the HTTP API, or ""
// for an unknown op.
func FunctionOf(op string) string {
	for _, r := range Routes() {
		if r.Op == op {
			return r.Function
		}
	}
	return ""
}
