package manager

import (
	"context"
	"fmt"
	"time"
)

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
	// Wait, on a miss, waits up to this long (at most MaxWait, and never
	// past the request's deadline less a second) for the entry to appear:
	// the herd behind a reservation learns of the result at once.
	Wait time.Duration
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
	if opts.Wait < 0 || opts.Wait > MaxWait {
		return GetResult{}, Errorf(CodeInvalidArgument, "wait_ms: must be from 0 to %d", MaxWait.Milliseconds())
	}
	now := m.clock()
	res, err := m.read(ctx, id, opts, now)
	if err != nil {
		return res, err
	}
	if opts.Wait > 0 && (res.Entry == nil || !res.Entry.LiveAt(now)) {
		e, err := m.awaitEntry(ctx, id, opts.Wait)
		if err != nil {
			return GetResult{Read: ReadStrong}, fmt.Errorf("wait for entry: %w", err)
		}
		res, now = GetResult{Entry: e, Read: ReadStrong}, m.clock()
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
		e, err := m.strongRead(ctx, id)
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
	e, err := m.strongRead(ctx, id)
	if err != nil {
		return GetResult{}, fmt.Errorf("get entry: %w", err)
	}
	return GetResult{Entry: e, Read: ReadStrong}, nil
}

// verify checks that e's output exists; if it is gone the entry is removed
// (only if still at the version read, so a fresh put is never lost).
func (m *Manager) verify(ctx context.Context, e *Entry, now time.Time) error {
	if err := m.requireInScope("verify", e.ID, e.OutputURI); err != nil {
		return err
	}
	bucket, key, _ := SplitS3URI(e.OutputURI)
	exists, err := m.blobs.Exists(ctx, bucket, key)
	if err != nil {
		return fmt.Errorf("check output %s: %w", e.OutputURI, err)
	}
	if exists {
		return nil
	}
	token, err := newToken("", e.ID, "", nil)
	if err != nil {
		return err
	}
	if _, err := m.store.DeleteEntry(ctx, EntryDelete{
		ID:          e.ID,
		Token:       token,
		Now:         now,
		OnlyVersion: &e.Version,
		KeepUntil:   now.Add(ReservationRetention + m.maxReservationLifetime()),
	}); err != nil {
		return fmt.Errorf("remove dangling entry: %w", err)
	}
	m.forget(e.ID)
	return Errorf(CodeNotFound, "output_uri: the output object %s is gone; the entry was removed", e.OutputURI)
}
