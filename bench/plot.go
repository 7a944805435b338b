package bench

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Image is one plot written as SVG and PNG (file names within the directory).
type Image struct {
	Title string `json:"title"`
	SVG   string `json:"svg"`
	PNG   string `json:"png"`
}

// palette: colour-blind-safe (Okabe-Ito), one per target in table order.
var palette = []color.Color{
	color.RGBA{0, 114, 178, 255}, color.RGBA{230, 159, 0, 255}, color.RGBA{0, 158, 115, 255},
	color.RGBA{204, 121, 167, 255}, color.RGBA{86, 180, 233, 255}, color.RGBA{213, 94, 0, 255},
}

// log10Ticks labels a log10-transformed axis with the original values.
// Ops/s span seven decades here (RSA key generation to C_GenerateRandom), so
// a linear axis would show nothing but the fastest op.
func log10Ticks(min, max float64) []plot.Tick {
	var ts []plot.Tick
	for k := math.Floor(min); k <= math.Ceil(max); k++ {
		ts = append(ts, plot.Tick{Value: k, Label: fmtRate(math.Pow(10, k))})
	}
	return ts
}

func ratioTicks(min, max float64) []plot.Tick {
	var ts []plot.Tick
	for k := math.Floor(min); k <= math.Ceil(max); k++ {
		v := math.Pow(10, k)
		ts = append(ts, plot.Tick{Value: k, Label: fmt.Sprintf("%gx", v)})
		if k < math.Ceil(max) {
			for _, m := range []float64{2, 5} {
				ts = append(ts, plot.Tick{Value: k + math.Log10(m)})
			}
		}
	}
	return ts
}

// WritePlots draws the report's plots into dir: ops/s per target per op at
// each thread count, a/b ratios, and scaling with threads. It returns what
// it wrote, for WriteMarkdown.
func WritePlots(r *Report, dir, a, b string) ([]Image, error) {
	var out []Image
	ts := r.orderedTargets(a, b)
	for _, t := range r.ThreadCounts() {
		p, h, ok := opsPlot(r, ts, t)
		if !ok {
			continue
		}
		im, err := saveBoth(dir, fmt.Sprintf("ops-t%d", t), 9*vg.Inch, h, func(c draw.Canvas) { p.Draw(c) })
		if err != nil {
			return nil, err
		}
		im.Title = fmt.Sprintf("ops/s per op, %d thread(s)", t)
		out = append(out, im)
	}
	if p, h, ok := ratioPlot(r, a, b); ok {
		im, err := saveBoth(dir, "ratio", 9*vg.Inch, h, func(c draw.Canvas) { p.Draw(c) })
		if err != nil {
			return nil, err
		}
		im.Title = fmt.Sprintf("%s / %s per op", a, b)
		out = append(out, im)
	}
	if len(r.ThreadCounts()) > 1 {
		plots, rows, cols := scalingPlots(r, ts)
		if len(plots) > 0 {
			w, h := vg.Length(cols)*3*vg.Inch, vg.Length(rows)*2.3*vg.Inch
			im, err := saveBoth(dir, "scaling", w, h, func(c draw.Canvas) {
				tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4,
					PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
				grid := make([][]*plot.Plot, rows)
				for i := range grid {
					grid[i] = make([]*plot.Plot, cols)
					for j := range grid[i] {
						if k := i*cols + j; k < len(plots) {
							grid[i][j] = plots[k]
						}
					}
				}
				cs := plot.Align(grid, tiles, c)
				for i := range grid {
					for j := range grid[i] {
						if grid[i][j] != nil {
							grid[i][j].Draw(cs[i][j])
						}
					}
				}
			})
			if err != nil {
				return nil, err
			}
			im.Title = "scaling with threads (ops/s)"
			out = append(out, im)
		}
	}
	return out, nil
}

// opsPlot: horizontal grouped bars, one group per op, one bar per target.
func opsPlot(r *Report, ts []string, threads int) (*plot.Plot, vg.Length, bool) {
	var names []string
	var opNames []string
	for i := len(r.Ops) - 1; i >= 0; i-- { // top to bottom in report order
		o := r.Ops[i]
		for _, t := range ts {
			if x := r.Find(t, o.Name, threads); x != nil && x.OpsPerSec > 0 {
				names = append(names, o.Name)
				opNames = append(opNames, o.Name)
				break
			}
		}
	}
	if len(opNames) == 0 {
		return nil, 0, false
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("ops/s, %d thread(s) (log scale; longer is faster)", threads)
	p.X.Tick.Marker = plot.TickerFunc(log10Ticks)
	p.X.Min = 0
	group := vg.Points(14)
	bw := group / vg.Length(len(ts))
	for k, t := range ts {
		vals := make(plotter.Values, len(opNames))
		for i, on := range opNames {
			if x := r.Find(t, on, threads); x != nil && x.OpsPerSec > 1 {
				vals[i] = math.Log10(x.OpsPerSec)
			}
		}
		bars, err := plotter.NewBarChart(vals, bw)
		if err != nil {
			continue
		}
		bars.Horizontal = true
		bars.LineStyle.Width = 0
		bars.Color = palette[k%len(palette)]
		bars.Offset = -group/2 + bw*vg.Length(k) + bw/2
		p.Add(bars)
		p.Legend.Add(t, bars)
	}
	p.Legend.Top = true
	p.NominalY(names...)
	p.Add(plotter.NewGrid())
	return p, vg.Length(len(opNames))*vg.Points(20) + vg.Inch, true
}

// ratioPlot: a/b per op, one bar per thread count, log scale, 1x marked.
func ratioPlot(r *Report, a, b string) (*plot.Plot, vg.Length, bool) {
	counts := r.ThreadCounts()
	var opNames []string
	for i := len(r.Ops) - 1; i >= 0; i-- {
		for _, t := range counts {
			if _, ok := ratio(r.Find(a, r.Ops[i].Name, t), r.Find(b, r.Ops[i].Name, t)); ok {
				opNames = append(opNames, r.Ops[i].Name)
				break
			}
		}
	}
	if len(opNames) == 0 {
		return nil, 0, false
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s / %s ops/s (log scale; right of 1x: %s faster)", a, b, a)
	p.X.Tick.Marker = plot.TickerFunc(ratioTicks)
	group := vg.Points(14)
	bw := group / vg.Length(len(counts))
	lo, hi := 0.0, 0.0
	for k, t := range counts {
		vals := make(plotter.Values, len(opNames))
		for i, on := range opNames {
			if x, ok := ratio(r.Find(a, on, t), r.Find(b, on, t)); ok {
				vals[i] = math.Log10(x)
				lo, hi = math.Min(lo, vals[i]), math.Max(hi, vals[i])
			}
		}
		bars, err := plotter.NewBarChart(vals, bw)
		if err != nil {
			continue
		}
		bars.Horizontal = true
		bars.LineStyle.Width = 0
		bars.Color = palette[k%len(palette)]
		bars.Offset = -group/2 + bw*vg.Length(k) + bw/2
		p.Add(bars)
		p.Legend.Add(fmt.Sprintf("%d thread(s)", t), bars)
	}
	p.X.Min, p.X.Max = math.Floor(lo), math.Ceil(hi)
	if p.X.Max-p.X.Min < 1 {
		p.X.Max = p.X.Min + 1
	}
	p.Legend.Top = true
	p.NominalY(opNames...)
	p.Add(plotter.NewGrid())
	return p, vg.Length(len(opNames))*vg.Points(20) + vg.Inch, true
}

// scalingPlots: one small plot per op, ops/s against threads per target.
func scalingPlots(r *Report, ts []string) ([]*plot.Plot, int, int) {
	var plots []*plot.Plot
	for _, o := range r.Ops {
		p := plot.New()
		p.Title.Text = o.Name
		p.X.Label.Text = "threads"
		var xt []plot.Tick
		for _, c := range r.ThreadCounts() {
			xt = append(xt, plot.Tick{Value: float64(c), Label: fmt.Sprint(c)})
		}
		p.X.Tick.Marker = plot.ConstantTicks(xt)
		p.Y.Min = 0
		p.Y.Tick.Marker = plot.TickerFunc(func(min, max float64) []plot.Tick {
			ts := plot.DefaultTicks{}.Ticks(min, max)
			for i := range ts {
				if ts[i].Label != "" {
					ts[i].Label = fmtRate(ts[i].Value)
				}
			}
			return ts
		})
		n := 0
		for k, t := range ts {
			var pts plotter.XYs
			for _, c := range r.ThreadCounts() {
				if x := r.Find(t, o.Name, c); x != nil && x.OpsPerSec > 0 && x.Error == "" {
					pts = append(pts, plotter.XY{X: float64(c), Y: x.OpsPerSec})
				}
			}
			if len(pts) == 0 {
				continue
			}
			l, s, err := plotter.NewLinePoints(pts)
			if err != nil {
				continue
			}
			l.Color, s.Color = palette[k%len(palette)], palette[k%len(palette)]
			l.Width = vg.Points(1.5)
			p.Add(l, s)
			p.Legend.Add(t, l)
			n++
		}
		if n == 0 {
			continue
		}
		p.Legend.Top, p.Legend.Left = true, true
		p.Legend.TextStyle.Font.Size = vg.Points(8)
		p.Title.TextStyle.Font.Size = vg.Points(10)
		plots = append(plots, p)
	}
	cols := min(4, len(plots))
	if cols == 0 {
		return nil, 0, 0
	}
	return plots, (len(plots) + cols - 1) / cols, cols
}

// saveBoth draws once per format: SVG for the docs, PNG for viewers that
// do not render SVG.
func saveBoth(dir, name string, w, h vg.Length, drawFn func(draw.Canvas)) (Image, error) {
	im := Image{SVG: name + ".svg", PNG: name + ".png"}
	svg := vgsvg.New(w, h)
	drawFn(draw.New(svg))
	if err := writeFile(filepath.Join(dir, im.SVG), svg); err != nil {
		return im, err
	}
	png := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(96))
	drawFn(draw.New(png))
	if err := writeFile(filepath.Join(dir, im.PNG), vgimg.PngCanvas{Canvas: png}); err != nil {
		return im, err
	}
	return im, nil
}

func writeFile(path string, w io.WriterTo) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := w.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
