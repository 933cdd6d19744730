package transport

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/stampede-cache/stampede/internal/manager"
)

// Op is one of Stampede's operations; each is one Lambda function.
type Op string

// The operations.
const (
	OpGet     Op = "get"
	OpPut     Op = "put"
	OpDelete  Op = "delete"
	OpReserve Op = "reserve"
	OpRelease Op = "release"
	// OpInspect reads a key's reservation without changing it; the get
	// function serves it.
	OpInspect Op = "inspect"
)

// Ops lists the operations that each have a Lambda function.
func Ops() []Op { return []Op{OpGet, OpPut, OpDelete, OpReserve, OpRelease} }

// Route templates, in API Gateway's syntax; the stack declares the same.
const (
	CacheRoute       = "/v1/projects/{project}/domains/{domain}/cache/{key+}"
	ReservationRoute = "/v1/projects/{project}/domains/{domain}/reservations/{key+}"
)

// Route is an API Gateway route: a method and a path template.
type Route struct {
	Method   string
	Template string
	Op       Op
}

// Key returns the route in API Gateway's routeKey form, "GET /v1/…".
func (r Route) Key() string { return r.Method + " " + r.Template }

// Routes lists the HTTP contract.
func Routes() []Route {
	return []Route{
		{http.MethodGet, CacheRoute, OpGet},
		{http.MethodPut, CacheRoute, OpPut},
		{http.MethodDelete, CacheRoute, OpDelete},
		{http.MethodPost, ReservationRoute, OpReserve},
		{http.MethodDelete, ReservationRoute, OpRelease},
		{http.MethodGet, ReservationRoute, OpInspect},
	}
}

// routeFor finds the route with the given method and template.
func routeFor(method, template string) (Route, bool) {
	for _, r := range Routes() {
		if r.Method == method && r.Template == template {
			return r, true
		}
	}
	return Route{}, false
}

// parsePath splits /v1/projects/{project}/domains/{domain}/{cache|reservations}/{key}
// into its route template and ID. HTTP APIs hand the path over decoded,
// which is unambiguous because project and domain cannot hold "/"; REST
// APIs and the local server keep it escaped, and the segments are decoded
// after the split (see unescapeID).
func parsePath(path string) (template string, id manager.ID, err error) {
	parts := strings.SplitN(strings.TrimPrefix(path, "/"), "/", 7)
	if len(parts) != 7 || parts[0] != "v1" || parts[1] != "projects" || parts[3] != "domains" {
		return "", manager.ID{}, errNoRoute()
	}
	switch parts[5] {
	case "cache":
		template = CacheRoute
	case "reservations":
		template = ReservationRoute
	default:
		return "", manager.ID{}, errNoRoute()
	}
	return template, manager.ID{Project: parts[2], Domain: parts[4], Key: parts[6]}, nil
}

// unescapeID percent-decodes the key of an ID taken from an escaped path,
// so "/" and "%2F" in a key both mean "/". Project and domain must appear
// literally (their names never need encoding), so that an IAM policy
// written for ".../projects/ml/..." means what it says: "m%6C" is refused.
func unescapeID(id manager.ID) (manager.ID, error) {
	for _, f := range []struct{ name, v string }{{"project", id.Project}, {"domain", id.Domain}} {
		if strings.Contains(f.v, "%") {
			return manager.ID{}, manager.Errorf(manager.CodeInvalidArgument, "%s: must appear literally in the path, not percent-encoded", f.name)
		}
	}
	for _, f := range []struct {
		name string
		v    *string
	}{{"project", &id.Project}, {"domain", &id.Domain}, {"key", &id.Key}} {
		decoded, err := url.PathUnescape(*f.v)
		if err != nil {
			return manager.ID{}, manager.Errorf(manager.CodeInvalidArgument, "%s: invalid percent-encoding in the path", f.name)
		}
		*f.v = decoded
	}
	return id, nil
}

func errNoRoute() error {
	return manager.Errorf(manager.CodeNotFound, "path: no such route; see docs/api.md")
}
