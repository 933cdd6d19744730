package benchmark

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stampede-cache/stampede/internal/benchmark/rawdynamo"
)

// HotKeyOptions size section 5: issue 10's hot key.
type HotKeyOptions struct {
	// Readers lists the numbers of concurrent readers of the key.
	Readers []int
	// Duration is how long the readers read in each cell.
	Duration time.Duration
	// WriteEvery is the interval of the writer's overwrites of the key.
	WriteEvery time.Duration
	// Rounds splits each cell's reading time into this many rounds, with
	// lone reads before each, so that a drift in the machine's speed falls
	// on the cell and its baseline alike.
	Rounds int
	// LoneReads is the number of lone strong reads per cell sent on each
	// baseline path (the raw GetItem, a GET through the server), spread
	// over its rounds.
	LoneReads int
	// Warmup is the length of an untimed cell at the largest number of
	// readers before the first (0: none).
	Warmup time.Duration
}

// HotKeyResult is section 5.
type HotKeyResult struct {
	Duration   time.Duration `json:"duration_ns"`
	WriteEvery time.Duration `json:"write_every_ns"`
	Rounds     int           `json:"rounds"`
	// LoneRaw is a lone strongly consistent GetItem, the very request the
	// server sends for the get, sent by the raw DynamoDB client; LoneServer
	// a lone strong GET through the server (one reader, no writer). Their
	// requests alternate one by one, before each round of each cell; here
	// all cells' together.
	LoneRaw    Latencies    `json:"lone_raw"`
	LoneServer Latencies    `json:"lone_server"`
	Cells      []HotKeyCell `json:"cells"`
}

// HotKeyCell is one number of readers.
type HotKeyCell struct {
	Readers int `json:"readers"`
	// Reads counts the strong reads answered with the entry; Errors every
	// other answer (a status other than 200, a read not strong, no ETag)
	// or failed request.
	Reads      int    `json:"reads"`
	Errors     int    `json:"errors"`
	FirstError string `json:"first_error,omitempty"`
	// GetItems counts the server's GetItem requests (attempts) while the
	// readers read; GetItemPerRead is GetItems over Reads.
	GetItems       int64   `json:"get_items"`
	GetItemPerRead float64 `json:"get_item_per_read"`
	// Stale counts the reads that returned a version older than the newest
	// write whose acknowledgement the writer had received before the read
	// was sent.
	Stale       int     `json:"stale"`
	Writes      int     `json:"writes"`
	WriteErrors int     `json:"write_errors"`
	ReadsPerSec float64 `json:"reads_per_sec"`
	// CPUBusy is this process's CPU time (readers, writer and server;
	// DynamoDB Local is another process) while the readers read, as a
	// fraction of every core's time: near 1/cores per busy core.
	CPUBusy float64 `json:"cpu_busy"`
	// CPUPerRead is that CPU time per read.
	CPUPerRead time.Duration `json:"cpu_per_read_ns"`
	// Latencies are every read's, from sending to the whole answer.
	Latencies Latencies `json:"latencies"`
	// InProcess is the same readers calling the server's router in process
	// (no HTTP, no sockets), the writer unchanged: the coalesced read's own
	// latency, without the load generator's HTTP clients competing with it
	// for the CPUs. InProcessStale counts its stale reads.
	InProcess      Latencies `json:"in_process"`
	InProcessStale int       `json:"in_process_stale"`
	// LoneRaw and LoneServer are the lone reads sent between this cell's
	// rounds (see HotKeyResult).
	LoneRaw    Latencies `json:"lone_raw"`
	LoneServer Latencies `json:"lone_server"`
}

// hotKeyRead is one read of a cell.
type hotKeyRead struct {
	sent    time.Time
	took    time.Duration
	version int64
	err     string // "" for a strong read answered with the entry
}

// hotKeyAck is one write acknowledged to the writer.
type hotKeyAck struct {
	at      time.Time
	version int64
}

// runHotKey measures section 5.
func (b *bench) runHotKey(ctx context.Context, o HotKeyOptions) (res HotKeyResult, err error) {
	res = HotKeyResult{Duration: o.Duration, WriteEvery: o.WriteEvery, Rounds: max(o.Rounds, 1)}
	if len(o.Readers) == 0 {
		return res, nil
	}
	var raw, server []time.Duration
	// The baseline of the cells measured, even when one fails.
	defer func() { res.LoneRaw, res.LoneServer = summarize(raw), summarize(server) }()
	most := slices.Max(o.Readers)
	hc := b.loadClient(most + 4)
	defer hc.CloseIdleConnections()
	if o.Warmup > 0 {
		b.logf("hot key: warming up, %d readers for %s", most, o.Warmup)
		warm := o
		warm.Rounds, warm.LoneReads = 1, o.LoneReads/res.Rounds
		if _, _, _, err := b.hotKeyCell(ctx, hc, most, o.Warmup, warm); err != nil {
			return res, fmt.Errorf("warm-up: %w", err)
		}
	}
	for _, readers := range o.Readers {
		b.logf("hot key: %d reader(s) for %s in %d rounds, a write every %s", readers, o.Duration, res.Rounds, o.WriteEvery)
		c, lr, ls, err := b.hotKeyCell(ctx, hc, readers, o.Duration, o)
		if err != nil {
			return res, fmt.Errorf("%d readers: %w", readers, err)
		}
		b.logf("hot key: %d reader(s): %d reads, %.3f GetItem per read, %d stale, p50/p99 %s/%s (lone raw GetItem %s/%s), this process busy %.0f%% of the CPUs",
			readers, c.Reads, c.GetItemPerRead, c.Stale, ms(c.Latencies.P50), ms(c.Latencies.P99), ms(c.LoneRaw.P50), ms(c.LoneRaw.P99), 100*c.CPUBusy)
		res.Cells = append(res.Cells, c)
		raw, server = append(raw, lr...), append(server, ls...)
	}
	return res, nil
}

// hotKeyCell measures one number of readers on a fresh key for d, in
// rounds: before each, lone reads on each baseline path (the writer
// paused), so that the baseline spans the same time as the cell. It also
// returns the lone reads' latencies.
func (b *bench) hotKeyCell(ctx context.Context, hc *http.Client, readers int, d time.Duration, o HotKeyOptions) (cell HotKeyCell, raw, server []time.Duration, err error) {
	cell = HotKeyCell{Readers: readers}
	b.run++
	key := fmt.Sprintf("hotkey-%d-%d", readers, b.run)
	w := hotKeyWriter{hc: hc, url: b.svc.URL + cachePath(key), body: putBody(outputURI(key), true)}
	first, err := w.put(ctx)
	if err != nil {
		return cell, nil, nil, fmt.Errorf("first put: %w", err)
	}
	acks := []hotKeyAck{first}
	get := reqSpec{http.MethodGet, cachePath(key), nil}
	rawReq, err := b.svc.captureRequest(get.request(ctx, ""))
	if err != nil {
		return cell, nil, nil, err
	}
	if rawReq.Operation != "GetItem" {
		return cell, nil, nil, fmt.Errorf("a strong get sends %s, want GetItem", rawReq.Operation)
	}

	rounds := max(o.Rounds, 1)
	lone := 0
	if o.LoneReads > 0 {
		lone = max(o.LoneReads/rounds, 1)
	}
	var (
		all, inProcess []hotKeyRead
		wall, cpu      time.Duration
	)
	for range rounds {
		if err := b.loneReads(ctx, hc, w.url, rawReq, lone, &raw, &server); err != nil {
			return cell, raw, server, err
		}
		seg, err := b.hotKeySegment(ctx, hc, w, readers, d/time.Duration(rounds), o.WriteEvery, func(ctx context.Context) hotKeyRead {
			return strongGet(ctx, hc, w.url)
		})
		if err != nil {
			return cell, raw, server, err
		}
		in, err := b.hotKeySegment(ctx, hc, w, readers, d/time.Duration(rounds), o.WriteEvery, func(ctx context.Context) hotKeyRead {
			return routerGet(ctx, b.svc.Router, w.url)
		})
		if err != nil {
			return cell, raw, server, err
		}
		inProcess = append(inProcess, in.reads...)
		acks = append(acks, in.acks...)
		all = append(all, seg.reads...)
		acks = append(acks, seg.acks...)
		cell.Writes += len(seg.acks)
		cell.WriteErrors += seg.writeErrors
		cell.GetItems += seg.getItems
		wall += seg.wall
		cpu += seg.cpu
	}

	lat := make([]time.Duration, 0, len(all))
	for _, r := range all {
		lat = append(lat, r.took)
		if r.err == "" {
			cell.Reads++
			continue
		}
		cell.Errors++
		if cell.FirstError == "" {
			cell.FirstError = r.err
		}
	}
	cell.Latencies = summarize(lat)
	cell.Stale = countStale(acks, all)
	inLat := make([]time.Duration, 0, len(inProcess))
	for _, r := range inProcess {
		inLat = append(inLat, r.took)
		if r.err != "" {
			cell.Errors++
			if cell.FirstError == "" {
				cell.FirstError = "in process: " + r.err
			}
		}
	}
	cell.InProcess = summarize(inLat)
	cell.InProcessStale = countStale(acks, inProcess)
	cell.GetItemPerRead = ratio(float64(cell.GetItems), float64(cell.Reads))
	cell.ReadsPerSec = ratio(float64(cell.Reads), wall.Seconds())
	cell.CPUBusy = ratio(cpu.Seconds(), wall.Seconds()*float64(runtime.NumCPU()))
	if len(all) > 0 {
		cell.CPUPerRead = cpu / time.Duration(len(all))
	}
	cell.LoneRaw, cell.LoneServer = summarize(slices.Clone(raw)), summarize(slices.Clone(server))
	return cell, raw, server, nil
}

// hotKeySegment is one round of a cell.
type hotKeySegment struct {
	reads       []hotKeyRead
	acks        []hotKeyAck
	writeErrors int
	getItems    int64
	wall        time.Duration
	cpu         time.Duration
}

// hotKeySegment runs the readers for d, back to back, while the writer
// overwrites the key every writeEvery, and counts the server's GetItem
// requests meanwhile.
func (b *bench) hotKeySegment(ctx context.Context, hc *http.Client, w hotKeyWriter, readers int, d, writeEvery time.Duration, get func(context.Context) hotKeyRead) (hotKeySegment, error) {
	var seg hotKeySegment
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var writer sync.WaitGroup
	writer.Add(1)
	go func() {
		defer writer.Done()
		t := time.NewTicker(writeEvery)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
			}
			a, err := w.put(runCtx)
			switch {
			case err == nil:
				seg.acks = append(seg.acks, a)
			case runCtx.Err() == nil:
				seg.writeErrors++
			}
		}
	}()

	reads := make([][]hotKeyRead, readers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			deadline := time.Now().Add(d)
			for time.Now().Before(deadline) && runCtx.Err() == nil {
				reads[r] = append(reads[r], get(runCtx))
			}
		}()
	}
	before := b.svc.serverDB.Snapshot()
	cpu0 := cpuTime()
	t0 := time.Now()
	close(start)
	wg.Wait()
	seg.wall = time.Since(t0)
	seg.cpu = cpuTime() - cpu0
	seg.getItems = b.svc.serverDB.Snapshot().Sub(before).GetItem
	cancel()
	writer.Wait()
	for _, rs := range reads {
		seg.reads = append(seg.reads, rs...)
	}
	return seg, ctx.Err()
}

// loneReads sends n lone strong reads of the key on each baseline path,
// the raw GetItem req and a GET of url through the server, alternating
// request by request, and adds their latencies.
func (b *bench) loneReads(ctx context.Context, hc *http.Client, url string, req rawdynamo.Request, n int, raw, server *[]time.Duration) error {
	for range n {
		t0 := time.Now()
		if err := rawdynamo.Send(ctx, b.svc.raw, req); err != nil {
			return fmt.Errorf("raw GetItem: %w", err)
		}
		*raw = append(*raw, time.Since(t0))
		r := strongGet(ctx, hc, url)
		if r.err != "" {
			return fmt.Errorf("lone GET: %s", r.err)
		}
		*server = append(*server, r.took)
	}
	return nil
}

// strongGet sends one strong GET and reads its answer's version.
func strongGet(ctx context.Context, hc *http.Client, url string) hotKeyRead {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, http.NoBody)
	r := hotKeyRead{sent: time.Now()}
	resp, err := hc.Do(req)
	if err != nil {
		r.took = time.Since(r.sent)
		r.err = err.Error()
		return r
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	r.took = time.Since(r.sent)
	r.check(resp.StatusCode, resp.Header)
	return r
}

// routerGet is strongGet through the server's router in process.
func routerGet(ctx context.Context, router http.Handler, url string) hotKeyRead {
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, url, http.NoBody)
	rec := httptest.NewRecorder()
	r := hotKeyRead{sent: time.Now()}
	router.ServeHTTP(rec, req)
	r.took = time.Since(r.sent)
	r.check(rec.Code, rec.Header())
	return r
}

// check reads the answer's version, or records why it is not a strong hit.
func (r *hotKeyRead) check(status int, header http.Header) {
	version, ok := parseETag(header.Get("ETag"))
	switch {
	case status != http.StatusOK:
		r.err = fmt.Sprintf("status %d", status)
	case header.Get("Stampede-Read") != "strong":
		r.err = fmt.Sprintf("a %q read, want strong", header.Get("Stampede-Read"))
	case !ok:
		r.err = fmt.Sprintf("ETag %q names no version", header.Get("ETag"))
	default:
		r.version = version
	}
}

// hotKeyWriter overwrites one key through the server.
type hotKeyWriter struct {
	hc   *http.Client
	url  string
	body []byte
}

// put overwrites the key and returns the version acknowledged, stamped
// with the instant its answer arrived.
func (w hotKeyWriter) put(ctx context.Context) (hotKeyAck, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, w.url, strings.NewReader(string(w.body)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.hc.Do(req)
	if err != nil {
		return hotKeyAck{}, err
	}
	at := time.Now()
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return hotKeyAck{}, fmt.Errorf("put: status %d", resp.StatusCode)
	}
	version, ok := parseETag(resp.Header.Get("ETag"))
	if !ok {
		return hotKeyAck{}, fmt.Errorf("put: ETag %q names no version", resp.Header.Get("ETag"))
	}
	return hotKeyAck{at: at, version: version}, nil
}

// parseETag reads the version in a strong entity tag, "<version>".
func parseETag(tag string) (int64, bool) {
	if len(tag) < 3 || tag[0] != '"' || tag[len(tag)-1] != '"' {
		return 0, false
	}
	v, err := strconv.ParseInt(tag[1:len(tag)-1], 10, 64)
	if err != nil || v < 1 {
		return 0, false
	}
	return v, true
}

// countStale counts the successful reads that returned a version older
// than the newest one acknowledged before the read was sent.
func countStale(acks []hotKeyAck, reads []hotKeyRead) int {
	acks = slices.Clone(acks)
	slices.SortFunc(acks, func(a, b hotKeyAck) int { return a.at.Compare(b.at) })
	// newest[i] is the newest version among acks[:i+1].
	newest := make([]int64, len(acks))
	for i, a := range acks {
		newest[i] = a.version
		if i > 0 {
			newest[i] = max(newest[i], newest[i-1])
		}
	}
	stale := 0
	for _, r := range reads {
		if r.err != "" {
			continue
		}
		// The acks strictly before the read was sent.
		n, _ := slices.BinarySearchFunc(acks, r.sent, func(a hotKeyAck, t time.Time) int {
			if a.at.Before(t) {
				return -1
			}
			return 1
		})
		if n > 0 && r.version < newest[n-1] {
			stale++
		}
	}
	return stale
}
