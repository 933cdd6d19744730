package dynamostore

import (
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
)

func name(n string) expression.NameBuilder { return expression.Name(n) }

func value(v any) expression.ValueBuilder { return expression.Value(v) }

// liveEntry holds when the item has an entry that has not expired at the
// request's instant (slot "now").
func liveEntry() expression.ConditionBuilder {
	return expression.AttributeExists(name(attrOutputURI)).And(
		expression.AttributeNotExists(name(attrExpiresAt)).Or(name(attrExpiresAt).GreaterThan(slot("now"))))
}

// noLiveEntry holds when the item has no entry or an expired one.
func noLiveEntry() expression.ConditionBuilder {
	return expression.AttributeNotExists(name(attrOutputURI)).Or(name(attrExpiresAt).LessThanEqual(slot("now")))
}

// outputUnder holds when the entry's output URI starts with one of n
// prefixes (slots "prefix0"…).
func outputUnder(n int) expression.ConditionBuilder {
	cond := expression.BeginsWith(name(attrOutputURI), slotMark+prefixSlot(0))
	for i := 1; i < n; i++ {
		cond = cond.Or(expression.BeginsWith(name(attrOutputURI), slotMark+prefixSlot(i)))
	}
	return cond
}

// prefixSlot names the slot of the ith output prefix.
func prefixSlot(i int) string { return "prefix" + itoa(int64(i)) }

// heldBy holds while the owner (slot "owner") holds the key's live
// reservation.
func heldBy() expression.ConditionBuilder {
	return name(attrOwnerID).Equal(slot("owner")).And(name(attrReservedUntil).GreaterThan(slot("now")))
}

// allOf joins optional conditions; ok is false when there are none.
func allOf(conds ...*expression.ConditionBuilder) (expression.ConditionBuilder, bool) {
	var out expression.ConditionBuilder
	ok := false
	for _, c := range conds {
		switch {
		case c == nil:
		case !ok:
			out, ok = *c, true
		default:
			out = out.And(*c)
		}
	}
	return out, ok
}

func ptr[T any](v T) *T { return &v }
