package flyte

import (
	"errors"
	"strings"

	"connectrpc.com/connect"

	"github.com/stampede-cache/stampede/internal/manager"
)

// RetryAfterSeconds is the Retry-After sent with resource_exhausted
// (throttled) and unavailable answers, as on the HTTP API.
const RetryAfterSeconds = "1"

// ConnectCode maps a Stampede error code to a Connect code, in one place.
func ConnectCode(code string) connect.Code {
	switch code {
	case manager.CodeInvalidArgument:
		return connect.CodeInvalidArgument
	case manager.CodeNotFound:
		return connect.CodeNotFound
	case manager.CodeAlreadyExists:
		return connect.CodeAlreadyExists
	case manager.CodeFailedPrecondition:
		return connect.CodeFailedPrecondition
	case manager.CodePayloadTooLarge, manager.CodeThrottled:
		// gRPC's code for a message over the size limit and for a quota.
		return connect.CodeResourceExhausted
	case manager.CodeUnavailable:
		return connect.CodeUnavailable
	default:
		return connect.CodeInternal
	}
}

// ConnectError is the error a client gets for err: its Connect code and
// the application message with field names in Flyte's terms. Causes stay
// in the log; anything that is not an application error is "internal
// error". Throttled and unavailable answers carry Retry-After.
func ConnectError(err error) *connect.Error {
	code := manager.ErrorCode(err)
	cerr := connect.NewError(ConnectCode(code), errors.New(flyteMessage(code, manager.ErrorMessage(err))))
	if code == manager.CodeThrottled || code == manager.CodeUnavailable {
		cerr.Meta().Set("Retry-After", RetryAfterSeconds)
	}
	return cerr
}

// flyteMessage rewrites a manager message, "field: what is wrong", to name
// the field of Flyte's request that carries it.
func flyteMessage(code, msg string) string {
	if code == manager.CodeAlreadyExists {
		return "base_request.key: an entry exists; set overwrite.overwrite or overwrite.max_age to replace it"
	}
	field, rest, ok := strings.Cut(msg, ": ")
	if !ok {
		return msg
	}
	for _, r := range fieldNames() {
		if field == r.stampede || r.prefix && strings.HasPrefix(field, r.stampede) {
			return r.flyte + strings.TrimPrefix(field, r.stampede) + ": " + rest
		}
	}
	return msg
}

// fieldName pairs a field of Stampede's API with the Flyte request field
// that carries it; with prefix, fields starting with stampede match too.
type fieldName struct {
	stampede, flyte string
	prefix          bool
}

func fieldNames() []fieldName {
	return []fieldName{
		{stampede: "org", flyte: "identifier.org"},
		{stampede: "project", flyte: "identifier.project"},
		{stampede: "domain", flyte: "identifier.domain"},
		{stampede: "key", flyte: "base_request.key"},
		{stampede: "owner_id", flyte: "base_request.owner_id"},
		{stampede: "heartbeat_interval_seconds", flyte: "base_request.heartbeat_interval"},
		{stampede: "output_uri", flyte: "base_request.output.output_uri"},
		{stampede: "max_age_seconds", flyte: "base_request.overwrite.max_age"},
		{stampede: "delete_blob", flyte: "base_request.overwrite.delete_blob"},
		{stampede: "metadata.labels", flyte: "base_request.output.metadata.key_map.values", prefix: true},
		{stampede: "metadata.source", flyte: "base_request.output.metadata.source_identifier", prefix: true},
		{stampede: "idempotency_key", flyte: IdempotencyKeyHeader},
	}
}
