package dynamostore

import (
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"

	"github.com/stampede-cache/stampede/internal/manager"
)

// The recent-writes register makes writes idempotent in the write itself.
// Each put, delete and release records its token in slot 0 of the item and
// shifts the older slots down, in the same conditional UpdateItem; a write
// whose token is in any slot is never applied again, and the failed
// condition hands the item back, so a retry learns what its first attempt
// did without a second request.
//
// A slot is flat attributes, not a map, because some of its fields are
// copied from the item as it was before the write (an update expression can
// copy an attribute but cannot build a map from attributes):
//
//	w<i>t  the token
//	w<i>a  the instant the write was decided with (epoch ms)
//	w<i>v  the key's version after the write
//	w<i>c  the replaced entry's created_at, if there was an entry
//	w<i>e  the replaced entry's expires_at, if it had one
//	w<i>o  the replaced entry's output_uri, only when asked for (delete_blob)
//
// Tokens are bounded (the manager hashes them), so a slot costs at most
// about 90 bytes plus an output URI when one is recorded.
const slotFields = "tavceo"

// slotAttr names field f of slot i.
func slotAttr(i int, f byte) string {
	return "w" + strconv.Itoa(i) + string(f)
}

// recentWrites is the register as stored.
type recentWrites struct {
	W0T *string `dynamodbav:"w0t"`
	W0A int64   `dynamodbav:"w0a"`
	W0V int64   `dynamodbav:"w0v"`
	W0C *int64  `dynamodbav:"w0c"`
	W0E *int64  `dynamodbav:"w0e"`
	W0O *string `dynamodbav:"w0o"`
	W1T *string `dynamodbav:"w1t"`
	W1A int64   `dynamodbav:"w1a"`
	W1V int64   `dynamodbav:"w1v"`
	W1C *int64  `dynamodbav:"w1c"`
	W1E *int64  `dynamodbav:"w1e"`
	W1O *string `dynamodbav:"w1o"`
	W2T *string `dynamodbav:"w2t"`
	W2A int64   `dynamodbav:"w2a"`
	W2V int64   `dynamodbav:"w2v"`
	W2C *int64  `dynamodbav:"w2c"`
	W2E *int64  `dynamodbav:"w2e"`
	W2O *string `dynamodbav:"w2o"`
	W3T *string `dynamodbav:"w3t"`
	W3A int64   `dynamodbav:"w3a"`
	W3V int64   `dynamodbav:"w3v"`
	W3C *int64  `dynamodbav:"w3c"`
	W3E *int64  `dynamodbav:"w3e"`
	W3O *string `dynamodbav:"w3o"`
}

// regSlot is one decoded slot of the register.
type regSlot struct {
	token     *string
	at        int64
	version   int64
	createdAt *int64
	expiresAt *int64
	output    *string
}

func (r *recentWrites) slots() [manager.RecentWrites]regSlot {
	return [manager.RecentWrites]regSlot{
		{r.W0T, r.W0A, r.W0V, r.W0C, r.W0E, r.W0O},
		{r.W1T, r.W1A, r.W1V, r.W1C, r.W1E, r.W1O},
		{r.W2T, r.W2A, r.W2V, r.W2C, r.W2E, r.W2O},
		{r.W3T, r.W3A, r.W3V, r.W3C, r.W3E, r.W3O},
	}
}

// registerFull reports whether every slot holds a write: a write recorded
// before them may have been pushed out.
func (r *recentWrites) registerFull() bool { return r.W3T != nil }

// find returns what the register recorded for token, or nil.
func (r *recentWrites) find(token manager.Token) *manager.PriorWrite {
	if token == "" {
		return nil
	}
	for _, s := range r.slots() {
		if s.token == nil || *s.token != string(token) {
			continue
		}
		p := &manager.PriorWrite{At: fromMillis(s.at), Version: s.version, HadEntry: s.createdAt != nil}
		if s.createdAt != nil {
			p.PriorCreatedAt = fromMillis(*s.createdAt)
		}
		if s.expiresAt != nil {
			t := fromMillis(*s.expiresAt)
			p.PriorExpiresAt = &t
		}
		if s.output != nil {
			p.PriorOutputURI = *s.output
		}
		return p
	}
	return nil
}

// notSeen holds when no slot of the register holds the request's token
// (slot "token").
func notSeen() expression.ConditionBuilder {
	var seen expression.ConditionBuilder
	for i := range manager.RecentWrites {
		c := name(slotAttr(i, 't')).Equal(slot("token"))
		if i == 0 {
			seen = c
		} else {
			seen = seen.Or(c)
		}
	}
	return seen.Not()
}

// recordWrite shifts the register down and records a write in slot 0: the
// token and instant (slots "token" and "now"), the version after the write
// (versionAfter, an operand built by the caller), and the replaced entry's
// created_at and expires_at (and output_uri when recordOutput) copied from
// the item as it was.
func recordWrite(u expression.UpdateBuilder, versionAfter expression.OperandBuilder, recordOutput bool) expression.UpdateBuilder {
	null := value(nil)
	for i := manager.RecentWrites - 1; i > 0; i-- {
		for f := range len(slotFields) {
			u = u.Set(name(slotAttr(i, slotFields[f])), name(slotAttr(i-1, slotFields[f])).IfNotExists(null))
		}
	}
	u = u.Set(name(slotAttr(0, 't')), slot("token")).
		Set(name(slotAttr(0, 'a')), slot("now")).
		Set(name(slotAttr(0, 'v')), versionAfter).
		Set(name(slotAttr(0, 'c')), name(attrCreatedAt).IfNotExists(null)).
		Set(name(slotAttr(0, 'e')), name(attrExpiresAt).IfNotExists(null))
	if recordOutput {
		return u.Set(name(slotAttr(0, 'o')), name(attrOutputURI).IfNotExists(null))
	}
	return u.Set(name(slotAttr(0, 'o')), null)
}

// millis is t in epoch milliseconds.
func millis(t time.Time) int64 { return t.UnixMilli() }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
