package dynamostore

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/stampede-cache/stampede/internal/manager"
)

// Attribute names. The table's key is (pk, sk); ttl is the TTL attribute,
// used only for garbage collection: expiry is decided in conditions.
const (
	attrPK            = "pk"
	attrSK            = "sk"
	attrTTL           = "ttl"
	attrProject       = "project"
	attrDomain        = "domain"
	attrKey           = "key"
	attrOutputURI     = "output_uri"
	attrMetadata      = "metadata"
	attrCreatedAt     = "created_at"
	attrLastUpdatedAt = "last_updated_at"
	attrVersion       = "version"
	attrExpiresAt     = "expires_at"
	attrOwnerID       = "owner_id"
	attrHeartbeatMS   = "heartbeat_ms"
	attrFence         = "fence"
	// attrHolder is a one-key map {holderKey(owner_id): 0}. Reserve adds
	// if_not_exists(holder.<key>, 1) to the fence: 0 when the caller
	// already holds the key (an extension keeps its fence), 1 otherwise.
	attrHolder = "holder"

	sortKeyEntry       = "entry"
	sortKeyReservation = "reservation"
)

// partitionKey encodes an ID injectively: project and domain cannot contain
// '/', so the first two separators are unambiguous and the key may contain
// anything. At most 63+1+63+1+1024 bytes, within DynamoDB's 2048-byte limit.
func partitionKey(id manager.ID) string {
	return id.Project + "/" + id.Domain + "/" + id.Key
}

// holderKey turns an owner id (any text) into a map key that is safe in a
// document path: 128 bits of its SHA-256, in hex.
func holderKey(ownerID string) string {
	sum := sha256.Sum256([]byte(ownerID))
	return "o" + hex.EncodeToString(sum[:16])
}

// entryItem is the stored form of a cache entry. Times are epoch
// milliseconds so conditions can compare them; ttl is epoch seconds.
type entryItem struct {
	PK            string       `dynamodbav:"pk"`
	SK            string       `dynamodbav:"sk"`
	Project       string       `dynamodbav:"project"`
	Domain        string       `dynamodbav:"domain"`
	Key           string       `dynamodbav:"key"`
	OutputURI     string       `dynamodbav:"output_uri"`
	Metadata      metadataItem `dynamodbav:"metadata"`
	CreatedAt     int64        `dynamodbav:"created_at"`
	LastUpdatedAt int64        `dynamodbav:"last_updated_at"`
	Version       int64        `dynamodbav:"version"`
	ExpiresAt     *int64       `dynamodbav:"expires_at,omitempty"`
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

func (it *entryItem) entry() *manager.Entry {
	e := &manager.Entry{
		ID:            manager.ID{Project: it.Project, Domain: it.Domain, Key: it.Key},
		OutputURI:     it.OutputURI,
		Metadata:      manager.Metadata{Labels: it.Metadata.Labels},
		CreatedAt:     fromMillis(it.CreatedAt),
		LastUpdatedAt: fromMillis(it.LastUpdatedAt),
		Version:       it.Version,
	}
	if s := it.Metadata.Source; s != nil {
		e.Metadata.Source = &manager.Source{Project: s.Project, Domain: s.Domain, Name: s.Name, Version: s.Version}
	}
	if it.ExpiresAt != nil {
		t := fromMillis(*it.ExpiresAt)
		e.ExpiresAt = &t
	}
	return e
}

func metadataToItem(md manager.Metadata) metadataItem {
	out := metadataItem{Labels: md.Labels}
	if s := md.Source; s != nil {
		out.Source = &sourceItem{Project: s.Project, Domain: s.Domain, Name: s.Name, Version: s.Version}
	}
	return out
}

// reservationItem is the stored form of a reservation. A released record
// keeps only its fence (and key attributes) until TTL collects it.
type reservationItem struct {
	Project     string `dynamodbav:"project"`
	Domain      string `dynamodbav:"domain"`
	Key         string `dynamodbav:"key"`
	OwnerID     string `dynamodbav:"owner_id"`
	HeartbeatMS int64  `dynamodbav:"heartbeat_ms"`
	ExpiresAt   int64  `dynamodbav:"expires_at"`
	Fence       int64  `dynamodbav:"fence"`
}

func (it *reservationItem) reservation() manager.Reservation {
	return manager.Reservation{
		ID:                manager.ID{Project: it.Project, Domain: it.Domain, Key: it.Key},
		OwnerID:           it.OwnerID,
		HeartbeatInterval: time.Duration(it.HeartbeatMS) * time.Millisecond,
		ExpiresAt:         fromMillis(it.ExpiresAt),
		Fence:             it.Fence,
	}
}

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// ttlSeconds rounds up, so TTL never collects an item before its expiry.
func ttlSeconds(t time.Time) int64 {
	return (t.UnixMilli() + 999) / 1000
}
