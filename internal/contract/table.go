package contract

// The table's schema: the store writes these attributes and the stack
// declares them. Partition and sort key are strings; the TTL attribute
// holds seconds since the epoch.
const (
	PartitionKey = "pk"
	SortKey      = "sk"
	TTLAttribute = "ttl"
)
