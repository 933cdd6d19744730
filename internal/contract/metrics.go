package contract

// The metrics the functions emit in CloudWatch's Embedded Metric Format,
// one dimension set [Operation] whose values are the operations (OpGet,
// OpInspect, …).
const (
	MetricNamespace       = "Stampede"
	MetricDimensionOp     = "Operation"
	MetricHits            = "Hits"
	MetricMisses          = "Misses"
	MetricPutsCreated     = "PutsCreated"
	MetricPutsOverwritten = "PutsOverwritten"
	MetricPutsRefused     = "PutsRefused"
	// MetricFencedPutsRefused counts fenced puts refused because the
	// writer no longer held the reservation.
	MetricFencedPutsRefused     = "FencedPutsRefused"
	MetricReservationsAcquired  = "ReservationsAcquired"
	MetricReservationsContended = "ReservationsContended"
	MetricReservationsTakenOver = "ReservationsTakenOver"
	MetricThrottles             = "Throttles"
	MetricUnavailable           = "Unavailable"
	// MetricErrors counts 5xx answers.
	MetricErrors = "Errors"
	// MetricLatency is in milliseconds; every other metric is a count.
	MetricLatency = "Latency"
)

// Metric is one metric's name and CloudWatch unit.
type Metric struct {
	Name string `json:"name"`
	Unit string `json:"unit"`
}

// Metrics lists every metric the functions emit.
func Metrics() []Metric {
	out := []Metric{}
	for _, name := range []string{
		MetricHits, MetricMisses, MetricPutsCreated, MetricPutsOverwritten, MetricPutsRefused,
		MetricFencedPutsRefused, MetricReservationsAcquired, MetricReservationsContended,
		MetricReservationsTakenOver, MetricThrottles, MetricUnavailable, MetricErrors,
	} {
		out = append(out, Metric{Name: name, Unit: "Count"})
	}
	return append(out, Metric{Name: MetricLatency, Unit: "Milliseconds"})
}
