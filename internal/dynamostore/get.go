package dynamostore

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/stampede-cache/stampede/internal/manager"
)

// projection names what a read takes.
type projection int

const (
	projectEntry projection = iota
	projectReservation
)

// buildProjection is the projection of a read: the key's names and the
// entry's or the reservation's attributes.
func buildProjection(p projection) expression.Builder {
	attrs := append(entryAttrs(), attrVersion)
	if p == projectReservation {
		attrs = append(reservationAttrs(), attrFence)
	}
	proj := expression.NamesList(name(attrOrg), name(attrProject), name(attrDomain), name(attrKey))
	for _, a := range attrs {
		proj = proj.AddNames(name(a))
	}
	return expression.NewBuilder().WithProjection(proj)
}

// GetEntry reads the entry's attributes with one GetItem.
func (s *Store) GetEntry(ctx context.Context, id manager.ID, consistent bool) (*manager.Entry, error) {
	rec, err := s.getItem(ctx, id, consistent, projectEntry)
	if err != nil || rec == nil {
		return nil, err
	}
	return rec.entry(), nil
}

// GetReservation reads the reservation's attributes with one strongly
// consistent GetItem.
func (s *Store) GetReservation(ctx context.Context, id manager.ID) (*manager.Reservation, error) {
	rec, err := s.getItem(ctx, id, true, projectReservation)
	if err != nil || rec == nil {
		return nil, err
	}
	return rec.reservation(), nil
}

// getItem reads the projected attributes of the item.
func (s *Store) getItem(ctx context.Context, id manager.ID, consistent bool, p projection) (*record, error) {
	t, err := s.reads.get(p)
	if err != nil {
		return nil, err
	}
	in := &dynamodb.GetItemInput{
		TableName:                &s.table,
		Key:                      s.itemKey(id),
		ConsistentRead:           aws.Bool(consistent),
		ProjectionExpression:     t.projection,
		ExpressionAttributeNames: t.names,
	}
	var out *dynamodb.GetItemOutput
	err = s.attempts(ctx, "GetItem", func(ctx context.Context) error {
		var e error
		out, e = s.db.GetItem(ctx, in, oneAttempt)
		return e
	}, func(bool) {})
	if err != nil {
		return nil, err
	}
	return decode(out.Item)
}
