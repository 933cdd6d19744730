package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stampede-cache/stampede/internal/benchmark"
)

func TestOptions(t *testing.T) {
	def := benchmark.Defaults("/repo")
	base := flags{
		clients: "1,16", ops: 10, ops16: 20, rounds: 2, herdSizes: "10,50", herdComp: "500ms,5s",
		rates: "250,500", rateDur: time.Second, rateWarmup: time.Second, inFlight: 8, lambdaRuns: 3,
		hotReaders: "1,64", hotDur: time.Second, hotWrite: 200 * time.Millisecond, hotLone: 5, hotRounds: 1,
	}
	tests := []struct {
		name     string
		edit     func(*flags)
		wantErr  bool
		sections []string
	}{
		{"all", func(f *flags) { f.sections = "server,herd,rate,hotkey,lambda" }, false, []string{"server", "herd", "rate", "hotkey", "lambda"}},
		{"hot key", func(f *flags) { f.sections = "hotkey" }, false, []string{"hotkey"}},
		{"one", func(f *flags) { f.sections = "herd" }, false, []string{"herd"}},
		{"spaces", func(f *flags) { f.sections = " rate , lambda" }, false, []string{"rate", "lambda"}},
		{"unknown section", func(f *flags) { f.sections = "server,disk" }, true, nil},
		{"bad clients", func(f *flags) { f.sections, f.clients = "server", "1,x" }, true, nil},
		{"zero herd size", func(f *flags) { f.sections, f.herdSizes = "herd", "0" }, true, nil},
		{"bad computation", func(f *flags) { f.sections, f.herdComp = "herd", "5" }, true, nil},
		{"bad rate", func(f *flags) { f.sections, f.rates = "rate", "-1" }, true, nil},
		{"bad readers", func(f *flags) { f.sections, f.hotReaders = "hotkey", "1,0" }, true, nil},
		{"no hot-key duration", func(f *flags) { f.sections, f.hotDur = "hotkey", 0 }, true, nil},
		{"no lone reads", func(f *flags) { f.sections, f.hotLone = "hotkey", 0 }, true, nil},
		{"fewer lone reads than rounds", func(f *flags) { f.sections, f.hotLone, f.hotRounds = "hotkey", 2, 3 }, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := base
			tt.edit(&f)
			opts, err := options(f, def)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			got := map[string]bool{"server": opts.ServerPath != nil, "herd": opts.Herd != nil, "rate": opts.Rate != nil, "hotkey": opts.HotKey != nil, "lambda": opts.Lambda != nil}
			for name, on := range got {
				if on != slices.Contains(tt.sections, name) {
					t.Errorf("section %s selected = %v", name, on)
				}
			}
		})
	}
}

func TestOptionsCarryTheSizes(t *testing.T) {
	f := flags{
		sections: "server,herd,rate,hotkey,lambda", clients: "1,4", ops: 10, ops16: 20, rounds: 3, operations: "get hit, put new",
		herdSizes: "3", herdComp: "100ms", herdLong: 2 * time.Second, herdLongN: 7, longPoll: true,
		rates: "50", rateDur: 2 * time.Second, rateWarmup: 500 * time.Millisecond, inFlight: 8, lambdaRuns: 2, functions: "./functions/get",
		hotReaders: "2,8", hotDur: 3 * time.Second, hotWrite: 100 * time.Millisecond, hotLone: 7, hotRounds: 3, hotWarmup: time.Second,
	}
	opts, err := options(f, benchmark.Defaults("/repo"))
	if err != nil {
		t.Fatal(err)
	}
	sp := opts.ServerPath
	if !slices.Equal(sp.Concurrency, []int{1, 4}) || sp.OpsSerial != 10 || sp.OpsParallel != 20 || sp.Rounds != 3 ||
		!slices.Equal(sp.Operations, []string{"get hit", "put new"}) {
		t.Errorf("server path: %+v", sp)
	}
	h := opts.Herd
	if !slices.Equal(h.Sizes, []int{3}) || !slices.Equal(h.Computations, []time.Duration{100 * time.Millisecond}) ||
		len(h.Extra) != 1 || h.Extra[0] != (benchmark.HerdCell{N: 7, Compute: 2 * time.Second}) || !h.LongPolling {
		t.Errorf("herd: %+v", h)
	}
	r := opts.Rate
	if !slices.Equal(r.Rates, []int{50}) || r.Duration != 2*time.Second || r.Warmup != 500*time.Millisecond || r.MaxInFlight != 8 {
		t.Errorf("rate: %+v", r)
	}
	hk := opts.HotKey
	if !slices.Equal(hk.Readers, []int{2, 8}) || hk.Duration != 3*time.Second || hk.WriteEvery != 100*time.Millisecond || hk.LoneReads != 7 || hk.Rounds != 3 || hk.Warmup != time.Second {
		t.Errorf("hot key: %+v", hk)
	}
	l := opts.Lambda
	if l.Runs != 2 || !slices.Equal(l.Functions, []string{"./functions/get"}) || l.RepoDir != "/repo" {
		t.Errorf("lambda: %+v", l)
	}
}

func TestHelp(t *testing.T) {
	if code := run(t.Context(), []string{"-help"}, io.Discard, io.Discard); code != 0 {
		t.Errorf("-help exits %d, want 0", code)
	}
	if code := run(t.Context(), []string{"-sections", "nope"}, io.Discard, io.Discard); code != 2 {
		t.Errorf("an unknown section exits %d, want 2", code)
	}
}

// TestRender writes the document and charts from a results file, measuring
// nothing.
func TestRender(t *testing.T) {
	dir := t.TempDir()
	results := filepath.Join(dir, "results.json")
	rep := benchmark.Report{Herds: []benchmark.HerdResult{{N: 10, Compute: time.Second, Last: 2 * time.Second, HandOff: time.Second, Computations: 1}}}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(results, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "performance.md")
	charts := filepath.Join(dir, "performance")
	args := []string{"-render", results, "-out", out, "-charts", charts, "-before", ""}
	if code := run(t.Context(), args, io.Discard, io.Discard); code != 0 {
		t.Fatalf("-render exits %d", code)
	}
	doc, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "## 2. Herd hand-off") || !strings.Contains(string(doc), "(performance/herd.png)") {
		t.Errorf("the document lacks the herd section or its chart:\n%s", doc)
	}
	if _, err := os.Stat(filepath.Join(charts, benchmark.ChartHerd)); err != nil {
		t.Error(err)
	}
}

// TestRenderOldResults renders the committed results, written before the
// hot-key section existed, beside the committed "before" run: an old
// results file must still render, without the section.
func TestRenderOldResults(t *testing.T) {
	docs := filepath.Join("..", "..", "docs", "performance")
	results, before := filepath.Join(docs, "results.json"), filepath.Join(docs, "before.json")
	for _, f := range []string{results, before} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("no %s: %v", f, err)
		}
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "performance.md")
	args := []string{"-render", results, "-before", before, "-out", out, "-charts", filepath.Join(dir, "performance")}
	if code := run(t.Context(), args, io.Discard, io.Discard); code != 0 {
		t.Fatalf("-render of the committed results exits %d", code)
	}
	doc, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := readReport(results)
	if err != nil {
		t.Fatal(err)
	}
	if hasSection := strings.Contains(string(doc), "## 5. Hot key"); hasSection != (rep.HotKey != nil) {
		t.Errorf("hot-key section rendered = %v, results have it = %v", hasSection, rep.HotKey != nil)
	}
}
