package benchmark

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Chart size.
const (
	chartWidth  = 7 * vg.Inch
	chartHeight = 4.2 * vg.Inch
)

// WriteCharts draws the report's charts into dir as PNG files; before,
// when not nil, is drawn dashed beside the new figures. It returns the
// files written.
func WriteCharts(dir string, r, before *Report) ([]string, error) {
	var files []string
	draw := func(name string, p *plot.Plot, err error) error {
		if err != nil || p == nil {
			return err
		}
		path := filepath.Join(dir, name)
		height := chartHeight
		if name == ChartHerd {
			height = chartHeight * 5 / 4
		}
		if err := p.Save(chartWidth, height, path); err != nil {
			return fmt.Errorf("save %s: %w", path, err)
		}
		files = append(files, path)
		return nil
	}
	if r.ServerPath != nil {
		p, err := serverChart(r.ServerPath)
		if err := draw(ChartServer, p, err); err != nil {
			return files, err
		}
	}
	if len(r.Herds) > 0 {
		p, err := herdChart(r, before)
		if err := draw(ChartHerd, p, err); err != nil {
			return files, err
		}
	}
	if len(r.Rates) > 0 {
		p, err := rateChart(r, before)
		if err := draw(ChartRate, p, err); err != nil {
			return files, err
		}
	}
	if r.HotKey != nil && len(r.HotKey.Cells) > 0 {
		perRead, latency, err := hotKeyCharts(r.HotKey, before)
		if err != nil {
			return files, err
		}
		path := filepath.Join(dir, ChartHotKey)
		if err := saveSideBySide(path, chartWidth, chartHeight, perRead, latency); err != nil {
			return files, err
		}
		files = append(files, path)
	}
	return files, nil
}

// saveSideBySide draws the plots in a row, their axes aligned, into one
// image file (its format from the name's extension).
func saveSideBySide(path string, w, h vg.Length, plots ...*plot.Plot) (err error) {
	c, err := draw.NewFormattedCanvas(w, h, strings.TrimPrefix(filepath.Ext(path), "."))
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	dc := draw.New(c)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	tiles := draw.Tiles{Rows: 1, Cols: len(plots), PadX: vg.Points(18), PadTop: vg.Points(4), PadBottom: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(8)}
	canvases := plot.Align([][]*plot.Plot{plots}, tiles, dc)
	for i, p := range plots {
		p.Draw(canvases[0][i])
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	if _, err := c.WriteTo(f); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	return nil
}

// hotKeyCharts draws section 5: GetItem requests per read, and read
// latency against the lone strong GetItem, by number of readers.
func hotKeyCharts(hk *HotKeyResult, before *Report) (perRead, latency *plot.Plot, err error) {
	var prior *HotKeyResult
	if before != nil && before.HotKey != nil && len(before.HotKey.Cells) > 0 {
		prior = before.HotKey
	}
	var ticks []plot.Tick
	lo, hi := math.Inf(1), 0.0
	for _, c := range hk.Cells {
		ticks = append(ticks, plot.Tick{Value: float64(c.Readers), Label: fmt.Sprint(c.Readers)})
		lo, hi = min(lo, float64(c.Readers)), max(hi, float64(c.Readers))
	}
	axes := func(title, yLabel string) *plot.Plot {
		p := plot.New()
		p.Title.Text = title
		p.Title.Padding = vg.Points(6)
		p.X.Label.Text = "readers of one key"
		p.Y.Label.Text = yLabel
		p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
		p.X.Tick.Marker = plot.ConstantTicks(ticks)
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		p.Legend.Top = true
		// A margin either side (and a range, with one cell).
		p.X.Min, p.X.Max = lo/1.5, hi*1.5
		p.Legend.TextStyle.Font.Size = vg.Points(8)
		p.Add(plotter.NewGrid())
		return p
	}
	level := func(v float64) plotter.XYs {
		return plotter.XYs{{X: lo, Y: positive(v)}, {X: hi, Y: positive(v)}}
	}

	perRead = axes("GetItem requests per read", "GetItem per read")
	if err := addLine(perRead, "measured", hotKeyXYs(hk, func(c HotKeyCell) float64 { return c.GetItemPerRead }), 0, false); err != nil {
		return nil, nil, err
	}
	if prior != nil {
		if err := addLine(perRead, "before", hotKeyXYs(prior, func(c HotKeyCell) float64 { return c.GetItemPerRead }), 0, true); err != nil {
			return nil, nil, err
		}
	}
	if err := addLevel(perRead, "goal at 64 readers: 0.25", level(0.25), 3); err != nil {
		return nil, nil, err
	}
	decades(&perRead.Y)

	latency = axes("Read latency", "latency (ms)")
	latency.Legend.Left = true
	p50 := func(c HotKeyCell) float64 { return millis(c.Latencies.P50) }
	p99 := func(c HotKeyCell) float64 { return millis(c.Latencies.P99) }
	for i, s := range []struct {
		name string
		get  func(HotKeyCell) float64
	}{{"p50", p50}, {"p99", p99}} {
		if err := addLine(latency, s.name, hotKeyXYs(hk, s.get), i+1, false); err != nil {
			return nil, nil, err
		}
		if prior != nil {
			if err := addLine(latency, "before, "+s.name, hotKeyXYs(prior, s.get), i+1, true); err != nil {
				return nil, nil, err
			}
		}
	}
	lone := func(c HotKeyCell) float64 { return millis(c.baseline(hk).raw.P99) }
	if err := addLevel(latency, "lone raw GetItem p99", hotKeyXYs(hk, lone), 4); err != nil {
		return nil, nil, err
	}
	twice := func(c HotKeyCell) float64 { return 2 * lone(c) }
	if err := addLevel(latency, "goal: 2 × lone GetItem p99", hotKeyXYs(hk, twice), 3); err != nil {
		return nil, nil, err
	}
	decades(&latency.Y)
	// Room above the lines for the legend.
	latency.Y.Tick.Marker = ticksUpTo(latency.Y.Max)
	latency.Y.Max *= 4
	return perRead, latency, nil
}

// addLevel adds a dashed reference line without points.
func addLevel(p *plot.Plot, name string, xys plotter.XYs, i int) error {
	line, err := plotter.NewLine(xys)
	if err != nil {
		return err
	}
	line.Color = plotutil.Color(i)
	line.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
	p.Add(line)
	p.Legend.Add(name, line)
	return nil
}

func hotKeyXYs(hk *HotKeyResult, get func(HotKeyCell) float64) plotter.XYs {
	var xys plotter.XYs
	for _, c := range hk.Cells {
		if c.Reads > 0 {
			xys = append(xys, plotter.XY{X: float64(c.Readers), Y: positive(get(c))})
		}
	}
	return xys
}

// positive keeps values drawable on a log scale.
func positive(v float64) float64 { return max(v, 1e-3) }

func serverChart(sp *ServerPathResult) (*plot.Plot, error) {
	var names []string
	var raw, handler, server plotter.Values
	top := 0.0
	for _, o := range sp.Ops {
		if o.Concurrency != 1 {
			continue
		}
		names = append(names, o.Op)
		raw = append(raw, millis(o.Raw.P50))
		handler = append(handler, millis(o.Handler.P50))
		server = append(server, millis(o.Server.P50))
		top = max(top, millis(o.Raw.P50), millis(o.Handler.P50), millis(o.Server.P50))
	}
	if len(names) == 0 {
		return nil, nil
	}
	p := plot.New()
	p.Title.Text = "p50 latency per operation, one client"
	p.Title.Padding = vg.Points(6)
	p.Y.Label.Text = "p50 (ms)"
	w := vg.Points(14)
	series := []struct {
		name string
		v    plotter.Values
	}{{"raw DynamoDB request", raw}, {"router in process", handler}, {"server over HTTP", server}}
	for i, s := range series {
		bars, err := plotter.NewBarChart(s.v, w)
		if err != nil {
			return nil, err
		}
		bars.LineStyle.Width = 0
		bars.Color = plotutil.Color(i)
		bars.Offset = vg.Length(i-1) * w
		p.Add(bars)
		p.Legend.Add(s.name, bars)
	}
	// Headroom for the legend above the bars, and for the outer bars of
	// the first and last groups.
	p.Y.Min, p.Y.Max = 0, top*1.35
	p.X.Min, p.X.Max = p.X.Min-0.5, p.X.Max+0.5
	p.Legend.Top = true
	p.NominalX(names...)
	p.X.Tick.Label.Rotation = 0.35
	p.X.Tick.Label.XAlign = draw.XRight
	p.Add(plotter.NewGrid())
	return p, nil
}

func herdChart(r, before *Report) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Herd hand-off: end of the computation to the last caller's result"
	p.Title.Padding = vg.Points(6)
	p.X.Label.Text = "callers on one key (N)"
	p.Y.Label.Text = "hand-off (s)"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker = plot.ConstantTicks(herdTicks(r.Herds))
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	i := 0
	for _, long := range []bool{false, true} {
		for _, d := range computations(r.Herds) {
			xys := herdXYs(r.Herds, d, long)
			if len(xys) == 0 {
				continue
			}
			if err := addLine(p, fmt.Sprintf("%s, computation %s", clientMode(long), secs(d)), xys, i, false); err != nil {
				return nil, err
			}
			if before != nil {
				if bx := herdXYs(before.Herds, d, long); len(bx) > 0 {
					if err := addLine(p, fmt.Sprintf("before: %s, computation %s", clientMode(long), secs(d)), bx, i, true); err != nil {
						return nil, err
					}
				}
			}
			i++
		}
	}
	decades(&p.Y)
	// Room above the lines for the legend, which lists every series,
	// without ticks where there is no data.
	p.Y.Tick.Marker = ticksUpTo(p.Y.Max)
	p.Y.Max *= 1000
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.XOffs = vg.Points(8)
	p.Legend.TextStyle.Font.Size = vg.Points(9)
	p.Add(plotter.NewGrid())
	return p, nil
}

func rateChart(r, before *Report) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Strong gets at a fixed rate (open loop)"
	p.Title.Padding = vg.Points(6)
	p.X.Label.Text = "target rate (gets/s)"
	p.Y.Label.Text = "latency from the scheduled instant (ms)"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	series := []struct {
		name string
		get  func(Latencies) time.Duration
	}{
		{"p50", func(l Latencies) time.Duration { return l.P50 }},
		{"p80", func(l Latencies) time.Duration { return l.P80 }},
		{"p99", func(l Latencies) time.Duration { return l.P99 }},
	}
	for i, s := range series {
		if err := addLine(p, s.name, rateXYs(r.Rates, s.get), i, false); err != nil {
			return nil, err
		}
		if before != nil && len(before.Rates) > 0 {
			if err := addLine(p, "before, "+s.name, rateXYs(before.Rates, s.get), i, true); err != nil {
				return nil, err
			}
		}
	}
	var ticks []plot.Tick
	for _, x := range r.Rates {
		ticks = append(ticks, plot.Tick{Value: float64(x.Target), Label: fmt.Sprintf("%d\n(%.0f)", x.Target, x.Achieved)})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.X.Label.Text = "target rate, gets/s (achieved in brackets)"
	decades(&p.Y)
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	return p, nil
}

// decades widens a log axis to whole powers of ten, so that its ticks
// carry labels.
func decades(a *plot.Axis) {
	if a.Min > 0 && a.Max > 0 {
		a.Min = math.Pow(10, math.Floor(math.Log10(a.Min)))
		a.Max = math.Pow(10, math.Ceil(math.Log10(a.Max)+0.05))
	}
}

// ticksUpTo is a log axis's ticks, none above limit.
func ticksUpTo(limit float64) plot.Ticker {
	return plot.TickerFunc(func(min, max float64) []plot.Tick {
		var out []plot.Tick
		for _, t := range (plot.LogTicks{Prec: -1}).Ticks(min, max) {
			if t.Value <= limit*1.0001 {
				out = append(out, t)
			}
		}
		return out
	})
}

// addLine adds a line with points in the i-th colour; dashed for "before".
func addLine(p *plot.Plot, name string, xys plotter.XYs, i int, dashed bool) error {
	if len(xys) == 0 {
		return nil
	}
	line, points, err := plotter.NewLinePoints(xys)
	if err != nil {
		return err
	}
	c := plotutil.Color(i)
	line.Color, points.Color = c, c
	points.Shape = plotutil.Shape(i)
	if dashed {
		line.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		line.Color = fade(c)
		points.Color = fade(c)
	}
	p.Add(line, points)
	p.Legend.Add(name, line, points)
	return nil
}

func fade(c color.Color) color.Color {
	r, g, b, _ := c.RGBA()
	return color.NRGBA{R: uint8(r >> 8), G: uint8(g >> 8), B: uint8(b >> 8), A: 110}
}

func herdXYs(hs []HerdResult, d time.Duration, longPolling bool) plotter.XYs {
	var xys plotter.XYs
	for _, h := range hs {
		if h.Compute == d && h.LongPolling == longPolling && h.Errors == 0 {
			xys = append(xys, plotter.XY{X: float64(h.N), Y: positive(h.HandOff.Seconds())})
		}
	}
	return xys
}

func rateXYs(rs []RateResult, get func(Latencies) time.Duration) plotter.XYs {
	var xys plotter.XYs
	for _, r := range rs {
		xys = append(xys, plotter.XY{X: float64(r.Target), Y: positive(float64(get(r.Latencies)) / float64(time.Millisecond))})
	}
	return xys
}

func computations(hs []HerdResult) []time.Duration {
	var ds []time.Duration
	for _, h := range hs {
		seen := false
		for _, d := range ds {
			seen = seen || d == h.Compute
		}
		if !seen {
			ds = append(ds, h.Compute)
		}
	}
	return ds
}

func herdTicks(hs []HerdResult) []plot.Tick {
	var ticks []plot.Tick
	for _, h := range hs {
		v := float64(h.N)
		seen := false
		for _, t := range ticks {
			seen = seen || t.Value == v
		}
		if !seen {
			ticks = append(ticks, plot.Tick{Value: v, Label: fmt.Sprint(h.N)})
		}
	}
	return ticks
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
