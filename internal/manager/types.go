package manager

import "time"

// ID names one cache entry and its reservation: a key inside a project and
// domain, optionally of an organization (Flyte's Identifier.org; the HTTP
// API's routes are the default, empty org). Distinct IDs never share
// storage (see the store's key encoding).
type ID struct {
	Org     string
	Project string
	Domain  string
	Key     string
}

// Entry records where a task's output lives. Stampede never stores the output
// itself, only its URI and metadata.
type Entry struct {
	ID
	OutputURI     string
	Metadata      Metadata
	CreatedAt     time.Time
	LastUpdatedAt time.Time
	// Version is 1 when the item is first written and grows by one on every
	// write, so it can serve as a validator (ETag) and a session token.
	Version int64
	// ExpiresAt, when set, is the instant the entry stops being served.
	ExpiresAt *time.Time
}

// LiveAt reports whether the entry is served at instant now.
func (e *Entry) LiveAt(now time.Time) bool {
	return e.ExpiresAt == nil || e.ExpiresAt.After(now)
}

// Metadata describes an output: what produced it and free-form labels.
type Metadata struct {
	Source *Source
	Labels map[string]string
}

// Source identifies the task that produced an output.
type Source struct {
	Project string
	Domain  string
	Name    string
	Version string
}

// Reservation is a heartbeat lease on a key: while it is live, its owner is
// computing the entry and everyone else waits.
type Reservation struct {
	ID
	OwnerID           string
	HeartbeatInterval time.Duration
	ExpiresAt         time.Time
	// Fence is larger for every new acquisition of the key than for any
	// earlier holder; an extension keeps it. Downstream systems can reject
	// writes carrying a smaller fence (a fencing token).
	Fence int64
}

// LiveAt reports whether the reservation still holds at instant now.
func (r *Reservation) LiveAt(now time.Time) bool {
	return r.ExpiresAt.After(now)
}
