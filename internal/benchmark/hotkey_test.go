package benchmark

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stampede-cache/stampede/internal/dynamolocal"
)

// TestHotKeySmoke runs the hot-key section for real at tiny sizes. It
// checks the invariants that hold however slow the machine is, never a
// timing: reads were answered, none was stale, and coalescing never costs
// more than one GetItem per read.
func TestHotKeySmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts DynamoDB Local: skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := Run(ctx, Options{
		HotKey:           &HotKeyOptions{Readers: []int{1, 4}, Duration: time.Second, WriteEvery: 200 * time.Millisecond, Rounds: 2, LoneReads: 4},
		Logf:             t.Logf,
		DynamoDBEndpoint: os.Getenv(dynamolocal.EndpointEnv),
	})
	if err != nil {
		t.Fatal(err)
	}
	hk := rep.HotKey
	if hk == nil || len(hk.Cells) != 2 {
		t.Fatalf("want a cell for 1 and 4 readers, got %+v", hk)
	}
	if hk.LoneRaw.Count != 8 || hk.LoneServer.Count != 8 {
		t.Errorf("want 2 lone reads per path before each of 2 rounds of 2 cells, got raw %d and server %d", hk.LoneRaw.Count, hk.LoneServer.Count)
	}
	for i, c := range hk.Cells {
		if c.Readers != []int{1, 4}[i] || c.LoneRaw.Count != 4 || c.LoneServer.Count != 4 {
			t.Errorf("cell %d: %d readers, %d and %d lone reads", i, c.Readers, c.LoneRaw.Count, c.LoneServer.Count)
		}
		if c.Reads == 0 || c.GetItems == 0 || c.Latencies.Count != c.Reads+c.Errors {
			t.Errorf("%d readers: nothing measured: %+v", c.Readers, c)
		}
		if c.Stale != 0 {
			t.Errorf("%d readers: %d stale reads", c.Readers, c.Stale)
		}
		if c.GetItemPerRead > 1 {
			t.Errorf("%d readers: %.3f GetItem per read, want at most 1", c.Readers, c.GetItemPerRead)
		}
	}
	checkWritten(t, rep, "## 5.", "GetItem per read and latency vs readers")
}

func TestCountStale(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	acks := []hotKeyAck{{at(0), 10}, {at(200), 11}, {at(400), 12}}
	tests := []struct {
		name  string
		reads []hotKeyRead
		want  int
	}{
		{"none", nil, 0},
		{"current", []hotKeyRead{{sent: at(100), version: 10}, {sent: at(300), version: 11}, {sent: at(500), version: 12}}, 0},
		{"newer than acknowledged", []hotKeyRead{{sent: at(100), version: 11}, {sent: at(150), version: 12}}, 0},
		{"older than acknowledged", []hotKeyRead{{sent: at(300), version: 10}, {sent: at(500), version: 11}}, 2},
		// A read sent at the very instant of an ack may have been sent
		// before it: only acks strictly earlier count.
		{"sent at the ack", []hotKeyRead{{sent: at(200), version: 10}}, 0},
		{"before any ack", []hotKeyRead{{sent: at(-5), version: 1}}, 0},
		{"failed reads are not stale", []hotKeyRead{{sent: at(500), err: "status 503"}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := countStale(acks, tt.reads); got != tt.want {
				t.Errorf("countStale = %d, want %d", got, tt.want)
			}
		})
	}
	// The acks' order does not matter, nor does an older version
	// acknowledged later (the newest acknowledged one is the floor).
	shuffled := []hotKeyAck{{at(400), 12}, {at(0), 10}, {at(450), 11}, {at(200), 11}}
	if got := countStale(shuffled, []hotKeyRead{{sent: at(500), version: 11}}); got != 1 {
		t.Errorf("countStale with shuffled acks = %d, want 1", got)
	}
}

func TestParseETag(t *testing.T) {
	tests := []struct {
		tag  string
		want int64
		ok   bool
	}{
		{`"1763773200124"`, 1763773200124, true},
		{`"7"`, 7, true},
		{``, 0, false},
		{`""`, 0, false},
		{`7`, 0, false},
		{`W/"7"`, 0, false},
		{`"x"`, 0, false},
		{`"0"`, 0, false},
		{`"-3"`, 0, false},
	}
	for _, tt := range tests {
		got, ok := parseETag(tt.tag)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseETag(%q) = %d, %v; want %d, %v", tt.tag, got, ok, tt.want, tt.ok)
		}
	}
}

// syntheticHotKey is a hot-key result with chosen figures.
func syntheticHotKey(perRead64 float64, stale64 int, p99At64 time.Duration) *HotKeyResult {
	cell := func(readers, reads int, perRead float64, p99 time.Duration) HotKeyCell {
		return HotKeyCell{Readers: readers, Reads: reads, GetItems: int64(perRead * float64(reads)), GetItemPerRead: perRead,
			Writes: 25, ReadsPerSec: float64(reads) / 5, Latencies: Latencies{Count: reads, P50: p99 / 2, P80: p99 * 2 / 3, P99: p99, Max: p99 * 2}}
	}
	c64 := cell(64, 20000, perRead64, p99At64)
	c64.Stale = stale64
	// The 64-reader cell's own baseline; the others fall back on the
	// pooled one (as from a results file without per-cell baselines).
	c64.LoneRaw = Latencies{Count: 300, P50: time.Millisecond, P99: 4 * time.Millisecond}
	c64.LoneServer = Latencies{Count: 300, P50: 2 * time.Millisecond, P99: 6 * time.Millisecond}
	return &HotKeyResult{
		Duration: 5 * time.Second, WriteEvery: 200 * time.Millisecond, Rounds: 5,
		LoneRaw:    Latencies{Count: 1200, P50: time.Millisecond, P99: 10 * time.Millisecond},
		LoneServer: Latencies{Count: 1200, P50: 2 * time.Millisecond, P99: 12 * time.Millisecond},
		Cells: []HotKeyCell{
			cell(1, 2000, 1, 5*time.Millisecond),
			cell(4, 6000, 0.4, 6*time.Millisecond),
			cell(16, 12000, 0.12, 7*time.Millisecond),
			c64,
		},
	}
}

// TestHotKeyReport renders synthetic figures: the section's tables, its
// rows against the goals with the right verdicts, the "before" columns
// only when the earlier run measured the section, and the chart.
func TestHotKeyReport(t *testing.T) {
	goalRows := func(doc string) []string {
		var rows []string
		for _, line := range strings.Split(doc, "\n") {
			if strings.HasPrefix(line, "| hot key, 64 readers") {
				rows = append(rows, line)
			}
		}
		return rows
	}
	tests := []struct {
		name     string
		hk       *HotKeyResult
		verdicts []string // stale, per read, p99
	}{
		{"all met", syntheticHotKey(0.04, 0, 8*time.Millisecond), []string{"— met |", "— met |", "(2.00×) — met |"}},
		{"none met", syntheticHotKey(0.5, 3, 9*time.Millisecond), []string{"— not met |", "0.500 — not met |", "(2.25×) — not met |"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var doc bytes.Buffer
			if err := WriteMarkdown(&doc, &Report{HotKey: tt.hk}, nil, "performance"); err != nil {
				t.Fatal(err)
			}
			s := doc.String()
			for _, want := range []string{"## 5. Hot key: coalesced strong reads", "### GetItem per read and latency vs readers",
				"| 64 | 20000 |", "| 10.0 ms | **0.70×** | 0.58× | 0% | – |", "api.md#hot-keys-coalesced-strong-reads", "1.000 GetItem per read", "(performance/hotkey.png)"} {
				if !strings.Contains(s, want) {
					t.Errorf("the document lacks %q:\n%s", want, s)
				}
			}
			rows := goalRows(s)
			if len(rows) != 3 {
				t.Fatalf("want 3 goal rows for 64 readers, got %q", rows)
			}
			for i, v := range tt.verdicts {
				if !strings.HasSuffix(rows[i], v) {
					t.Errorf("goal row %q: want it to end %q", rows[i], v)
				}
			}
		})
	}

	hk := syntheticHotKey(0.04, 0, 8*time.Millisecond)
	old := &Report{Rates: []RateResult{{Target: 250, Achieved: 250}}} // an earlier run without the section
	var doc bytes.Buffer
	if err := WriteMarkdown(&doc, &Report{HotKey: hk}, old, ""); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(doc.String(), "before: GetItem per read") {
		t.Errorf("an earlier run without the section gave \"before\" columns:\n%s", doc.String())
	}
	doc.Reset()
	if err := WriteMarkdown(&doc, &Report{HotKey: hk}, &Report{HotKey: syntheticHotKey(1, 0, 5*time.Millisecond)}, ""); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(doc.String(), "before: GetItem per read") || !strings.Contains(doc.String(), "| 4.00 ms | **2.00×** | 1.33× | 0% | – | 1.000 | 5.00 ms |") {
		t.Errorf("want the earlier run's figures in \"before\" columns:\n%s", doc.String())
	}

	dir := t.TempDir()
	for _, r := range []*Report{{HotKey: hk}, {HotKey: &HotKeyResult{Cells: hk.Cells[:1], LoneRaw: hk.LoneRaw}}} {
		files, err := WriteCharts(dir, r, &Report{HotKey: syntheticHotKey(1, 0, 5*time.Millisecond)})
		if err != nil {
			t.Fatal(err)
		}
		if len(files) != 1 || filepath.Base(files[0]) != ChartHotKey {
			t.Fatalf("charts written: %v", files)
		}
		if st, err := os.Stat(files[0]); err != nil || st.Size() == 0 {
			t.Errorf("chart %s: %v", files[0], err)
		}
	}
}
