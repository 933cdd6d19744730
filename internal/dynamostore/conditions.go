package dynamostore

import (
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
)

func name(n string) expression.NameBuilder { return expression.Name(n) }

func value(v any) expression.ValueBuilder { return expression.Value(v) }

// liveEntry holds when the item has an entry that has not expired at now.
func liveEntry(now int64) expression.ConditionBuilder {
	return expression.AttributeExists(name(attrOutputURI)).And(
		expression.AttributeNotExists(name(attrExpiresAt)).Or(name(attrExpiresAt).GreaterThan(value(now))))
}

// noLiveEntry holds when the item has no entry or an expired one.
func noLiveEntry(now int64) expression.ConditionBuilder {
	return expression.AttributeNotExists(name(attrOutputURI)).Or(name(attrExpiresAt).LessThanEqual(value(now)))
}

// outputUnder holds when the entry's output URI starts with one of the
// prefixes.
func outputUnder(prefixes []string) expression.ConditionBuilder {
	cond := expression.BeginsWith(name(attrOutputURI), prefixes[0])
	for _, p := range prefixes[1:] {
		cond = cond.Or(expression.BeginsWith(name(attrOutputURI), p))
	}
	return cond
}

// heldBy holds while owner holds the key's live reservation at now.
func heldBy(owner string, now int64) expression.ConditionBuilder {
	return name(attrOwnerID).Equal(value(owner)).And(name(attrReservedUntil).GreaterThan(value(now)))
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
