package main

import (
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// The chart: two panels over the run's seconds, throughput on top (successes, rejections
// and errors per second) and latency percentiles below (p50, p90, p99 of the ops that ended
// in each second), drawn with gonum's plot package as PNG or SVG.
var (
	colOK     = color.RGBA{20, 140, 60, 255}
	colReject = color.RGBA{230, 140, 0, 255}
	colError  = color.RGBA{200, 30, 30, 255}
	colP50    = color.RGBA{30, 90, 200, 255}
	colP90    = color.RGBA{140, 60, 190, 255}
	colP99    = color.RGBA{200, 30, 30, 255}
)

// chartDPI turns the --chart-size pixels into the plot's lengths: a PNG comes out exactly
// that many pixels, and an SVG that size at a screen's 96 dpi.
const chartDPI = 96

// chartFormat is the format a --chart file's extension asks for, or "".
func chartFormat(path string) string {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".png":
		return "png"
	case ".svg":
		return "svg"
	}
	return ""
}

// writeChartFile draws r's timeline into a w×h PNG or SVG at path, by its extension.
func writeChartFile(path string, r *benchResult, w, h int) error {
	format := chartFormat(path)
	if format == "" {
		return fmt.Errorf("--chart %s: want a .png or .svg file", path)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--chart: %w", err)
	}
	if err := writeChart(f, format, r, w, h); err != nil {
		f.Close()
		return fmt.Errorf("--chart: %w", err)
	}
	return f.Close()
}

type series struct {
	name string
	col  color.RGBA
	xys  plotter.XYs
}

// chartSeries are the lines of the two panels: rates per second, latency percentiles.
func chartSeries(pts []timelinePoint) (rates, latencies []series) {
	full := pts
	// The load ends inside the last second it has ops in, so that second's counts are a
	// fraction of a second's: as a rate they would read as a collapse at the end. Its
	// latencies are whole answers and stay.
	if len(full) > 1 {
		full = full[:len(full)-1]
	}
	var ok, rej, errs, p50, p90, p99 plotter.XYs
	for _, p := range full {
		x := float64(p.Second)
		ok = append(ok, plotter.XY{X: x, Y: float64(p.OK)})
		rej = append(rej, plotter.XY{X: x, Y: float64(p.Rejected)})
		errs = append(errs, plotter.XY{X: x, Y: float64(p.Errors)})
	}
	for _, p := range pts {
		if p.P50ms == 0 && p.P90ms == 0 && p.P99ms == 0 {
			continue // no op ended in that second
		}
		x := float64(p.Second)
		p50 = append(p50, plotter.XY{X: x, Y: p.P50ms})
		p90 = append(p90, plotter.XY{X: x, Y: p.P90ms})
		p99 = append(p99, plotter.XY{X: x, Y: p.P99ms})
	}
	return []series{{"ok", colOK, ok}, {"rejected", colReject, rej}, {"errors", colError, errs}},
		[]series{{"p50", colP50, p50}, {"p90", colP90, p90}, {"p99", colP99, p99}}
}

func writeChart(out io.Writer, format string, r *benchResult, w, h int) error {
	rates, latencies := chartSeries(r.Timeline)
	sc := r.Scenario
	title := fmt.Sprintf("stockctl bench %s: %d buyers, %d SKU(s) %s, %s ok/s, p99 %s, check %s",
		sc.Mode, sc.Buyers, sc.SKUs, sc.Popularity, commas(int64(r.PerSecond)), msStr(r.Latency.P99), r.Check.Verdict)
	if sc.Sellout {
		title = fmt.Sprintf("stockctl bench sell-out: %d buyers, %s units in %.3fs, then %s rejections/s, check %s",
			sc.Buyers, commas(r.UnitsSold), r.ElapsedS, commas(int64(r.Sellout.LatePerSecond)), r.Check.Verdict)
	}
	top, err := panel(title, "", "ops/s", rates)
	if err != nil {
		return err
	}
	bottom, err := panel("", "time (s)", "latency (ms)", latencies)
	if err != nil {
		return err
	}
	// One time axis for both panels.
	top.X.Min, top.X.Max = min(top.X.Min, bottom.X.Min), max(top.X.Max, bottom.X.Max)
	bottom.X.Min, bottom.X.Max = top.X.Min, top.X.Max

	width, height := vg.Length(w)*vg.Inch/chartDPI, vg.Length(h)*vg.Inch/chartDPI
	var c vg.CanvasWriterTo
	switch format {
	case "png":
		img := vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(chartDPI), vgimg.UseBackgroundColor(color.White))
		c = vgimg.PngCanvas{Canvas: img}
	case "svg":
		c = vgsvg.New(width, height)
	default:
		return errors.New("unknown chart format " + format)
	}
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadTop: vg.Points(4), PadBottom: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(8), PadY: vg.Points(10)}
	canvases := plot.Align([][]*plot.Plot{{top}, {bottom}}, tiles, draw.New(c))
	top.Draw(canvases[0][0])
	bottom.Draw(canvases[1][0])
	_, err = c.WriteTo(out)
	return err
}

// panel is one plot of lines over the run's seconds, from 0 up, with a legend.
func panel(title, xlabel, ylabel string, ss []series) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	for _, s := range ss {
		if len(s.xys) == 0 {
			continue
		}
		l, err := plotter.NewLine(s.xys)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		l.Color = s.col
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(s.name, l)
	}
	p.Y.Tick.Marker = shortTicks{}
	p.X.Min, p.Y.Min = 0, 0
	p.X.Max, p.Y.Max = max(p.X.Max, 1), max(p.Y.Max, 1)
	return p, nil
}

// shortTicks are plot's default ticks labelled briefly: 25k, not 25000.00.
type shortTicks struct{}

func (shortTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = shortNum(ticks[i].Value)
		}
	}
	return ticks
}

func shortNum(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return strconv.FormatFloat(v/1e6, 'g', 4, 64) + "M"
	case a >= 1e3:
		return strconv.FormatFloat(v/1e3, 'g', 4, 64) + "k"
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}
