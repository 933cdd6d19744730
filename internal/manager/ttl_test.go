package manager_test

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/stampede-cache/stampede/internal/dynamostore"
	"github.com/stampede-cache/stampede/internal/manager"
)

// itemKey is the key of id's item (dynamostore's encoding).
func itemKey(id manager.ID) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		dynamostore.PartitionKey: &types.AttributeValueMemberS{Value: id.Project + "/" + id.Domain + "/" + id.Key},
		dynamostore.SortKey:      &types.AttributeValueMemberS{Value: "cache"},
	}
}

// rawItem reads id's item as stored, as JSON.
func (f *rawFixture) rawItem(t *testing.T, id manager.ID) []byte {
	t.Helper()
	var item map[string]any
	f.readItem(t, id, &item)
	out, err := json.Marshal(item)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (f *rawFixture) readItem(t *testing.T, id manager.ID, into any) bool {
	t.Helper()
	out, err := f.db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: &f.table, Key: itemKey(id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if err := attributevalue.UnmarshalMap(out.Item, into); err != nil {
		t.Fatal(err)
	}
	return len(out.Item) > 0
}

// deleteItem removes id's item as DynamoDB's TTL sweeper would.
func (f *rawFixture) deleteItem(t *testing.T, id manager.ID) {
	t.Helper()
	if _, err := f.db.DeleteItem(context.Background(), &dynamodb.DeleteItemInput{TableName: &f.table, Key: itemKey(id)}); err != nil {
		t.Fatal(err)
	}
}

// gcState is what TTL must protect in an item.
type gcState struct {
	TTL           *int64  `dynamodbav:"ttl"`
	OutputURI     *string `dynamodbav:"output_uri"`
	ExpiresAt     *int64  `dynamodbav:"expires_at"`
	OwnerID       *string `dynamodbav:"owner_id"`
	ReservedUntil int64   `dynamodbav:"reserved_until"`
}

// never is the TTL of an item that must never be collected (9999-12-31).
const never = 253402300799

// checkTTL holds the item to the rule: its TTL is at or after
// max(entry expiry or never, reservation expiry) + the retention.
func (f *rawFixture) checkTTL(t *testing.T, id manager.ID, after string) {
	t.Helper()
	var s gcState
	if !f.readItem(t, id, &s) {
		return
	}
	if s.TTL == nil {
		t.Fatalf("after %s: no ttl", after)
	}
	var need int64
	if s.OutputURI != nil {
		if s.ExpiresAt == nil {
			need = never
		} else {
			need = time.UnixMilli(*s.ExpiresAt).Add(manager.ReservationRetention).Unix()
		}
	}
	if s.OwnerID != nil {
		need = max(need, time.UnixMilli(s.ReservedUntil).Add(manager.ReservationRetention).Unix())
	}
	if *s.TTL < need {
		t.Fatalf("after %s: ttl %s, but the item must live until %s (%+v)", after,
			time.Unix(*s.TTL, 0).UTC(), time.Unix(need, 0).UTC(), s)
	}
}

func TestTTLNeverDropsALiveEntry(t *testing.T) {
	ctx := context.Background()
	f := newRawFixture(t, manager.Config{})
	k := id("k")
	// Flyte's order: put (30 days), then reserve and release separately.
	if _, err := f.mgr.Put(ctx, k, manager.PutRequest{OutputURI: "s3://bucket/a", TTLSeconds: ptr[int64](30 * 24 * 3600)}); err != nil {
		t.Fatal(err)
	}
	f.checkTTL(t, k, "put")
	if _, err := f.mgr.Reserve(ctx, k, manager.ReserveRequest{OwnerID: "w"}); err != nil {
		t.Fatal(err)
	}
	f.checkTTL(t, k, "reserve")
	if _, err := f.mgr.Release(ctx, k, manager.ReleaseRequest{OwnerID: "w"}); err != nil {
		t.Fatal(err)
	}
	f.checkTTL(t, k, "release")

	// A reservation taken long after a short entry expired outlives it: the
	// one case that needs a second request, to hand the TTL over.
	if _, err := f.mgr.Put(ctx, id("short"), manager.PutRequest{OutputURI: "s3://bucket/s", TTLSeconds: ptr[int64](1)}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(3 * 24 * time.Hour)
	f.counter.Reset()
	if res, err := f.mgr.Reserve(ctx, id("short"), manager.ReserveRequest{OwnerID: "w"}); err != nil || !res.Acquired {
		t.Fatalf("reserve: %+v %v", res, err)
	}
	if n := f.counter.Total(); n != 2 {
		t.Fatalf("hand-over took %d requests, want 2", n)
	}
	f.checkTTL(t, id("short"), "late reserve")
	f.clock.Advance(5 * time.Second)
	f.counter.Reset()
	if _, err := f.mgr.Reserve(ctx, id("short"), manager.ReserveRequest{OwnerID: "w"}); err != nil {
		t.Fatal(err)
	}
	if n := f.counter.Total(); n != 1 {
		t.Fatalf("heartbeat after the hand-over took %d requests, want 1", n)
	}
	f.checkTTL(t, id("short"), "heartbeat")
}

// TestTTLRuleHoldsForAnySequence runs random sequences of every write with
// random pauses and checks the item's TTL after each step.
func TestTTLRuleHoldsForAnySequence(t *testing.T) {
	ctx := context.Background()
	f := newRawFixture(t, manager.Config{})
	rng := rand.New(rand.NewPCG(8, 8))
	pauses := []time.Duration{0, time.Second, 20 * time.Second, time.Hour, 25 * time.Hour, 3 * 24 * time.Hour}
	ttls := []*int64{nil, ptr[int64](1), ptr[int64](60), ptr[int64](24 * 3600), ptr[int64](30 * 24 * 3600)}
	owners := []string{"a", "b"}
	for step := range 300 {
		k := id("k" + strconv.Itoa(rng.IntN(3)))
		f.clock.Advance(pauses[rng.IntN(len(pauses))])
		var op string
		var err error
		switch rng.IntN(6) {
		case 0, 1:
			op = "put"
			_, err = f.mgr.Put(ctx, k, manager.PutRequest{OutputURI: "s3://bucket/x", Overwrite: rng.IntN(2) == 0, TTLSeconds: ttls[rng.IntN(len(ttls))]})
		case 2:
			op = "fenced put-and-release"
			_, err = f.mgr.Put(ctx, k, manager.PutRequest{OutputURI: "s3://bucket/y", Overwrite: true, OwnerID: owners[rng.IntN(2)], Release: true, TTLSeconds: ttls[rng.IntN(len(ttls))]})
		case 3:
			op = "delete"
			_, err = f.mgr.Delete(ctx, k, manager.DeleteRequest{})
		case 4:
			op = "reserve"
			_, err = f.mgr.Reserve(ctx, k, manager.ReserveRequest{OwnerID: owners[rng.IntN(2)], HeartbeatSeconds: ptr[int64](int64(1 + rng.IntN(10)))})
		case 5:
			op = "release"
			_, err = f.mgr.Release(ctx, k, manager.ReleaseRequest{OwnerID: owners[rng.IntN(2)]})
		}
		switch manager.ErrorCode(err) {
		case "", manager.CodeAlreadyExists, manager.CodeFailedPrecondition:
		default:
			t.Fatalf("step %d %s: %v", step, op, err)
		}
		f.checkTTL(t, k, "step "+strconv.Itoa(step)+" "+op)
	}
}
