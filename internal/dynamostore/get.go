package dynamostore

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/stampede-cache/stampede/internal/manager"
)

// GetEntry reads the entry's attributes with one GetItem.
func (s *Store) GetEntry(ctx context.Context, id manager.ID, consistent bool) (*manager.Entry, error) {
	rec, err := s.getItem(ctx, id, consistent, append(entryAttrs(), attrVersion))
	if err != nil || rec == nil {
		return nil, err
	}
	return rec.entry(), nil
}

// GetReservation reads the reservation's attributes with one strongly
// consistent GetItem.
func (s *Store) GetReservation(ctx context.Context, id manager.ID) (*manager.Reservation, error) {
	rec, err := s.getItem(ctx, id, true, append(reservationAttrs(), attrFence))
	if err != nil || rec == nil {
		return nil, err
	}
	return rec.reservation(), nil
}

// getItem reads the named attributes (and the key's names) of the item.
func (s *Store) getItem(ctx context.Context, id manager.ID, consistent bool, attrs []string) (*record, error) {
	proj := expression.NamesList(name(attrOrg), name(attrProject), name(attrDomain), name(attrKey))
	for _, a := range attrs {
		proj = proj.AddNames(name(a))
	}
	expr, err := expression.NewBuilder().WithProjection(proj).Build()
	if err != nil {
		return nil, fmt.Errorf("build get expression: %w", err)
	}
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:                &s.table,
		Key:                      s.itemKey(id),
		ConsistentRead:           aws.Bool(consistent),
		ProjectionExpression:     expr.Projection(),
		ExpressionAttributeNames: expr.Names(),
	})
	if err != nil {
		return nil, classify("GetItem", err)
	}
	return decode(out.Item)
}
