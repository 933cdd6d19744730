package dynamostore

import (
	"crypto/sha256"

	"encoding/hex"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"time"

	"github.com/stampede-cache/stampede/internal/manager"
)

// One item per (project, domain, key) holds both the cache entry and the
// reservation, so that a fenced put (check the reservation, write the entry,
// release) is a single conditional UpdateItem that also returns the merged
// entry, where two items would need a TransactWriteItems that returns
// nothing and costs twice the write capacity.
//
// The table's key is (pk, sk); ttl is the TTL attribute, used only for
// garbage collection: expiry is always decided in conditions.
const (
	attrPK      = "pk"
	attrSK      = "sk"
	attrTTL     = "ttl"
	attrOrg     = "org"
	attrProject = "project"
	attrDomain  = "domain"
	attrKey     = "key"

	// The entry's attributes. An item holds an entry iff output_uri exists.
	// version is not the entry's alone: it counts every write of the key and
	// survives deletes, so an ETag never names two states.
	attrOutputURI     = "output_uri"
	attrMetadata      = "metadata"
	attrCreatedAt     = "created_at"
	attrLastUpdatedAt = "last_updated_at"
	attrVersion       = "version"
	attrExpiresAt     = "expires_at"
	// attrPin holds the ttl an entry needs: never (neverTTL) for an entry
	// without expiry, else late enough to cover the entry and any
	// reservation taken while it lived. Reservation writes set
	// ttl = if_not_exists(pin, their own) on condition that pin covers their
	// own, so they never shorten an entry's life (see reserve.go).
	attrPin = "pin"

	// The reservation's attributes. A key is reserved iff owner_id exists and
	// reserved_until is in the future. fence survives releases.
	attrOwnerID       = "owner_id"
	attrHeartbeatMS   = "heartbeat_ms"
	attrReservedUntil = "reserved_until"
	attrFence         = "fence"
	// attrHolder is a one-key map {holderKey(owner_id): 0}. Reserve adds
	// if_not_exists(holder.<key>, 1) to the fence: 0 when the caller already
	// holds the key (an extension keeps its fence), 1 otherwise.
	attrHolder = "holder"

	sortKeyItem = "cache"

	// neverTTL is a ttl far in the future (9999-12-31): never collected.
	neverTTL = 253402300799
)

// entryAttrs are the attributes a delete removes (version stays).
func entryAttrs() []string {
	return []string{attrOutputURI, attrMetadata, attrCreatedAt, attrLastUpdatedAt, attrExpiresAt}
}

// reservationAttrs are the attributes a release removes (fence stays).
func reservationAttrs() []string {
	return []string{attrOwnerID, attrHeartbeatMS, attrReservedUntil, attrHolder}
}

// partitionKey encodes an ID injectively: org, project and domain cannot
// contain '/', so the separators before the key are unambiguous and the key
// may contain anything; an org is marked by a leading '@', which no project
// name can start with, so "@o/p/d/k" never meets "p/d/k". At most
// 1+63+1+63+1+63+1+1024 bytes, within DynamoDB's 2048-byte limit.
func partitionKey(id manager.ID) string {
	pk := id.Project + "/" + id.Domain + "/" + id.Key
	if id.Org != "" {
		pk = "@" + id.Org + "/" + pk
	}
	return pk
}

// holderKey turns an owner id (any text) into a map key that is safe in a
// document path: 128 bits of its SHA-256, in hex.
func holderKey(ownerID string) string {
	sum := sha256.Sum256([]byte(ownerID))
	return "o" + hex.EncodeToString(sum[:16])
}

// record is an item as stored. Times are epoch milliseconds so conditions
// can compare them with the manager's clock.
type record struct {
	Org     string `dynamodbav:"org,omitempty"`
	Project string `dynamodbav:"project"`
	Domain  string `dynamodbav:"domain"`
	Key     string `dynamodbav:"key"`

	OutputURI     *string      `dynamodbav:"output_uri"`
	Metadata      metadataItem `dynamodbav:"metadata"`
	CreatedAt     int64        `dynamodbav:"created_at"`
	LastUpdatedAt int64        `dynamodbav:"last_updated_at"`
	Version       *int64       `dynamodbav:"version"`
	ExpiresAt     *int64       `dynamodbav:"expires_at"`
	Pin           *int64       `dynamodbav:"pin"`

	OwnerID       *string        `dynamodbav:"owner_id"`
	HeartbeatMS   int64          `dynamodbav:"heartbeat_ms"`
	ReservedUntil int64          `dynamodbav:"reserved_until"`
	Fence         *int64         `dynamodbav:"fence"`
	Holder        map[string]int `dynamodbav:"holder"`

	recentWrites
}

type metadataItem struct {
	Source *sourceItem       `dynamodbav:"source,omitempty"`
	Labels map[string]string `dynamodbav:"labels,omitempty"`
}

type sourceItem struct {
	Project string `dynamodbav:"project,omitempty"`
	Domain  string `dynamodbav:"domain,omitempty"`
	Name    string `dynamodbav:"name,omitempty"`
	Version string `dynamodbav:"version,omitempty"`
}

func (r *record) id() manager.ID {
	return manager.ID{Org: r.Org, Project: r.Project, Domain: r.Domain, Key: r.Key}
}

// entry returns the item's entry, or nil when it holds none.
func (r *record) entry() *manager.Entry {
	if r.OutputURI == nil {
		return nil
	}
	e := &manager.Entry{
		ID:            r.id(),
		OutputURI:     *r.OutputURI,
		Metadata:      manager.Metadata{Labels: r.Metadata.Labels},
		CreatedAt:     fromMillis(r.CreatedAt),
		LastUpdatedAt: fromMillis(r.LastUpdatedAt),
		Version:       r.version(),
	}
	if s := r.Metadata.Source; s != nil {
		e.Metadata.Source = &manager.Source{Project: s.Project, Domain: s.Domain, Name: s.Name, Version: s.Version}
	}
	if r.ExpiresAt != nil {
		t := fromMillis(*r.ExpiresAt)
		e.ExpiresAt = &t
	}
	return e
}

// version returns the key's version counter, 0 when it has none.
func (r *record) version() int64 {
	if r.Version == nil {
		return 0
	}
	return *r.Version
}

// fence returns the key's fence counter, 0 when it has none.
func (r *record) fence() int64 {
	if r.Fence == nil {
		return 0
	}
	return *r.Fence
}

// holds reports whether ownerID is the item's holder (live or expired).
func (r *record) holds(ownerID string) bool {
	_, ok := r.Holder[holderKey(ownerID)]
	return ok && r.OwnerID != nil && *r.OwnerID == ownerID
}

// reservation returns the item's reservation (live or expired), or nil.
func (r *record) reservation() *manager.Reservation {
	if r.OwnerID == nil {
		return nil
	}
	return &manager.Reservation{
		ID:                r.id(),
		OwnerID:           *r.OwnerID,
		HeartbeatInterval: time.Duration(r.HeartbeatMS) * time.Millisecond,
		ExpiresAt:         fromMillis(r.ReservedUntil),
		Fence:             r.fence(),
	}
}

// metadataValue is md as stored, built without reflection.
func metadataValue(md manager.Metadata) types.AttributeValue {
	m := make(map[string]types.AttributeValue, 2)
	if s := md.Source; s != nil {
		src := make(map[string]types.AttributeValue, 4)
		for k, v := range map[string]string{"project": s.Project, "domain": s.Domain, "name": s.Name, "version": s.Version} {
			if v != "" {
				src[k] = str(v)
			}
		}
		m["source"] = &types.AttributeValueMemberM{Value: src}
	}
	if len(md.Labels) > 0 {
		labels := make(map[string]types.AttributeValue, len(md.Labels))
		for k, v := range md.Labels {
			labels[k] = str(v)
		}
		m["labels"] = &types.AttributeValueMemberM{Value: labels}
	}
	return &types.AttributeValueMemberM{Value: m}
}

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// ttlSeconds rounds up, so TTL never collects an item before t.
func ttlSeconds(t time.Time) int64 {
	return (t.UnixMilli() + 999) / 1000
}
