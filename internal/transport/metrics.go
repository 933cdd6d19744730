package transport

import (
	"log/slog"
	"net/http"
	"time"
)

// MetricsNamespace is the CloudWatch namespace of the functions' metrics;
// the stack's dashboard and alarms read the same names.
const MetricsNamespace = "Stampede"

// metricNames maps an outcome to the counters it bumps.
func metricNames(outcome string, status int) []string {
	var names []string
	switch outcome {
	case "hit":
		names = append(names, "Hits")
	case "miss":
		names = append(names, "Misses")
	case "created":
		names = append(names, "PutsCreated")
	case "overwritten":
		names = append(names, "PutsOverwritten")
	case "conflict", "precondition_failed":
		names = append(names, "PutsRefused")
	case "fence_refused":
		names = append(names, "PutsRefused", "FencedPutsRefused")
	case "acquired":
		names = append(names, "ReservationsAcquired")
	case "taken_over":
		names = append(names, "ReservationsAcquired", "ReservationsTakenOver")
	case "contended":
		names = append(names, "ReservationsContended")
	case "throttled":
		names = append(names, "Throttles")
	case "unavailable":
		names = append(names, "Unavailable")
	}
	if status >= http.StatusInternalServerError {
		names = append(names, "Errors")
	}
	return names
}

// metricAttrs are the Embedded Metric Format fields of one request: the
// _aws metadata naming the metrics, the Operation dimension, a 1 for each
// counter the outcome bumps and the latency.
func metricAttrs(op Op, outcome string, status int, elapsed time.Duration) []slog.Attr {
	counters := metricNames(outcome, status)
	defs := make([]map[string]string, 0, len(counters)+1)
	attrs := make([]slog.Attr, 0, len(counters)+3)
	for _, n := range counters {
		defs = append(defs, map[string]string{"Name": n, "Unit": "Count"})
		attrs = append(attrs, slog.Int(n, 1))
	}
	defs = append(defs, map[string]string{"Name": "Latency", "Unit": "Milliseconds"})
	attrs = append(attrs,
		slog.Float64("Latency", float64(elapsed.Microseconds())/1000),
		slog.String("Operation", string(op)),
		slog.Any("_aws", map[string]any{
			"Timestamp": time.Now().UnixMilli(),
			"CloudWatchMetrics": []map[string]any{{
				"Namespace":  MetricsNamespace,
				"Dimensions": [][]string{{"Operation"}},
				"Metrics":    defs,
			}},
		}),
	)
	return attrs
}
