package transport

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

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
	WaitMS         *int64  `json:"wait_ms"`
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
	// Entry is the key's live entry when the reservation was decided; null
	// (always present, so that a client can tell this service knows the
	// field) when there was none.
	Entry *entryJSON `json:"entry"`
}

// inspectResultJSON answers GET …/reservations/{key}; over HTTP a free key
// is a 404 instead.
type inspectResultJSON struct {
	Reserved    bool             `json:"reserved"`
	Reservation *reservationJSON `json:"reservation,omitempty"`
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

// decodeStrict decodes one JSON object into v, strictly: invalid UTF-8,
// duplicate member names, names in another letter case than documented,
// unknown members, wrong types, overflowing numbers and trailing data are
// errors whose message starts with the field's name. An empty body is an
// empty object.
func decodeStrict(data []byte, v any) error {
	if len(data) > MaxBodyBytes {
		return manager.Errorf(manager.CodePayloadTooLarge, "body: larger than %d bytes", MaxBodyBytes)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := jsonv2.Unmarshal(data, v, jsonv2.RejectUnknownMembers(true)); err != nil {
		return jsonError(err)
	}
	return nil
}

// jsonError names the offending field of a decoding error.
func jsonError(err error) error {
	var syntaxErr *jsontext.SyntacticError
	var semErr *jsonv2.SemanticError
	switch {
	case errors.As(err, &syntaxErr):
		field := fieldOf(syntaxErr.JSONPointer)
		switch {
		case errors.Is(syntaxErr.Err, jsontext.ErrDuplicateName):
			return manager.Errorf(manager.CodeInvalidArgument, "%s: given more than once", field)
		case strings.Contains(syntaxErr.Error(), "invalid UTF-8"), strings.Contains(syntaxErr.Error(), "surrogate"):
			// A lone surrogate escape (\ud800) encodes no character: it is
			// not valid UTF-8 once decoded.
			return manager.Errorf(manager.CodeInvalidArgument, "%s: not valid UTF-8", field)
		case errors.Is(syntaxErr.Err, io.ErrUnexpectedEOF):
			return manager.Errorf(manager.CodeInvalidArgument, "body: truncated JSON")
		}
		return manager.Errorf(manager.CodeInvalidArgument, "body: invalid JSON at byte %d", syntaxErr.ByteOffset)
	case errors.As(err, &semErr):
		field := fieldOf(semErr.JSONPointer)
		switch {
		case errors.Is(semErr.Err, jsonv2.ErrUnknownName):
			return manager.Errorf(manager.CodeInvalidArgument, "%s: unknown field", field)
		case semErr.JSONPointer == "":
			return manager.Errorf(manager.CodeInvalidArgument, "body: must be a JSON object")
		case semErr.GoType != nil:
			return manager.Errorf(manager.CodeInvalidArgument, "%s: must be %s", field, describeType(semErr.GoType))
		}
		return manager.Errorf(manager.CodeInvalidArgument, "%s: invalid value", field)
	}
	return manager.Errorf(manager.CodeInvalidArgument, "body: invalid JSON")
}

// fieldOf turns a JSON pointer (/metadata/labels/x) into the field name the
// API documents (metadata.labels.x); "body" for the whole document.
func fieldOf(ptr jsontext.Pointer) string {
	if ptr == "" {
		return "body"
	}
	var parts []string
	for tok := range ptr.Tokens() {
		parts = append(parts, tok)
	}
	field := strings.Join(parts, ".")
	// A name the caller made up is echoed only when it is short and plain.
	if len(field) > 128 || strings.IndexFunc(field, func(r rune) bool { return r < 0x20 || r == 0x7f || r == utf8.RuneError }) >= 0 {
		return strconv.Quote(truncate(field, 128))
	}
	return field
}

// truncate cuts s to at most n bytes.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
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
		return fmt.Sprintf("an integer from %d to %d", math.MinInt64, int64(math.MaxInt64))
	case reflect.Map, reflect.Struct:
		return "an object"
	default:
		return fmt.Sprintf("a %s", t.Kind())
	}
}
