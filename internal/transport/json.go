package transport

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"

	"github.com/stampede-cache/stampede/internal/manager"
)

// MaxBodyBytes bounds a request body (and a direct invocation's payload).
const MaxBodyBytes = 64 << 10

// timeLayout is RFC 3339 in UTC with milliseconds.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// timestamp renders a time in timeLayout.
type timestamp time.Time

func (t timestamp) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Format(timeLayout) + `"`), nil
}

// Request bodies. Pointers tell "absent" from zero values.

type putBody struct {
	OutputURI     *string       `json:"output_uri"`
	Metadata      *metadataJSON `json:"metadata"`
	Overwrite     *bool         `json:"overwrite"`
	MaxAgeSeconds *int64        `json:"max_age_seconds"`
	TTLSeconds    *int64        `json:"ttl_seconds"`
	OwnerID       *string       `json:"owner_id"`
	Fence         *int64        `json:"fence"`
	Release       *bool         `json:"release"`
	DeleteBlob    *bool         `json:"delete_blob"`
	VerifyOutput  *bool         `json:"verify_output"`
}

// getParams are a get's read options: query parameters over HTTP, fields
// of the payload in a direct invocation.
type getParams struct {
	Consistency    *string `json:"consistency"`
	MinVersion     *int64  `json:"min_version"`
	MaxStalenessMS *int64  `json:"max_staleness_ms"`
	Verify         *bool   `json:"verify"`
}

type reserveBody struct {
	OwnerID          *string `json:"owner_id"`
	HeartbeatSeconds *int64  `json:"heartbeat_interval_seconds"`
}

// Response bodies.

type entryJSON struct {
	Project       string       `json:"project"`
	Domain        string       `json:"domain"`
	Key           string       `json:"key"`
	OutputURI     string       `json:"output_uri"`
	Metadata      metadataJSON `json:"metadata"`
	CreatedAt     timestamp    `json:"created_at"`
	LastUpdatedAt timestamp    `json:"last_updated_at"`
	Version       int64        `json:"version"`
	ExpiresAt     *timestamp   `json:"expires_at,omitempty"`
}

type metadataJSON struct {
	Source *sourceJSON       `json:"source,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
}

type sourceJSON struct {
	Project string `json:"project,omitempty"`
	Domain  string `json:"domain,omitempty"`
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"`
}

type reservationJSON struct {
	Project          string    `json:"project"`
	Domain           string    `json:"domain"`
	Key              string    `json:"key"`
	OwnerID          string    `json:"owner_id"`
	HeartbeatSeconds int64     `json:"heartbeat_interval_seconds"`
	ExpiresAt        timestamp `json:"expires_at"`
	Fence            int64     `json:"fence"`
}

type getResultJSON struct {
	Found bool       `json:"found"`
	Entry *entryJSON `json:"entry,omitempty"`
	Read  string     `json:"read"`
}

type deleteResultJSON struct {
	Deleted bool `json:"deleted"`
	// OutputDeleted is present when delete_blob was asked for.
	OutputDeleted *bool `json:"output_deleted,omitempty"`
}

type reserveResultJSON struct {
	Acquired    bool            `json:"acquired"`
	Reservation reservationJSON `json:"reservation"`
}

type releaseResultJSON struct {
	Released bool `json:"released"`
}

type errorJSON struct {
	Error    errorDetailJSON  `json:"error"`
	Existing *entryJSON       `json:"existing,omitempty"`
	Holder   *reservationJSON `json:"holder,omitempty"`
}

type errorDetailJSON struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func toEntryJSON(e *manager.Entry) *entryJSON {
	if e == nil {
		return nil
	}
	out := &entryJSON{
		Project:       e.Project,
		Domain:        e.Domain,
		Key:           e.Key,
		OutputURI:     e.OutputURI,
		Metadata:      metadataJSON{Labels: e.Metadata.Labels},
		CreatedAt:     timestamp(e.CreatedAt),
		LastUpdatedAt: timestamp(e.LastUpdatedAt),
		Version:       e.Version,
	}
	if s := e.Metadata.Source; s != nil {
		out.Metadata.Source = &sourceJSON{Project: s.Project, Domain: s.Domain, Name: s.Name, Version: s.Version}
	}
	if e.ExpiresAt != nil {
		t := timestamp(*e.ExpiresAt)
		out.ExpiresAt = &t
	}
	return out
}

func (m *metadataJSON) toManager() manager.Metadata {
	if m == nil {
		return manager.Metadata{}
	}
	out := manager.Metadata{Labels: m.Labels}
	if s := m.Source; s != nil {
		out.Source = &manager.Source{Project: s.Project, Domain: s.Domain, Name: s.Name, Version: s.Version}
	}
	return out
}

func toReservationJSON(r *manager.Reservation) *reservationJSON {
	if r == nil {
		return nil
	}
	return &reservationJSON{
		Project:          r.Project,
		Domain:           r.Domain,
		Key:              r.Key,
		OwnerID:          r.OwnerID,
		HeartbeatSeconds: int64(r.HeartbeatInterval / time.Second),
		ExpiresAt:        timestamp(r.ExpiresAt),
		Fence:            r.Fence,
	}
}

func toErrorJSON(err error) errorJSON {
	out := errorJSON{Error: errorDetailJSON{Code: manager.ErrorCode(err), Message: manager.ErrorMessage(err)}}
	var e *manager.Error
	if errors.As(err, &e) {
		out.Existing = toEntryJSON(e.Existing)
		out.Holder = toReservationJSON(e.Holder)
	}
	return out
}

// decodeStrict decodes one JSON object into v: unknown fields, trailing
// data and wrong types are errors that name the field. An empty body is an
// empty object.
func decodeStrict(data []byte, v any) error {
	if len(data) > MaxBodyBytes {
		return manager.Errorf(manager.CodePayloadTooLarge, "body: larger than %d bytes", MaxBodyBytes)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return manager.Errorf(manager.CodeInvalidArgument, "body: unexpected data after the JSON object")
	}
	return nil
}

// jsonError names the offending field of a decoding error.
func jsonError(err error) error {
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntaxErr):
		return manager.Errorf(manager.CodeInvalidArgument, "body: invalid JSON at byte %d", syntaxErr.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return manager.Errorf(manager.CodeInvalidArgument, "body: truncated JSON")
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return manager.Errorf(manager.CodeInvalidArgument, "body: must be a JSON object")
		}
		return manager.Errorf(manager.CodeInvalidArgument, "%s: must be %s", field, describeType(typeErr.Type))
	}
	// encoding/json reports unknown fields only in its message.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return manager.Errorf(manager.CodeInvalidArgument, "%s: unknown field", strings.Trim(name, `"`))
	}
	return manager.Errorf(manager.CodeInvalidArgument, "body: %s", strings.TrimPrefix(err.Error(), "json: "))
}

func describeType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Map, reflect.Struct:
		return "an object"
	default:
		return fmt.Sprintf("a %s", t.Kind())
	}
}
