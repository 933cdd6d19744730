package benchmark

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	tests := []struct {
		name          string
		samples       []time.Duration
		p50, p99, max time.Duration
	}{
		{"empty", nil, 0, 0, 0},
		{"one", ms(7), 7 * time.Millisecond, 7 * time.Millisecond, 7 * time.Millisecond},
		{"unsorted", ms(5, 1, 4, 2, 3), 3 * time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond},
		{"nearest rank", ms(1, 2, 3, 4), 2 * time.Millisecond, 4 * time.Millisecond, 4 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := summarize(tt.samples)
			if got.P50 != tt.p50 || got.P99 != tt.p99 || got.Max != tt.max || got.Count != len(tt.samples) {
				t.Errorf("summarize = %+v, want p50 %s p99 %s max %s", got, tt.p50, tt.p99, tt.max)
			}
		})
	}
}

func TestPeakPerSecond(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(offsets ...time.Duration) []time.Time {
		out := make([]time.Time, len(offsets))
		for i, o := range offsets {
			out[i] = t0.Add(o)
		}
		return out
	}
	tests := []struct {
		name     string
		instants []time.Time
		want     int
	}{
		{"none", nil, 0},
		{"one", at(0), 1},
		{"within a second", at(0, 300*time.Millisecond, 999*time.Millisecond), 3},
		{"a second apart", at(0, time.Second, 2*time.Second), 1},
		{"burst later", at(0, 5*time.Second, 5100*time.Millisecond, 5200*time.Millisecond, 7*time.Second), 3},
		{"unsorted", at(5200*time.Millisecond, 0, 5100*time.Millisecond, 5*time.Second), 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := peakPerSecond(tt.instants); got != tt.want {
				t.Errorf("peakPerSecond = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestCountTimeWait(t *testing.T) {
	const table = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 528 1 000000000c3d3bcc 100 0 0 10 0
   1: 0100007F:B277 0100007F:1F40 06 00000000:00000000 03:00000000 00000000     0        0 0 3 00000000c48270c2
   2: 0100007F:1F40 0100007F:B278 06 00000000:00000000 03:00000000 00000000     0        0 0 3 00000000c48270c3
   3: 0100007F:B279 0100007F:1F40 01 00000000:00000000 00:00000000 00000000     0        0 0 1 00000000c48270c4
   4: 0100007F:B27A 0100007F:1F41 06 00000000:00000000 03:00000000 00000000     0        0 0 3 00000000c48270c5
`
	file := filepath.Join(t.TempDir(), "tcp")
	if err := os.WriteFile(file, []byte(table), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		port, want int
	}{
		{0x1F40, 2}, // one each way; the established one is not counted
		{0x1F41, 1},
		{0x07E8, 0}, // listening
		{9, 0},
	}
	for _, tt := range tests {
		if got := countTimeWait(file, tt.port); got != tt.want {
			t.Errorf("countTimeWait(port %d) = %d, want %d", tt.port, got, tt.want)
		}
	}
}

func TestSumInitTrace(t *testing.T) {
	tests := []struct {
		name, out string
		want      time.Duration
	}{
		{"none", "hello\n", 0},
		{"lines", "init internal/bytealg @0.008 ms, 0 ms clock, 0 bytes, 0 allocs\n" +
			"init runtime @0.050 ms, 0.25 ms clock, 0 bytes, 0 allocs\n" +
			"some other output\n" +
			"init github.com/aws/aws-sdk-go-v2/service/dynamodb @3.1 ms, 1.5 ms clock, 4096 bytes, 12 allocs\n", 1750 * time.Microsecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sumInitTrace(tt.out); got != tt.want {
				t.Errorf("sumInitTrace = %s, want %s", got, tt.want)
			}
		})
	}
}
