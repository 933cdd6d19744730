package manager

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// PutRequest is what a caller asks a put to store.
type PutRequest struct {
	OutputURI string
	Metadata  Metadata
	// Overwrite replaces a live entry.
	Overwrite bool
	// MaxAgeSeconds, when set, lets a put replace a live entry last written
	// more than that many seconds ago even without Overwrite.
	MaxAgeSeconds *int64
	// TTLSeconds, when set, is the new entry's lifetime.
	TTLSeconds *int64
	// IfVersion, when set, replaces the live entry only if it has this
	// version (compare-and-set).
	IfVersion *int64
	// OwnerID, when set, makes the put fenced: it succeeds only while this
	// owner holds the key's live reservation (with Fence, when set).
	OwnerID string
	Fence   *int64
	// Release ends the owner's reservation in the same write.
	Release bool
	// DeleteBlob deletes the replaced entry's output object after the write.
	DeleteBlob bool
	// VerifyOutput requires the new output object to exist.
	VerifyOutput bool
	// IdempotencyKey, when set, identifies the request across re-sends:
	// the same request with the same key is answered as its first
	// successful attempt was.
	IdempotencyKey string `json:"-"`
}

// PutResult is what a put did.
type PutResult struct {
	Entry Entry
	// Created is true when no live entry existed before the put.
	Created bool
	// DeletedOutput is the replaced output object deleted after the write.
	DeletedOutput string
	// BlobErr is why deleting the replaced output failed; the entry was
	// written all the same and the object is merely orphaned.
	BlobErr error
}

// Put stores an entry in one conditional write. Without Overwrite (or an
// exceeded MaxAge, or a matching IfVersion) it fails with CodeAlreadyExists,
// carrying the live entry, when one exists: of concurrent puts on a new key
// exactly one wins. A fenced put fails with CodeFailedPrecondition, carrying
// the current holder, once its owner has lost the reservation.
func (m *Manager) Put(ctx context.Context, id ID, req PutRequest) (PutResult, error) {
	w, err := m.entryWrite(id, req)
	if err != nil {
		return PutResult{}, err
	}
	if req.VerifyOutput {
		if err := m.requireOutput(ctx, req.OutputURI); err != nil {
			return PutResult{}, err
		}
	}
	w.Now = m.clock()
	w.VersionBase = w.Now.UnixMilli()
	if err := m.decideLifetime(&w, req); err != nil {
		return PutResult{}, err
	}
	out, err := m.store.PutEntry(ctx, w)
	if err != nil {
		return PutResult{}, fmt.Errorf("put entry: %w", err)
	}
	if !out.Written {
		return PutResult{}, whyNotWritten(w, out)
	}
	m.forget(id)
	m.notify(id)
	res := PutResult{Entry: out.Entry, Created: out.Previous == nil || !out.Previous.LiveAt(w.Now)}
	previous := ""
	if out.Previous != nil {
		previous = out.Previous.OutputURI
	}
	if p := out.Replay; p != nil {
		res, previous = replayedPut(w, p), p.PriorOutputURI
	}
	// The new entry is stored first, so a failure here orphans the old
	// object but never leaves an entry pointing at a deleted one.
	if req.DeleteBlob && previous != "" && previous != req.OutputURI {
		res.DeletedOutput, res.BlobErr = m.deleteOutput(ctx, previous)
	}
	return res, nil
}

// replayedPut is the answer an earlier attempt of w earned, rebuilt from
// what the store recorded then and the request itself (a retry carries the
// same request).
func replayedPut(w EntryWrite, p *PriorWrite) PutResult {
	e := Entry{
		ID:            w.ID,
		OutputURI:     w.OutputURI,
		Metadata:      w.Metadata,
		CreatedAt:     p.At,
		LastUpdatedAt: p.At,
		Version:       p.Version,
	}
	if p.HadEntry {
		e.CreatedAt = p.PriorCreatedAt
	}
	if w.ExpiresAt != nil {
		exp := p.At.Add(w.ExpiresAt.Sub(w.Now))
		e.ExpiresAt = &exp
	}
	return PutResult{Entry: e, Created: !p.ReplacedLive()}
}

// requireOutput checks that the object at uri exists.
func (m *Manager) requireOutput(ctx context.Context, uri string) error {
	bucket, key, _ := SplitS3URI(uri)
	exists, err := m.blobs.Exists(ctx, bucket, key)
	if err != nil {
		return fmt.Errorf("check output %s: %w", uri, err)
	}
	if !exists {
		return Errorf(CodeFailedPrecondition, "output_uri: the object %s does not exist", uri)
	}
	return nil
}

// decideLifetime sets w's instants from w.Now: the entry's expiry (its own
// TTL, capped by the managed buckets' object expiration when it points
// into one) and when the item may be garbage-collected.
func (m *Manager) decideLifetime(w *EntryWrite, req PutRequest) error {
	ttl, err := lifetime("ttl_seconds", req.TTLSeconds, 1)
	if err != nil {
		return err
	}
	if m.outputTTL > 0 && m.managedBucket(req.OutputURI) && (ttl == nil || *ttl > m.outputTTL) {
		ttl = &m.outputTTL
	}
	w.ExpiresAt, w.KeepUntil = nil, nil
	if ttl != nil {
		exp := w.Now.Add(*ttl)
		keep := m.keepEntryUntil(exp)
		w.ExpiresAt, w.KeepUntil = &exp, &keep
	}
	maxAge, err := lifetime("max_age_seconds", req.MaxAgeSeconds, 0)
	if err != nil {
		return err
	}
	w.ReplaceUpdatedBefore = nil
	if maxAge != nil {
		before := w.Now.Add(-*maxAge)
		w.ReplaceUpdatedBefore = &before
	}
	return nil
}

// deleteOutput deletes an output object after its entry stopped pointing
// at it. It returns the URI when the object is gone, or why it is not.
func (m *Manager) deleteOutput(ctx context.Context, uri string) (string, error) {
	bucket, key, _ := SplitS3URI(uri)
	if err := m.blobs.Delete(ctx, bucket, key); err != nil {
		return "", fmt.Errorf("delete output %s: %w", uri, err)
	}
	return uri, nil
}

// entryWrite validates a put and turns it into the store's write; the
// instants are decided later (decideLifetime), as late as possible.
func (m *Manager) entryWrite(id ID, req PutRequest) (EntryWrite, error) {
	if err := id.Validate(); err != nil {
		return EntryWrite{}, err
	}
	if err := validateOutputURI(req.OutputURI); err != nil {
		return EntryWrite{}, err
	}
	if err := validateMetadata(req.Metadata); err != nil {
		return EntryWrite{}, err
	}
	if _, err := lifetime("max_age_seconds", req.MaxAgeSeconds, 0); err != nil {
		return EntryWrite{}, err
	}
	if _, err := lifetime("ttl_seconds", req.TTLSeconds, 1); err != nil {
		return EntryWrite{}, err
	}
	if req.IfVersion != nil && *req.IfVersion < 1 {
		return EntryWrite{}, Errorf(CodeInvalidArgument, "if_version: must be at least 1")
	}
	if err := validateText("owner_id", req.OwnerID, MaxOwnerIDBytes, false); err != nil {
		return EntryWrite{}, err
	}
	if err := validateIdempotencyKey("idempotency_key", req.IdempotencyKey); err != nil {
		return EntryWrite{}, err
	}
	if req.OwnerID == "" && (req.Fence != nil || req.Release) {
		field := "fence"
		if req.Release {
			field = "release"
		}
		return EntryWrite{}, Errorf(CodeInvalidArgument, "%s: requires owner_id", field)
	}
	if req.VerifyOutput {
		if err := m.requireInScope("verify_output", id, req.OutputURI); err != nil {
			return EntryWrite{}, err
		}
	}
	if err := m.requireManagedBuckets(req.DeleteBlob); err != nil {
		return EntryWrite{}, err
	}
	token, err := newToken("put", id, req.IdempotencyKey, req)
	if err != nil {
		return EntryWrite{}, err
	}
	w := EntryWrite{
		ID:        id,
		Token:     token,
		OutputURI: req.OutputURI,
		Metadata:  req.Metadata,
		Overwrite: req.Overwrite,
		IfVersion: req.IfVersion,
	}
	if req.OwnerID != "" {
		w.Holder = &HolderCondition{OwnerID: req.OwnerID, Fence: req.Fence, Release: req.Release}
	}
	if req.DeleteBlob {
		w.PreviousUnder = m.scopePrefixes(id)
		w.RecordPriorOutput = true
	}
	return w, nil
}

// whyNotWritten names the condition of w that the item's state failed, in
// the order a caller can act on: lost reservation, unmanaged bucket, version
// mismatch, existing entry.
func whyNotWritten(w EntryWrite, out PutOutcome) error {
	prev, res := out.Previous, out.Reservation
	live := prev != nil && prev.LiveAt(w.Now)
	var existing *Entry
	if live {
		existing = prev
	}
	if h := w.Holder; h != nil {
		var holder *Reservation
		if res != nil && res.LiveAt(w.Now) {
			holder = res
		}
		switch {
		case holder == nil:
			return &Error{Code: CodeFailedPrecondition, Message: "owner_id: the key is not reserved (the reservation expired or was released)", Existing: existing}
		case holder.OwnerID != h.OwnerID:
			return &Error{Code: CodeFailedPrecondition, Message: "owner_id: the reservation is held by another owner", Holder: holder, Existing: existing}
		case h.Fence != nil && holder.Fence != *h.Fence:
			return &Error{Code: CodeFailedPrecondition, Message: fmt.Sprintf("fence: the reservation's fence is %d", holder.Fence), Holder: holder, Existing: existing}
		}
	}
	if len(w.PreviousUnder) > 0 && prev != nil && !hasAnyPrefix(prev.OutputURI, w.PreviousUnder) {
		return Errorf(CodeInvalidArgument, "delete_blob: the replaced output %s is outside this scope's outputs (%s)", prev.OutputURI, strings.Join(w.PreviousUnder, ", "))
	}
	if w.IfVersion != nil {
		if !live {
			return Errorf(CodeFailedPrecondition, "if_version: there is no live entry")
		}
		return &Error{Code: CodeFailedPrecondition, Message: fmt.Sprintf("if_version: the entry's version is %d", prev.Version), Existing: existing}
	}
	return &Error{Code: CodeAlreadyExists, Message: "key: an entry exists; set overwrite or max_age_seconds to replace it", Existing: existing}
}

// lifetime checks an optional number of seconds against [min,
// MaxLifetimeSeconds] and converts it to a duration.
func lifetime(field string, seconds *int64, min int64) (*time.Duration, error) {
	if seconds == nil {
		return nil, nil
	}
	if *seconds < min {
		return nil, Errorf(CodeInvalidArgument, "%s: must be at least %d", field, min)
	}
	if *seconds > MaxLifetimeSeconds {
		return nil, Errorf(CodeInvalidArgument, "%s: must be at most %d", field, MaxLifetimeSeconds)
	}
	d := time.Duration(*seconds) * time.Second
	return &d, nil
}

// hasAnyPrefix reports whether s starts with one of the prefixes.
func hasAnyPrefix(s string, prefixes []string) bool {
	return slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(s, p) })
}
