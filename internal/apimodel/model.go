// Package apimodel is a sequential model of Stampede's HTTP API (docs/api.md)
// for the porcupine linearizability checker: the state of one key (its entry
// and its reservation) and what each operation may answer from it.
//
// Versions and fences are clock-derived and opaque, so the model never
// predicts them: a new version must be greater than every version of the key
// the model knows of, a new fence greater than every fence, and later answers
// must repeat what an earlier one showed.
//
// Reservations expire with the real clock. Each operation carries the
// instants it was sent and answered (CallMs, ReturnMs); the server read its
// clock somewhere in between, so a reservation is live for the operation if
// its expiry can be after some instant of that window, expired if it can be
// at or before one, and both are explored when both are possible. An
// acquired reservation pins the instant exactly: expires_at minus the lease.
// Entries in a run never expire (puts use no ttl_seconds, or a long one).
//
// An operation whose outcome is unknown (503, a 500, no answer) may have
// taken effect or not: its step returns both states, and the checker should
// treat it as pending until the end of the history.
package apimodel

import (
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/anishathalye/porcupine"
)

// Op names an operation of the API.
type Op string

// The operations.
const (
	Get     Op = "get"
	Put     Op = "put"
	Delete  Op = "delete"
	Reserve Op = "reserve"
	Release Op = "release"
	Inspect Op = "inspect"
)

// Input is one request, as the model needs to know it.
type Input struct {
	Op  Op
	Key string
	// URI is a put's output_uri, unique per put so the model knows which
	// put wrote an entry it reads back.
	URI string
	// TTL says the put set ttl_seconds, so its entry has an expires_at.
	TTL bool
	// Overwrite is a put's overwrite.
	Overwrite bool
	// IfMatch is the If-Match version of a put or delete; 0 for none.
	IfMatch int64
	// IfNoneMatch is a get's If-None-Match version; 0 for none.
	IfNoneMatch int64
	// Owner is the owner_id of a reserve, a release or a fenced put.
	Owner string
	// Fence is a fenced put's fence; 0 for none.
	Fence int64
	// Release is a fenced put's release.
	Release bool
	// LeaseMs is a reserve's lease: the effective heartbeat times the
	// multiplier, in milliseconds.
	LeaseMs int64
	// CallMs is when the request was sent, in milliseconds since the epoch
	// (rounded down).
	CallMs int64
}

// Entry is what an answer shows of an entry.
type Entry struct {
	URI     string
	Version int64
	// Expires says the entry has an expires_at.
	Expires bool
}

// Reservation is what an answer shows of a reservation.
type Reservation struct {
	Owner     string
	Fence     int64
	ExpiresMs int64
}

// Output is one answer, as the model needs to know it.
type Output struct {
	// Unknown says the outcome is unknown: the request may or may not have
	// taken effect.
	Unknown bool
	// ReturnMs is when the answer arrived, in milliseconds since the epoch
	// (rounded down); for an unknown outcome, the last instant at which the
	// server could have read its clock for the request.
	ReturnMs int64
	// Status is the HTTP status.
	Status int
	// Entry is a get's or a put's entry, or the existing entry of a 409 or
	// 412.
	Entry *Entry
	// Reservation is a reserve's reservation (the caller's or the holder's),
	// an inspect's, or the holder of a fenced put's 412.
	Reservation *Reservation
	Acquired    bool
	Deleted     bool
	Released    bool
}

// State is one key's state. It is comparable: == is state equality.
type State struct {
	HasEntry bool
	URI      string
	Expires  bool
	// Version is the entry's version, or 0 when an answer was lost and it
	// is known only to be at least VersionFloor.
	Version int64
	// VersionFloor is the greatest version the key is known to have had;
	// every later version is greater.
	VersionFloor int64

	// Owner holds the reservation ("" for none). A holder whose expiry has
	// passed still counts until released or replaced.
	Owner string
	// Fence is the holder's fence, or 0 when only known to be at least
	// FenceFloor.
	Fence      int64
	FenceFloor int64
	// ExpLo and ExpHi bound the holder's expiry (milliseconds).
	ExpLo, ExpHi int64
}

// Model returns the porcupine model of the API, partitioned by key.
func Model() porcupine.Model {
	nm := porcupine.NondeterministicModel{
		Partition: PartitionByKey,
		Init:      func() []interface{} { return []interface{}{State{}} },
		Step: func(state, input, output interface{}) []interface{} {
			next := Step(state.(State), input.(Input), output.(Output))
			out := make([]interface{}, len(next))
			for i, s := range next {
				out[i] = s
			}
			return out
		},
		Hash:              hashState,
		DescribeOperation: func(input, output interface{}) string { return Describe(input.(Input), output.(Output)) },
		DescribeState:     func(state interface{}) string { return state.(State).String() },
	}
	return nm.ToModel()
}

// PartitionByKey splits a history by key, in the order keys first appear:
// keys are independent, so the history is linearizable if each part is.
func PartitionByKey(history []porcupine.Operation) [][]porcupine.Operation {
	index := map[string]int{}
	var parts [][]porcupine.Operation
	for _, op := range history {
		k := op.Input.(Input).Key
		i, ok := index[k]
		if !ok {
			i = len(parts)
			index[k] = i
			parts = append(parts, nil)
		}
		parts[i] = append(parts[i], op)
	}
	return parts
}

func hashState(state interface{}) uint64 {
	s := state.(State)
	h := fnv.New64a()
	fmt.Fprintf(h, "%t|%s|%t|%d|%d|%s|%d|%d|%d|%d", s.HasEntry, s.URI, s.Expires, s.Version, s.VersionFloor,
		s.Owner, s.Fence, s.FenceFloor, s.ExpLo, s.ExpHi)
	return h.Sum64()
}

// String describes the state for porcupine's visualization.
func (s State) String() string {
	var b strings.Builder
	if s.HasEntry {
		fmt.Fprintf(&b, "entry %s v%s", short(s.URI), unknownIfZero(s.Version, s.VersionFloor))
		if s.Expires {
			b.WriteString(" (ttl)")
		}
	} else {
		fmt.Fprintf(&b, "no entry (versions > %d)", s.VersionFloor)
	}
	if s.Owner != "" {
		fmt.Fprintf(&b, "; held by %s fence %s until [%d,%d]", s.Owner, unknownIfZero(s.Fence, s.FenceFloor), s.ExpLo, s.ExpHi)
	} else {
		fmt.Fprintf(&b, "; not held (fences > %d)", s.FenceFloor)
	}
	return b.String()
}

func unknownIfZero(v, floor int64) string {
	if v == 0 {
		return fmt.Sprintf("≥%d", floor)
	}
	return fmt.Sprint(v)
}

// short keeps the last path segment of a URI: the put's identity.
func short(uri string) string {
	if i := strings.LastIndexByte(uri, '/'); i >= 0 {
		return uri[i+1:]
	}
	return uri
}

// Describe renders an operation for porcupine's visualization.
func Describe(in Input, out Output) string {
	var b strings.Builder
	b.WriteString(string(in.Op))
	switch in.Op {
	case Put:
		fmt.Fprintf(&b, " %s", short(in.URI))
		if in.Overwrite {
			b.WriteString(" overwrite")
		}
		if in.TTL {
			b.WriteString(" ttl")
		}
		if in.Owner != "" {
			fmt.Fprintf(&b, " owner=%s", in.Owner)
		}
		if in.Fence != 0 {
			fmt.Fprintf(&b, " fence=%d", in.Fence)
		}
		if in.Release {
			b.WriteString(" release")
		}
	case Reserve, Release:
		fmt.Fprintf(&b, " %s", in.Owner)
	}
	if in.IfMatch != 0 {
		fmt.Fprintf(&b, " If-Match=%d", in.IfMatch)
	}
	if in.IfNoneMatch != 0 {
		fmt.Fprintf(&b, " If-None-Match=%d", in.IfNoneMatch)
	}
	b.WriteString(" → ")
	if out.Unknown {
		fmt.Fprintf(&b, "unknown (%d)", out.Status)
		return b.String()
	}
	fmt.Fprintf(&b, "%d", out.Status)
	switch {
	case in.Op == Reserve:
		fmt.Fprintf(&b, " acquired=%t", out.Acquired)
	case in.Op == Delete && out.Status == 200:
		fmt.Fprintf(&b, " deleted=%t", out.Deleted)
	case in.Op == Release:
		fmt.Fprintf(&b, " released=%t", out.Released)
	}
	if e := out.Entry; e != nil {
		fmt.Fprintf(&b, " entry %s v%d", short(e.URI), e.Version)
	}
	if r := out.Reservation; r != nil {
		fmt.Fprintf(&b, " res %s fence %d until %d", r.Owner, r.Fence, r.ExpiresMs)
	}
	return b.String()
}
