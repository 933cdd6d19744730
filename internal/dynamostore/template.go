package dynamostore

import (
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Expressions are compiled once per shape, not built per request. A shape
// is everything that changes the expression's text (which clauses a put
// has, how many managed buckets, …); the values change per request. The
// SDK's expression builder writes each shape's strings and names once, with
// named slots where the values go; a request only binds its values to the
// placeholders the builder chose. This halves the store's allocations and
// keeps the expressions readable where they are built.

// slotMark starts the sentinel string that stands for a slot while a shape
// is compiled; it cannot occur in a real value (a control character).
const slotMark = "\x00slot:"

// slot stands for the request value named n.
func slot(n string) expression.ValueBuilder { return expression.Value(slotMark + n) }

// nameSlot stands for the request's attribute name n (a document path
// segment known per request, the holder's key).
func nameSlot(n string) expression.NameBuilder { return expression.NameNoDotSplit(slotMark + n) }

// template is a compiled shape.
type template struct {
	update, condition, projection *string
	names                         map[string]string
	// constants are the values fixed in the shape; slots maps each value
	// placeholder to its slot; nameSlots each name placeholder to its slot.
	constants map[string]types.AttributeValue
	slots     map[string]string
	nameSlots map[string]string
	// tokenSlot is the placeholder of the write's token, if it has one.
	tokenSlot string
}

// compile builds b once and records where its slots went.
func compile(b expression.Builder) (*template, error) {
	expr, err := b.Build()
	if err != nil {
		return nil, err
	}
	t := &template{
		update:     expr.Update(),
		condition:  expr.Condition(),
		projection: expr.Projection(),
		names:      expr.Names(),
		constants:  map[string]types.AttributeValue{},
		slots:      map[string]string{},
		nameSlots:  map[string]string{},
	}
	for ph, v := range expr.Values() {
		if s, ok := v.(*types.AttributeValueMemberS); ok && strings.HasPrefix(s.Value, slotMark) {
			t.slots[ph] = strings.TrimPrefix(s.Value, slotMark)
			if t.slots[ph] == "token" {
				t.tokenSlot = ph
			}
			continue
		}
		t.constants[ph] = v
	}
	for ph, n := range t.names {
		if strings.HasPrefix(n, slotMark) {
			t.nameSlots[ph] = strings.TrimPrefix(n, slotMark)
		}
	}
	return t, nil
}

// bound is a template with one request's values.
type bound struct {
	*template
	names  map[string]string
	values map[string]types.AttributeValue
}

// token is the write's token, "" for none.
func (b bound) token() string {
	if v, ok := b.values[b.tokenSlot].(*types.AttributeValueMemberS); ok && b.tokenSlot != "" {
		return v.Value
	}
	return ""
}

// guarded is b for a retry after an attempt that may have landed: it
// applies only while the item's register has room, that is while a landed
// first attempt could not have been pushed out of it (so a token not found
// means the first attempt did not land).
func (b bound) guarded() bound {
	g := b
	cond := "(" + *b.condition + ") AND NOT attribute_type(#guardSlot, :guardType)"
	g.template = &template{update: b.update, condition: &cond, projection: b.projection, tokenSlot: b.tokenSlot}
	g.names = make(map[string]string, len(b.names)+1)
	for k, v := range b.names {
		g.names[k] = v
	}
	g.names["#guardSlot"] = slotAttr(3, 't')
	g.values = make(map[string]types.AttributeValue, len(b.values)+1)
	for k, v := range b.values {
		g.values[k] = v
	}
	g.values[":guardType"] = str("S")
	return g
}

// bind fills the template's slots from vals (and names from names): every
// slot must be given.
func (t *template) bind(vals map[string]types.AttributeValue, names map[string]string) (bound, error) {
	b := bound{template: t, names: t.names}
	if len(t.nameSlots) > 0 {
		b.names = make(map[string]string, len(t.names))
		for ph, n := range t.names {
			b.names[ph] = n
		}
		for ph, s := range t.nameSlots {
			n, ok := names[s]
			if !ok {
				return bound{}, fmt.Errorf("expression: no name for slot %q", s)
			}
			b.names[ph] = n
		}
	}
	if len(t.constants)+len(t.slots) > 0 {
		b.values = make(map[string]types.AttributeValue, len(t.constants)+len(t.slots))
		for ph, v := range t.constants {
			b.values[ph] = v
		}
		for ph, s := range t.slots {
			v, ok := vals[s]
			if !ok {
				return bound{}, fmt.Errorf("expression: no value for slot %q", s)
			}
			b.values[ph] = v
		}
	}
	return b, nil
}

// templates caches compiled shapes. K is a comparable description of the
// shape; build makes its expression.
type templates[K comparable] struct {
	cache sync.Map // K → *template
	build func(K) expression.Builder
}

func (c *templates[K]) get(k K) (*template, error) {
	if t, ok := c.cache.Load(k); ok {
		return t.(*template), nil
	}
	t, err := compile(c.build(k))
	if err != nil {
		return nil, fmt.Errorf("compile expression %+v: %w", k, err)
	}
	actual, _ := c.cache.LoadOrStore(k, t)
	return actual.(*template), nil
}

// Value constructors for binding, without reflection.

func num(n int64) types.AttributeValue { return &types.AttributeValueMemberN{Value: itoa(n)} }

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }
