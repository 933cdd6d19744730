package apimodel

import "net/http"

// window is the span of instants at which the server may have read its
// clock for an operation, in milliseconds.
type window struct{ from, to int64 }

func windowOf(in Input, out Output) window { return window{in.CallMs, out.ReturnMs} }

// Step returns every state the key can be in after the operation answered
// out in state s; none when the answer is impossible.
func Step(s State, in Input, out Output) []State {
	w := windowOf(in, out)
	if w.to < w.from {
		return nil
	}
	if out.Unknown && (in.Op == Get || in.Op == Inspect) {
		// A read changes nothing, whatever became of it.
		return []State{s}
	}
	if !out.Unknown && out.Status == http.StatusTooManyRequests {
		// Throttled: nothing happened (docs/reliability.md).
		return []State{s}
	}
	switch in.Op {
	case Get:
		return stepGet(s, in, out)
	case Put:
		return stepPut(s, in, out, w)
	case Delete:
		return stepDelete(s, in, out)
	case Reserve:
		return stepReserve(s, in, out, w)
	case Release:
		return stepRelease(s, in, out, w)
	case Inspect:
		return stepInspect(s, out, w)
	}
	return nil
}

// Entries.

// entryIs reports whether the state's live entry is e, pinning a version
// the model did not know yet.
func (s State) entryIs(e Entry) (State, bool) {
	if !s.HasEntry || s.URI != e.URI || s.Expires != e.Expires {
		return s, false
	}
	return s.versionIs(e.Version)
}

// versionIs reports whether the live entry can have version v, pinning it.
func (s State) versionIs(v int64) (State, bool) {
	if !s.HasEntry {
		return s, false
	}
	if s.Version != 0 {
		return s, s.Version == v
	}
	if v < s.VersionFloor {
		return s, false
	}
	s.Version, s.VersionFloor = v, v
	return s, true
}

// versionMayDiffer reports whether the live entry can have a version other
// than v.
func (s State) versionMayDiffer(v int64) bool {
	return s.HasEntry && (s.Version == 0 || s.Version != v)
}

// existingIs checks the existing entry a refusal shows: the live entry, or
// nothing when there is none. A refusal may omit it.
func (s State) existingIs(e *Entry) (State, bool) {
	if e == nil {
		return s, true
	}
	return s.entryIs(*e)
}

// written is the state after a write of entry e (version known).
func (s State) written(in Input, version int64) (State, bool) {
	if version <= s.VersionFloor {
		return s, false
	}
	s.HasEntry, s.URI, s.Expires, s.Version, s.VersionFloor = true, in.URI, in.TTL, version, version
	if in.Release {
		s = s.released()
	}
	return s, true
}

// writtenUnknown is the state after a write whose answer was lost: the new
// version is unknown, only greater than every known one.
func (s State) writtenUnknown(in Input) State {
	s.VersionFloor++
	s.HasEntry, s.URI, s.Expires, s.Version = true, in.URI, in.TTL, 0
	if in.Release {
		s = s.released()
	}
	return s
}

func (s State) deleted() State {
	s.HasEntry, s.URI, s.Expires, s.Version = false, "", false, 0
	return s
}

// Reservations.

// mayBeLive reports whether the holder's reservation can be live at some
// instant of w, and returns the state narrowed by that assumption.
func (s State) mayBeLive(w window) (State, bool) {
	if s.Owner == "" || s.ExpHi <= w.from {
		return s, false
	}
	s.ExpLo = max(s.ExpLo, w.from+1)
	return s, true
}

// mayBeExpired reports whether the key can have no live reservation at some
// instant of w, and returns the state narrowed by that assumption.
func (s State) mayBeExpired(w window) (State, bool) {
	if s.Owner == "" {
		return s, true
	}
	if s.ExpLo > w.to {
		return s, false
	}
	s.ExpHi = min(s.ExpHi, w.to)
	return s, true
}

// holderIs reports whether the holder is r, pinning its fence and expiry.
func (s State) holderIs(r Reservation) (State, bool) {
	if s.Owner == "" || s.Owner != r.Owner || r.ExpiresMs < s.ExpLo || r.ExpiresMs > s.ExpHi {
		return s, false
	}
	s.ExpLo, s.ExpHi = r.ExpiresMs, r.ExpiresMs
	return s.fenceIs(r.Fence)
}

// fenceIs reports whether the holder's fence can be f, pinning it.
func (s State) fenceIs(f int64) (State, bool) {
	if s.Fence != 0 {
		return s, s.Fence == f
	}
	if f < s.FenceFloor {
		return s, false
	}
	s.Fence, s.FenceFloor = f, f
	return s, true
}

func (s State) released() State {
	s.Owner, s.Fence, s.ExpLo, s.ExpHi = "", 0, 0, 0
	return s
}

// Operations.

func stepGet(s State, in Input, out Output) []State {
	switch out.Status {
	case http.StatusOK:
		if out.Entry == nil {
			return nil
		}
		next, ok := s.entryIs(*out.Entry)
		if !ok || in.IfNoneMatch != 0 && next.Version == in.IfNoneMatch {
			return nil
		}
		return []State{next}
	case http.StatusNotModified:
		if in.IfNoneMatch == 0 {
			return nil
		}
		if next, ok := s.versionIs(in.IfNoneMatch); ok {
			return []State{next}
		}
	case http.StatusNotFound:
		if !s.HasEntry {
			return []State{s}
		}
	}
	return nil
}

// holderWorld is one way a fenced put's reservation check can go.
type holderWorld struct {
	s  State
	ok bool
	// holder says a refusal shows the holder (a live reservation).
	holder bool
}

// holderWorlds lists the possible outcomes of a put's reservation check.
func holderWorlds(s State, in Input, w window) []holderWorld {
	if in.Owner == "" {
		return []holderWorld{{s: s, ok: true}}
	}
	var worlds []holderWorld
	if exp, ok := s.mayBeExpired(w); ok {
		worlds = append(worlds, holderWorld{s: exp})
	}
	if live, ok := s.mayBeLive(w); ok {
		switch {
		case live.Owner != in.Owner:
			worlds = append(worlds, holderWorld{s: live, holder: true})
		case in.Fence == 0:
			worlds = append(worlds, holderWorld{s: live, ok: true})
		default:
			if pinned, ok := live.fenceIs(in.Fence); ok {
				worlds = append(worlds, holderWorld{s: pinned, ok: true})
			}
			if live.Fence == 0 || live.Fence != in.Fence {
				worlds = append(worlds, holderWorld{s: live, holder: true})
			}
		}
	}
	return worlds
}

func stepPut(s State, in Input, out Output, w window) []State {
	worlds := holderWorlds(s, in, w)
	if out.Unknown {
		next := []State{s}
		for _, hw := range worlds {
			if applies, ok := putMayApply(hw.s, in); hw.ok && ok {
				next = append(next, applies.writtenUnknown(in))
			}
		}
		return next
	}
	var next []State
	for _, hw := range worlds {
		next = append(next, putAnswer(hw, in, out)...)
	}
	return next
}

// putMayApply reports whether a put whose reservation check passed can
// write in state s, and returns s narrowed by that assumption.
func putMayApply(s State, in Input) (State, bool) {
	switch {
	case in.IfMatch != 0:
		return s.versionIs(in.IfMatch)
	case in.Overwrite:
		return s, true
	}
	return s, !s.HasEntry
}

// putAnswer returns the states in which a put in world hw answers out.
func putAnswer(hw holderWorld, in Input, out Output) []State {
	s := hw.s
	switch out.Status {
	case http.StatusOK, http.StatusCreated:
		e := out.Entry
		if !hw.ok || e == nil || e.URI != in.URI || e.Expires != in.TTL || (out.Status == http.StatusCreated) == s.HasEntry {
			return nil
		}
		switch {
		case in.IfMatch != 0:
			var ok bool
			if s, ok = s.versionIs(in.IfMatch); !ok {
				return nil
			}
		case !in.Overwrite && s.HasEntry:
			return nil
		}
		if next, ok := s.written(in, e.Version); ok {
			return []State{next}
		}
	case http.StatusConflict:
		if !hw.ok || in.Overwrite || in.IfMatch != 0 || out.Entry == nil {
			return nil
		}
		if next, ok := s.entryIs(*out.Entry); ok {
			return []State{next}
		}
	case http.StatusPreconditionFailed:
		if hw.ok {
			// Only an If-Match that does not hold refuses past the check.
			if in.IfMatch == 0 || out.Reservation != nil || !(s.versionMayDiffer(in.IfMatch) || !s.HasEntry) {
				return nil
			}
			next, ok := s.existingIs(out.Entry)
			if !ok || next.HasEntry && next.Version == in.IfMatch {
				return nil
			}
			return []State{next}
		}
		next := s
		if r := out.Reservation; hw.holder != (r != nil) ||
			r != nil && r.Owner == in.Owner && (in.Fence == 0 || r.Fence == in.Fence) {
			// A refusal shows the holder that blocked it, and only that.
			return nil
		}
		if out.Reservation != nil {
			var ok bool
			if next, ok = next.holderIs(*out.Reservation); !ok {
				return nil
			}
		}
		if next, ok := next.existingIs(out.Entry); ok {
			return []State{next}
		}
	}
	return nil
}

func stepDelete(s State, in Input, out Output) []State {
	if out.Unknown {
		next := []State{s}
		switch {
		case in.IfMatch == 0 && s.HasEntry:
			next = append(next, s.deleted())
		case in.IfMatch != 0:
			if pinned, ok := s.versionIs(in.IfMatch); ok {
				next = append(next, pinned.deleted())
			}
		}
		return next
	}
	switch out.Status {
	case http.StatusOK:
		if !out.Deleted {
			// With If-Match a missing entry is 412, never deleted:false.
			if s.HasEntry || in.IfMatch != 0 {
				return nil
			}
			return []State{s}
		}
		if in.IfMatch == 0 {
			if !s.HasEntry {
				return nil
			}
			return []State{s.deleted()}
		}
		if next, ok := s.versionIs(in.IfMatch); ok {
			return []State{next.deleted()}
		}
	case http.StatusPreconditionFailed:
		if in.IfMatch == 0 || s.HasEntry && !s.versionMayDiffer(in.IfMatch) {
			return nil
		}
		next, ok := s.existingIs(out.Entry)
		if !ok || next.HasEntry && next.Version == in.IfMatch {
			return nil
		}
		return []State{next}
	}
	return nil
}

func stepReserve(s State, in Input, out Output, w window) []State {
	if out.Unknown {
		next := []State{s}
		if _, ok := s.mayBeExpired(w); ok || s.Owner == in.Owner {
			n := s
			if s.Owner != in.Owner {
				n.Owner, n.Fence = in.Owner, 0
				n.FenceFloor++
			}
			n.ExpLo, n.ExpHi = w.from+in.LeaseMs, w.to+in.LeaseMs
			next = append(next, n)
		}
		return next
	}
	r := out.Reservation
	if out.Status != http.StatusOK || r == nil {
		return nil
	}
	if !out.Acquired {
		if s.Owner == in.Owner {
			return nil
		}
		live, ok := s.mayBeLive(w)
		if !ok {
			return nil
		}
		if next, ok := live.holderIs(*r); ok && r.ExpiresMs > w.from {
			return []State{next}
		}
		return nil
	}
	// The lease was measured from the instant the server read its clock.
	now := r.ExpiresMs - in.LeaseMs
	if r.Owner != in.Owner || now < w.from || now > w.to {
		return nil
	}
	next := s
	switch {
	case s.Owner == in.Owner:
		// An extension keeps the fence.
		var ok bool
		if next, ok = s.fenceIs(r.Fence); !ok {
			return nil
		}
	case s.Owner == "" || s.ExpLo <= now:
		if r.Fence <= s.FenceFloor || s.Fence != 0 && r.Fence <= s.Fence {
			return nil
		}
		next.Owner, next.Fence, next.FenceFloor = in.Owner, r.Fence, r.Fence
	default:
		return nil
	}
	next.ExpLo, next.ExpHi = r.ExpiresMs, r.ExpiresMs
	return []State{next}
}

func stepRelease(s State, in Input, out Output, w window) []State {
	if out.Unknown {
		next := []State{s}
		if s.Owner == in.Owner {
			next = append(next, s.released())
		}
		return next
	}
	if out.Status != http.StatusOK {
		return nil
	}
	if out.Released {
		if s.Owner != in.Owner {
			return nil
		}
		return []State{s.released()}
	}
	if s.Owner != in.Owner {
		return []State{s}
	}
	// The caller's own reservation, if it may have expired, may be refused
	// (docs/api.md leaves an expired holder's release open).
	if next, ok := s.mayBeExpired(w); ok {
		return []State{next}
	}
	return nil
}

func stepInspect(s State, out Output, w window) []State {
	switch out.Status {
	case http.StatusOK:
		if out.Reservation == nil {
			return nil
		}
		live, ok := s.mayBeLive(w)
		if !ok || out.Reservation.ExpiresMs <= w.from {
			return nil
		}
		if next, ok := live.holderIs(*out.Reservation); ok {
			return []State{next}
		}
	case http.StatusNotFound:
		if next, ok := s.mayBeExpired(w); ok {
			return []State{next}
		}
	}
	return nil
}
