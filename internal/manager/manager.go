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
	// OutputExpiration, when set, is how long the managed buckets keep an
	// object: entries pointing into them get at most this lifetime, so they
	// never outlive their objects.
	OutputExpiration time.Duration
	// WaitPoll is how often the waiters of a key (gets with Wait) read it;
	// zero means DefaultWaitPoll.
	WaitPoll time.Duration
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
	outputTTL    time.Duration
	waitPoll     time.Duration
	reads        *lru.Cache[ID, cachedRead]
	group        readGroup
	reserves     reserveGroup
	watches      watchGroup
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
		outputTTL:    cfg.OutputExpiration,
		waitPoll:     cfg.WaitPoll,
	}
	if m.waitPoll <= 0 {
		m.waitPoll = DefaultWaitPoll
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
	if m.outputTTL < 0 {
		return nil, fmt.Errorf("output expiration must not be negative, got %s", m.outputTTL)
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

// keepEntryUntil is when an item holding an entry that expires at exp may
// be garbage-collected: after the entry, and after any reservation taken
// while it lived (at most one maximal lease past exp) plus the retention,
// plus one more retention so that a reservation taken within a day of the
// expiry still finds the item's pin long enough (dynamostore's reserve).
func (m *Manager) keepEntryUntil(exp time.Time) time.Time {
	return exp.Add(m.maxReservationLifetime() + 2*ReservationRetention)
}

// forget drops a key from the read cache after this instance wrote it, so
// a warm instance reads its own writes.
func (m *Manager) forget(id ID) {
	if m.reads != nil {
		m.reads.Remove(id)
	}
}
