package manager

import (
	"context"
	"fmt"
	"strings"
)

// DeleteRequest qualifies a delete.
type DeleteRequest struct {
	// IfVersion, when set, deletes only a live entry with this version.
	IfVersion *int64
	// DeleteBlob deletes the entry's output object after the entry.
	DeleteBlob bool
	// IdempotencyKey, when set, identifies the request across re-sends.
	IdempotencyKey string `json:"-"`
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

// Delete removes the entry for id. Deleting nothing is not an error, unless
// IfVersion asked for a live entry. It touches the output object only with
// DeleteBlob, only inside id's scope, and only after the entry is gone.
func (m *Manager) Delete(ctx context.Context, id ID, req DeleteRequest) (DeleteResult, error) {
	if err := id.Validate(); err != nil {
		return DeleteResult{}, err
	}
	if req.IfVersion != nil && *req.IfVersion < 1 {
		return DeleteResult{}, Errorf(CodeInvalidArgument, "if_version: must be at least 1")
	}
	if err := validateIdempotencyKey("idempotency_key", req.IdempotencyKey); err != nil {
		return DeleteResult{}, err
	}
	if err := m.requireManagedBuckets(req.DeleteBlob); err != nil {
		return DeleteResult{}, err
	}
	token, err := newToken("delete", id, req.IdempotencyKey, req)
	if err != nil {
		return DeleteResult{}, err
	}
	now := m.clock()
	d := EntryDelete{
		ID:        id,
		Token:     token,
		Now:       now,
		IfVersion: req.IfVersion,
		// Any reservation on the key ends within one maximal lease.
		KeepUntil: now.Add(ReservationRetention + m.maxReservationLifetime()),
	}
	if req.DeleteBlob {
		d.OutputUnder = m.scopePrefixes(id)
	}
	out, err := m.store.DeleteEntry(ctx, d)
	if err != nil {
		return DeleteResult{}, fmt.Errorf("delete entry: %w", err)
	}
	if !out.Removed {
		// A nil reason means there was nothing to delete.
		return DeleteResult{}, whyNotDeleted(d, out.Previous)
	}
	m.forget(id)
	res := DeleteResult{}
	output := ""
	if p := out.Replay; p != nil {
		res.Deleted, output = p.ReplacedLive(), p.PriorOutputURI
	} else if prev := out.Previous; prev != nil {
		res.Deleted, output = prev.LiveAt(now), prev.OutputURI
	}
	if req.DeleteBlob && output != "" {
		res.DeletedOutput, res.BlobErr = m.deleteOutput(ctx, output)
	}
	return res, nil
}

// whyNotDeleted explains a delete whose condition failed: nothing to delete
// (not an error unless a version was required), a version mismatch, or an
// output outside the scope.
func whyNotDeleted(d EntryDelete, prev *Entry) error {
	live := prev != nil && prev.LiveAt(d.Now)
	switch {
	case d.IfVersion != nil && !live:
		return Errorf(CodeFailedPrecondition, "if_version: there is no live entry")
	case prev == nil:
		return nil
	case len(d.OutputUnder) > 0 && !hasAnyPrefix(prev.OutputURI, d.OutputUnder):
		return Errorf(CodeInvalidArgument, "delete_blob: the output %s is outside this scope's outputs (%s)", prev.OutputURI, strings.Join(d.OutputUnder, ", "))
	case d.IfVersion != nil:
		return &Error{Code: CodeFailedPrecondition, Message: fmt.Sprintf("if_version: the entry's version is %d", prev.Version), Existing: prev}
	}
	return fmt.Errorf("delete %v: condition failed for an unknown reason", d.ID)
}
