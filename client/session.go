package client

import (
	"fmt"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"
)

// session remembers, per key, the newest state the client has seen or
// written, so that cheaper reads (eventual, bounded staleness) never go
// back in time: read-your-writes and monotonic reads.
type session struct {
	// mu makes read-modify-write of one key's record atomic.
	mu   sync.Mutex
	keys *lru.Cache[string, seenState]
}

// seenState is what the client knows of a key.
type seenState struct {
	// version is the newest entry version seen or written (0: none).
	version int64
	// absent: the newest state seen is "no entry" (a delete by this
	// client, or a strong read that found none), which came after
	// version. No response carries the version of a deletion, so min_version
	// cannot express it: reads of the key are strong until a newer entry is
	// seen.
	absent bool
}

func newSession(size int) (*session, error) {
	keys, err := lru.New[string, seenState](size)
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	return &session{keys: keys}, nil
}

// sawEntry records an entry version read or written.
func (s *session) sawEntry(path string, version int64) {
	if s == nil || version <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, _ := s.keys.Get(path)
	// Versions only grow, across deletes too: an entry newer than what we
	// know supersedes a deletion we saw; an older one is a stale read.
	if version > cur.version {
		s.keys.Add(path, seenState{version: version})
	}
}

// sawAbsent records that the key had no entry after everything seen so
// far.
func (s *session) sawAbsent(path string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, _ := s.keys.Get(path)
	cur.absent = true
	s.keys.Add(path, cur)
}

// apply returns o adjusted so a cheaper read of path does not answer older
// than what the session has seen: min_version raised to the newest version
// seen, or a strong read when the newest state seen is a deletion.
func (s *session) apply(path string, o GetOptions) GetOptions {
	if s == nil || (o.Consistency != ConsistencyEventual && o.MaxStaleness == 0) {
		return o
	}
	s.mu.Lock()
	cur, ok := s.keys.Get(path)
	s.mu.Unlock()
	switch {
	case !ok:
	case cur.absent:
		// A strong read is as fresh as can be; min_version adds nothing.
		o.Consistency, o.MaxStaleness, o.MinVersion = "", 0, 0
	case cur.version > o.MinVersion:
		o.MinVersion = cur.version
	}
	return o
}
