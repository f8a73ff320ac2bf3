package main

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"os"
	"strconv"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// The chart: two panels over the run's seconds, throughput on top (successes, rejections
// and errors per second) and latency percentiles below (p50, p90, p99 of the ops that ended
// in each second). Drawn with the standard library's image packages and a bitmap font.
var (
	colBG     = color.RGBA{255, 255, 255, 255}
	colAxis   = color.RGBA{40, 40, 40, 255}
	colGrid   = color.RGBA{225, 225, 225, 255}
	colOK     = color.RGBA{20, 140, 60, 255}
	colReject = color.RGBA{230, 140, 0, 255}
	colError  = color.RGBA{200, 30, 30, 255}
	colP50    = color.RGBA{30, 90, 200, 255}
	colP90    = color.RGBA{140, 60, 190, 255}
	colP99    = color.RGBA{200, 30, 30, 255}
)

type series struct {
	name string
	col  color.RGBA
	ys   []float64
}

// writeChartFile draws r's timeline into a w×h PNG at path.
func writeChartFile(path string, r *benchResult, w, h int) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--chart: %w", err)
	}
	if err := writeChart(f, r, w, h); err != nil {
		f.Close()
		return fmt.Errorf("--chart: %w", err)
	}
	return f.Close()
}

func writeChart(out io.Writer, r *benchResult, w, h int) error {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), &image.Uniform{colBG}, image.Point{}, draw.Src)
	pts := r.Timeline
	n := len(pts)
	ok, rej, errs := make([]float64, n), make([]float64, n), make([]float64, n)
	p50, p90, p99 := make([]float64, n), make([]float64, n), make([]float64, n)
	for i, p := range pts {
		ok[i], rej[i], errs[i] = float64(p.OK), float64(p.Rejected), float64(p.Errors)
		p50[i], p90[i], p99[i] = p.P50ms, p.P90ms, p.P99ms
	}
	sc := r.Scenario
	title := fmt.Sprintf("stockctl bench %s: %d buyers, %d SKU(s) %s, %s ok/s, p99 %s, check %s",
		sc.Mode, sc.Buyers, sc.SKUs, sc.Popularity, commas(int64(r.PerSecond)), msStr(r.Latency.P99), r.Check.Verdict)
	if sc.Sellout {
		title = fmt.Sprintf("stockctl bench sell-out: %d buyers, %s units in %.3fs, then %s rejections/s, check %s",
			sc.Buyers, commas(r.UnitsSold), r.ElapsedS, commas(int64(r.Sellout.LatePerSecond)), r.Check.Verdict)
	}
	text(img, 10, 16, title, colAxis)

	const left, right, top, gap, bottom = 78, 20, 30, 44, 36
	ph := (h - top - gap - bottom) / 2
	upper := image.Rect(left, top, w-right, top+ph)
	lower := image.Rect(left, top+ph+gap, w-right, top+2*ph+gap)
	panel(img, upper, n, "ops/s", []series{{"ok", colOK, ok}, {"rejected", colReject, rej}, {"errors", colError, errs}})
	panel(img, lower, n, "latency ms", []series{{"p50", colP50, p50}, {"p90", colP90, p90}, {"p99", colP99, p99}})
	text(img, (left+w-right)/2-40, h-8, "time (s)", colAxis)
	return png.Encode(out, img)
}

// panel draws axes, grid, ticks, a legend and each series as a line over n seconds.
func panel(img *image.RGBA, r image.Rectangle, n int, ylabel string, ss []series) {
	ymax := 0.0
	for _, s := range ss {
		for _, y := range s.ys {
			ymax = math.Max(ymax, y)
		}
	}
	step := niceStep(ymax, 5)
	top := step * math.Ceil(ymax/step)
	if top == 0 {
		top = 1
	}
	xs := float64(max(n-1, 1))
	px := func(i int) int { return r.Min.X + int(math.Round(float64(i)/xs*float64(r.Dx()))) }
	py := func(y float64) int { return r.Max.Y - int(math.Round(y/top*float64(r.Dy()))) }
	for y := 0.0; y <= top+step/2; y += step {
		yy := py(y)
		hline(img, r.Min.X, r.Max.X, yy, colGrid)
		lbl := shortNum(y)
		text(img, r.Min.X-8-7*len(lbl), yy+4, lbl, colAxis)
	}
	xstep := int(math.Max(1, niceStep(float64(n-1), 10)))
	for i := 0; i < n; i += xstep {
		x := px(i)
		vline(img, x, r.Max.Y, r.Max.Y+4, colAxis)
		lbl := strconv.Itoa(i)
		text(img, x-7*len(lbl)/2, r.Max.Y+17, lbl, colAxis)
	}
	hline(img, r.Min.X, r.Max.X, r.Max.Y, colAxis)
	vline(img, r.Min.X, r.Min.Y, r.Max.Y, colAxis)
	text(img, r.Min.X+4, r.Min.Y-4, ylabel, colAxis)
	lx := r.Max.X - 90*len(ss)
	for _, s := range ss {
		for i := 1; i < len(s.ys); i++ {
			line(img, px(i-1), py(s.ys[i-1]), px(i), py(s.ys[i]), s.col)
		}
		if len(s.ys) == 1 {
			line(img, px(0)-2, py(s.ys[0]), px(0)+2, py(s.ys[0]), s.col)
		}
		fill(img, image.Rect(lx, r.Min.Y-12, lx+14, r.Min.Y-6), s.col)
		text(img, lx+18, r.Min.Y-4, s.name, colAxis)
		lx += 90
	}
}

// niceStep is a 1, 2 or 5 × 10^k step that cuts span into at most about parts pieces.
func niceStep(span float64, parts int) float64 {
	if span <= 0 {
		return 1
	}
	raw := span / float64(parts)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			return m * mag
		}
	}
	return 10 * mag
}

// shortNum writes an axis label: 1500 → "1.5k", 2000000 → "2M", 0.25 → "0.25".
func shortNum(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func text(img *image.RGBA, x, y int, s string, c color.Color) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func hline(img *image.RGBA, x0, x1, y int, c color.RGBA) {
	for x := x0; x <= x1; x++ {
		img.SetRGBA(x, y, c)
	}
}

func vline(img *image.RGBA, x, y0, y1 int, c color.RGBA) {
	for y := y0; y <= y1; y++ {
		img.SetRGBA(x, y, c)
	}
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	draw.Draw(img, r, &image.Uniform{c}, image.Point{}, draw.Src)
}

// line draws a 2-pixel-wide segment (DDA); SetRGBA ignores points outside the image.
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	dx, dy := x1-x0, y1-y0
	steps := max(abs(dx), abs(dy), 1)
	for i := 0; i <= steps; i++ {
		x := x0 + int(math.Round(float64(dx*i)/float64(steps)))
		y := y0 + int(math.Round(float64(dy*i)/float64(steps)))
		img.SetRGBA(x, y, c)
		img.SetRGBA(x+1, y, c)
		img.SetRGBA(x, y+1, c)
		img.SetRGBA(x+1, y+1, c)
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
