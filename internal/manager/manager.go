// Package manager decides Stampede's cache and reservation policy: what a
// valid request is, when entries and reservations expire, how puts merge
// into existing entries, how reservations are fenced, which reads may be
// stale, and when output objects may be deleted. It knows nothing of
// Lambda, HTTP or the AWS SDK; storage and the object store sit behind
// interfaces and time behind an injected clock.
package manager

import (
	"context"
	"fmt"
	"slices"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Defaults follow Flyte's cache service.
const (
	DefaultHeartbeatMultiplier = 3
	DefaultHeartbeatInterval   = 10 * time.Second
	DefaultMaxHeartbeat        = 10 * time.Second
	// ReservationRetention is how long a key's item outlives its last
	// reservation or its entry's expiry before TTL may collect it. While the
	// item exists its fence counter keeps growing; after collection the next
	// fence is seeded from the clock (milliseconds), which is larger still.
	ReservationRetention = 24 * time.Hour
	// DefaultReadCacheEntries bounds the bounded-staleness read cache.
	DefaultReadCacheEntries = 4096
	// MaxStaleness bounds max_staleness_ms.
	MaxStaleness = time.Minute
)

// Config tunes a Manager. Zero values take the defaults.
type Config struct {
	// HeartbeatMultiplier is how many heartbeats a reservation survives
	// without an extension.
	HeartbeatMultiplier int
	// MaxHeartbeat clamps the heartbeat interval callers ask for.
	MaxHeartbeat time.Duration
	// Clock returns the current instant; time.Now when nil.
	Clock func() time.Time
	// Blobs is the object store holding outputs; nil disables delete_blob,
	// verify_output and verify.
	Blobs Blobs
	// ManagedBuckets are the buckets whose objects Stampede may check and
	// delete.
	ManagedBuckets []string
	// ReadCacheEntries sizes the in-memory cache serving bounded-staleness
	// reads; 0 takes the default, negative disables it.
	ReadCacheEntries int
}

// Blobs is the object store holding task outputs.
type Blobs interface {
	// Exists reports whether the object exists.
	Exists(ctx context.Context, bucket, key string) (bool, error)
	// Delete removes the object; removing a missing object is not an error.
	Delete(ctx context.Context, bucket, key string) error
}

// Manager applies the policy and delegates storage to a Store.
type Manager struct {
	store        Store
	blobs        Blobs
	managed      []string
	now          func() time.Time
	multiplier   int
	maxHeartbeat time.Duration
	reads        *lru.Cache[ID, cachedRead]
}

// cachedRead is a strongly consistent read and the instant it started.
type cachedRead struct {
	entry *Entry
	at    time.Time
}

// New returns a Manager over store.
func New(store Store, cfg Config) (*Manager, error) {
	m := &Manager{
		store:        store,
		blobs:        cfg.Blobs,
		managed:      slices.Clone(cfg.ManagedBuckets),
		now:          cfg.Clock,
		multiplier:   cfg.HeartbeatMultiplier,
		maxHeartbeat: cfg.MaxHeartbeat,
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.multiplier == 0 {
		m.multiplier = DefaultHeartbeatMultiplier
	}
	if m.maxHeartbeat == 0 {
		m.maxHeartbeat = DefaultMaxHeartbeat
	}
	if m.multiplier < 1 {
		return nil, fmt.Errorf("heartbeat multiplier must be at least 1, got %d", m.multiplier)
	}
	if m.maxHeartbeat < time.Second {
		return nil, fmt.Errorf("maximum heartbeat must be at least 1s, got %s", m.maxHeartbeat)
	}
	for _, b := range m.managed {
		if !validBucketName(b) {
			return nil, fmt.Errorf("managed bucket %q is not a valid bucket name", b)
		}
	}
	size := cfg.ReadCacheEntries
	if size == 0 {
		size = DefaultReadCacheEntries
	}
	if size > 0 {
		cache, err := lru.New[ID, cachedRead](size)
		if err != nil {
			return nil, fmt.Errorf("read cache: %w", err)
		}
		m.reads = cache
	}
	return m, nil
}

// clock returns the current instant in UTC at the millisecond precision
// Stampede stores and compares.
func (m *Manager) clock() time.Time {
	return m.now().UTC().Truncate(time.Millisecond)
}

// maxReservationLifetime is the longest a reservation can last unextended.
func (m *Manager) maxReservationLifetime() time.Duration {
	return m.maxHeartbeat * time.Duration(m.multiplier)
}

// managedBucket reports whether Stampede may check and delete objects in b.
func (m *Manager) managedBucket(b string) bool {
	return m.blobs != nil && slices.Contains(m.managed, b)
}

// forget drops a key from the read cache after this instance wrote it, so
// a warm instance reads its own writes.
func (m *Manager) forget(id ID) {
	if m.reads != nil {
		m.reads.Remove(id)
	}
}

// Read names the kind of read that served a get.
type Read string

// The kinds of read.
const (
	ReadStrong   Read = "strong"
	ReadEventual Read = "eventual"
	// ReadCache is a bounded-staleness read served from memory.
	ReadCache Read = "cache"
)

// GetOptions choose how a get reads. The zero value is a strongly
// consistent read.
type GetOptions struct {
	// Eventual allows an eventually consistent read (half the cost).
	Eventual bool
	// MinVersion, with Eventual, makes a miss or an older version fall back
	// to a strong read: a session guarantee for clients that pass the last
	// version they saw.
	MinVersion int64
	// MaxStaleness allows a read served from this instance's memory if it is
	// no older than this (the cached read itself was strong).
	MaxStaleness time.Duration
	// Verify checks that the output object exists; a dangling entry is a
	// miss and is removed.
	Verify bool
}

// GetResult is a get's entry and the read that served it.
type GetResult struct {
	Entry *Entry
	Read  Read
}

// Get returns the live entry for id, or a CodeNotFound error. The result's
// Read is set on misses too.
func (m *Manager) Get(ctx context.Context, id ID, opts GetOptions) (GetResult, error) {
	if err := id.Validate(); err != nil {
		return GetResult{}, err
	}
	if opts.MinVersion < 0 {
		return GetResult{}, Errorf(CodeInvalidArgument, "min_version: must be at least 1")
	}
	if opts.MaxStaleness < 0 || opts.MaxStaleness > MaxStaleness {
		return GetResult{}, Errorf(CodeInvalidArgument, "max_staleness_ms: must be from 1 to %d", MaxStaleness.Milliseconds())
	}
	now := m.clock()
	res, err := m.read(ctx, id, opts, now)
	if err != nil {
		return res, err
	}
	// TTL deletion is lazy (often days late): expiry is decided here.
	if res.Entry == nil || !res.Entry.LiveAt(now) {
		return GetResult{Read: res.Read}, Errorf(CodeNotFound, "key: no cached entry")
	}
	if opts.Verify {
		if err := m.verify(ctx, res.Entry, now); err != nil {
			return GetResult{Read: res.Read}, err
		}
	}
	return res, nil
}

// read fetches the entry the way opts allow.
func (m *Manager) read(ctx context.Context, id ID, opts GetOptions, now time.Time) (GetResult, error) {
	if opts.MaxStaleness > 0 && m.reads != nil {
		if c, ok := m.reads.Get(id); ok && now.Sub(c.at) <= opts.MaxStaleness &&
			(opts.MinVersion == 0 || c.entry != nil && c.entry.Version >= opts.MinVersion) {
			return GetResult{Entry: c.entry, Read: ReadCache}, nil
		}
		e, err := m.store.GetEntry(ctx, id, true)
		if err != nil {
			return GetResult{}, fmt.Errorf("get entry: %w", err)
		}
		// Stamped with the instant before the read: the value is at least
		// that fresh.
		m.reads.Add(id, cachedRead{entry: e, at: now})
		return GetResult{Entry: e, Read: ReadStrong}, nil
	}
	if opts.Eventual {
		e, err := m.store.GetEntry(ctx, id, false)
		if err != nil {
			return GetResult{}, fmt.Errorf("get entry: %w", err)
		}
		stale := e == nil || !e.LiveAt(now) || e.Version < opts.MinVersion
		if opts.MinVersion == 0 || !stale {
			return GetResult{Entry: e, Read: ReadEventual}, nil
		}
	}
	e, err := m.store.GetEntry(ctx, id, true)
	if err != nil {
		return GetResult{}, fmt.Errorf("get entry: %w", err)
	}
	return GetResult{Entry: e, Read: ReadStrong}, nil
}

// verify checks that e's output exists; if it is gone the entry is removed
// (only if still at the version read, so a fresh put is never lost).
func (m *Manager) verify(ctx context.Context, e *Entry, now time.Time) error {
	bucket, key, _ := SplitS3URI(e.OutputURI)
	if !m.managedBucket(bucket) {
		return Errorf(CodeInvalidArgument, "verify: bucket %q is not managed by Stampede", bucket)
	}
	exists, err := m.blobs.Exists(ctx, bucket, key)
	if err != nil {
		return fmt.Errorf("check output %s: %w", e.OutputURI, err)
	}
	if exists {
		return nil
	}
	if _, err := m.store.DeleteEntry(ctx, EntryDelete{
		ID:          e.ID,
		Now:         now,
		OnlyVersion: &e.Version,
		KeepUntil:   now.Add(ReservationRetention + m.maxReservationLifetime()),
	}); err != nil {
		return fmt.Errorf("remove dangling entry: %w", err)
	}
	m.forget(e.ID)
	return Errorf(CodeNotFound, "output_uri: the output object %s is gone; the entry was removed", e.OutputURI)
}

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
		bucket, key, _ := SplitS3URI(req.OutputURI)
		exists, err := m.blobs.Exists(ctx, bucket, key)
		if err != nil {
			return PutResult{}, fmt.Errorf("check output %s: %w", req.OutputURI, err)
		}
		if !exists {
			return PutResult{}, Errorf(CodeFailedPrecondition, "output_uri: the object %s does not exist", req.OutputURI)
		}
	}
	out, err := m.store.PutEntry(ctx, w)
	if err != nil {
		return PutResult{}, fmt.Errorf("put entry: %w", err)
	}
	if !out.Written {
		return PutResult{}, whyNotWritten(w, out)
	}
	m.forget(id)
	res := PutResult{Entry: out.Entry, Created: out.Previous == nil || !out.Previous.LiveAt(w.Now)}
	// The new entry is stored first, so a failure here orphans the old
	// object but never leaves an entry pointing at a deleted one.
	if prev := out.Previous; req.DeleteBlob && prev != nil && prev.OutputURI != req.OutputURI {
		res.DeletedOutput, res.BlobErr = m.deleteOutput(ctx, prev.OutputURI)
	}
	return res, nil
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

// requireManagedBuckets refuses delete_blob when Stampede manages no bucket.
func (m *Manager) requireManagedBuckets(deleteBlob bool) error {
	if deleteBlob && (m.blobs == nil || len(m.managed) == 0) {
		return Errorf(CodeInvalidArgument, "delete_blob: no managed buckets are configured")
	}
	return nil
}

// entryWrite validates a put and turns it into the store's write.
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
	maxAge, err := lifetime("max_age_seconds", req.MaxAgeSeconds, 0)
	if err != nil {
		return EntryWrite{}, err
	}
	ttl, err := lifetime("ttl_seconds", req.TTLSeconds, 1)
	if err != nil {
		return EntryWrite{}, err
	}
	if req.IfVersion != nil && *req.IfVersion < 1 {
		return EntryWrite{}, Errorf(CodeInvalidArgument, "if_version: must be at least 1")
	}
	if err := validateText("owner_id", req.OwnerID, MaxOwnerIDBytes, false); err != nil {
		return EntryWrite{}, err
	}
	if req.OwnerID == "" && (req.Fence != nil || req.Release) {
		field := "fence"
		if req.Release {
			field = "release"
		}
		return EntryWrite{}, Errorf(CodeInvalidArgument, "%s: requires owner_id", field)
	}
	bucket, _, _ := SplitS3URI(req.OutputURI)
	if req.VerifyOutput && !m.managedBucket(bucket) {
		return EntryWrite{}, Errorf(CodeInvalidArgument, "verify_output: bucket %q is not managed by Stampede", bucket)
	}
	if err := m.requireManagedBuckets(req.DeleteBlob); err != nil {
		return EntryWrite{}, err
	}
	now := m.clock()
	w := EntryWrite{
		ID:        id,
		OutputURI: req.OutputURI,
		Metadata:  req.Metadata,
		Now:       now,
		Overwrite: req.Overwrite,
		IfVersion: req.IfVersion,
	}
	if maxAge != nil {
		before := now.Add(-*maxAge)
		w.ReplaceUpdatedBefore = &before
	}
	if ttl != nil {
		exp := now.Add(*ttl)
		keep := exp.Add(ReservationRetention)
		w.ExpiresAt, w.KeepUntil = &exp, &keep
	}
	if req.OwnerID != "" {
		w.Holder = &HolderCondition{OwnerID: req.OwnerID, Fence: req.Fence, Release: req.Release}
	}
	if req.DeleteBlob {
		w.PreviousInBuckets = m.managed
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
	if len(w.PreviousInBuckets) > 0 && prev != nil {
		if bucket, _, _ := SplitS3URI(prev.OutputURI); !slices.Contains(w.PreviousInBuckets, bucket) {
			return Errorf(CodeInvalidArgument, "delete_blob: the replaced output's bucket %q is not managed by Stampede", bucket)
		}
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

// DeleteRequest qualifies a delete.
type DeleteRequest struct {
	// IfVersion, when set, deletes only a live entry with this version.
	IfVersion *int64
	// DeleteBlob deletes the entry's output object after the entry.
	DeleteBlob bool
}

// DeleteResult is what a delete did.
type DeleteResult struct {
	// Deleted is true when a live entry was removed.
	Deleted bool
	// DeletedOutput is the output object deleted after the entry.
	DeletedOutput string
	// BlobErr is why deleting the output failed; the entry is gone all the
	// same and the object merely orphaned.
	BlobErr error
}

// Delete removes the entry for id. Deleting nothing is not an error. It
// touches the output object only with DeleteBlob, and only after the entry
// is gone.
func (m *Manager) Delete(ctx context.Context, id ID, req DeleteRequest) (DeleteResult, error) {
	if err := id.Validate(); err != nil {
		return DeleteResult{}, err
	}
	if req.IfVersion != nil && *req.IfVersion < 1 {
		return DeleteResult{}, Errorf(CodeInvalidArgument, "if_version: must be at least 1")
	}
	if err := m.requireManagedBuckets(req.DeleteBlob); err != nil {
		return DeleteResult{}, err
	}
	now := m.clock()
	d := EntryDelete{
		ID:        id,
		Now:       now,
		IfVersion: req.IfVersion,
		KeepUntil: now.Add(ReservationRetention + m.maxReservationLifetime()),
	}
	if req.DeleteBlob {
		d.OutputInBuckets = m.managed
	}
	out, err := m.store.DeleteEntry(ctx, d)
	if err != nil {
		return DeleteResult{}, fmt.Errorf("delete entry: %w", err)
	}
	prev := out.Previous
	if !out.Removed {
		switch {
		case prev == nil:
			return DeleteResult{}, nil
		case req.DeleteBlob && !slices.Contains(m.managed, bucketOf(prev.OutputURI)):
			return DeleteResult{}, Errorf(CodeInvalidArgument, "delete_blob: the output's bucket %q is not managed by Stampede", bucketOf(prev.OutputURI))
		case req.IfVersion != nil && !prev.LiveAt(now):
			return DeleteResult{}, Errorf(CodeFailedPrecondition, "if_version: there is no live entry")
		case req.IfVersion != nil:
			return DeleteResult{}, &Error{Code: CodeFailedPrecondition, Message: fmt.Sprintf("if_version: the entry's version is %d", prev.Version), Existing: prev}
		}
		return DeleteResult{}, fmt.Errorf("delete %v: condition failed for an unknown reason", id)
	}
	m.forget(id)
	res := DeleteResult{Deleted: prev != nil && prev.LiveAt(now)}
	if req.DeleteBlob && prev != nil {
		res.DeletedOutput, res.BlobErr = m.deleteOutput(ctx, prev.OutputURI)
	}
	return res, nil
}

func bucketOf(uri string) string {
	b, _, _ := SplitS3URI(uri)
	return b
}

// ReserveRequest asks for (or extends) the reservation of a key.
type ReserveRequest struct {
	OwnerID string
	// HeartbeatSeconds is how often the owner promises to extend; nil means
	// the default. It is clamped to the configured maximum.
	HeartbeatSeconds *int64
}

// ReserveResult says whether the caller holds the reservation. When
// Acquired is false, Reservation is the current holder's.
type ReserveResult struct {
	Reservation Reservation
	Acquired    bool
}

// Reserve gets or extends the reservation of id for req.OwnerID in one
// conditional write. It is acquired when the key has no live reservation or
// the caller already holds it; each new acquisition gets a larger fence than
// any earlier holder, an extension keeps its fence.
func (m *Manager) Reserve(ctx context.Context, id ID, req ReserveRequest) (ReserveResult, error) {
	if err := id.Validate(); err != nil {
		return ReserveResult{}, err
	}
	if err := validateText("owner_id", req.OwnerID, MaxOwnerIDBytes, true); err != nil {
		return ReserveResult{}, err
	}
	hb, err := m.effectiveHeartbeat(req.HeartbeatSeconds)
	if err != nil {
		return ReserveResult{}, err
	}
	now := m.clock()
	exp := now.Add(hb * time.Duration(m.multiplier))
	res, acquired, err := m.store.AcquireReservation(ctx, Acquisition{
		ID:                id,
		OwnerID:           req.OwnerID,
		HeartbeatInterval: hb,
		Now:               now,
		ExpiresAt:         exp,
		FenceBase:         now.UnixMilli(),
		KeepUntil:         exp.Add(ReservationRetention),
	})
	if err != nil {
		return ReserveResult{}, fmt.Errorf("acquire reservation: %w", err)
	}
	return ReserveResult{Reservation: res, Acquired: acquired}, nil
}

// effectiveHeartbeat applies the default and the clamp.
func (m *Manager) effectiveHeartbeat(seconds *int64) (time.Duration, error) {
	hb := DefaultHeartbeatInterval
	if seconds != nil {
		if *seconds < 1 {
			return 0, Errorf(CodeInvalidArgument, "heartbeat_interval_seconds: must be at least 1")
		}
		// Compare in seconds first: a huge value would overflow a Duration.
		if *seconds >= int64(m.maxHeartbeat/time.Second) {
			return m.maxHeartbeat, nil
		}
		hb = time.Duration(*seconds) * time.Second
	}
	return min(hb, m.maxHeartbeat), nil
}

// Release ends the caller's reservation of id. A missing reservation or one
// held by someone else is not an error: released is false and another
// owner's reservation is left alone.
func (m *Manager) Release(ctx context.Context, id ID, ownerID string) (bool, error) {
	if err := id.Validate(); err != nil {
		return false, err
	}
	if err := validateText("owner_id", ownerID, MaxOwnerIDBytes, true); err != nil {
		return false, err
	}
	released, err := m.store.ReleaseReservation(ctx, id, ownerID, m.clock().Add(ReservationRetention))
	if err != nil {
		return false, fmt.Errorf("release reservation: %w", err)
	}
	return released, nil
}
