package client

import "time"

// assumedMultiplier is the service's default heartbeat multiplier: a
// reservation lives that many heartbeat intervals after its last
// extension. The client never counts on a longer lease, whatever the
// clocks say (a server configured with a larger multiplier only makes the
// client more careful).
const assumedMultiplier = 3

// leaseDeadline is how long the holder of an acquired reservation r can
// count on it, by its own clock, when the reserve was sent at sent and
// answered at received.
//
// The service decided at some instant between sent and received and set
// r.ExpiresAt = decision + lease. The lifetime left when the answer
// arrived (r.ExpiresAt - received) is counted from sent instead: that is
// r.ExpiresAt shifted back by the round trip, so a slow answer shortens the
// lease rather than stretching it. It is capped at assumedMultiplier
// heartbeats, against a client clock running behind the server's. When the
// call's Idempotency-Key is the client's own, the decision cannot predate
// sent, and every lease lasts at least one heartbeat interval (the
// service's multiplier is at least 1): sent + one heartbeat holds even
// when the client's clock runs ahead. With a caller's key the answer may
// replay an acquisition made long before (by an earlier process), so
// there is no such floor.
func leaseDeadline(r Reservation, sent, received time.Time, ownKey bool) time.Time {
	left := r.ExpiresAt.Sub(received)
	if hb := r.HeartbeatInterval; hb > 0 {
		left = min(left, hb*assumedMultiplier)
		if ownKey {
			left = max(left, hb)
		}
	}
	return sent.Add(left)
}
