package benchmark

import (
	"math"
	"slices"
	"time"
)

// Latencies summarises a set of request durations.
type Latencies struct {
	Count int           `json:"count"`
	P50   time.Duration `json:"p50_ns"`
	P80   time.Duration `json:"p80_ns"`
	P99   time.Duration `json:"p99_ns"`
	Max   time.Duration `json:"max_ns"`
}

// summarize sorts samples in place and reads its percentiles (nearest
// rank, so every figure is a latency that was observed).
func summarize(samples []time.Duration) Latencies {
	if len(samples) == 0 {
		return Latencies{}
	}
	slices.Sort(samples)
	return Latencies{
		Count: len(samples),
		P50:   percentile(samples, 50),
		P80:   percentile(samples, 80),
		P99:   percentile(samples, 99),
		Max:   samples[len(samples)-1],
	}
}

// percentile is the nearest-rank percentile of sorted samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// median of a slice of durations (copied, not reordered).
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ratio is a/b, or 0 when b is zero.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// peakPerSecond is the largest number of instants falling within any one
// second (a window starting at one of them).
func peakPerSecond(instants []time.Time) int {
	s := slices.Clone(instants)
	slices.SortFunc(s, func(a, b time.Time) int { return a.Compare(b) })
	peak, j := 0, 0
	for i := range s {
		for s[i].Sub(s[j]) >= time.Second {
			j++
		}
		peak = max(peak, i-j+1)
	}
	return peak
}
