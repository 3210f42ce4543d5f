package main

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"time"

	"github.com/mqantgen/mqantgen/bench/loadgen"
)

// report renders a run.
type report struct {
	opts      options
	samples   []sample
	loadAt    time.Duration // when the load began (warm-up first)
	summary   *loadgen.Summary
	loadText  string
	sampleErr error
}

// metric is one sampled figure.
type metric struct {
	name, unit, color string
	get               func(sample) float64
}

var metrics = []metric{
	{"RSS", "MiB", "#1f6feb", func(s sample) float64 { return float64(s.RSS) / (1 << 20) }},
	{"goroutines", "", "#d4a017", func(s sample) float64 { return float64(s.Goroutines) }},
	{"open fds", "", "#2da44e", func(s sample) float64 { return float64(s.FDs) }},
}

// measured returns the load-phase samples after the warm-up: what the
// trend is computed over.
func (r *report) measured() []sample {
	from := r.loadAt + r.opts.warmup
	var out []sample
	for _, s := range r.samples {
		if s.Phase == phaseLoad && s.At >= from {
			out = append(out, s)
		}
	}
	return out
}

func (r *report) trend(m metric) trend {
	var xs, mins []float64
	for _, s := range r.measured() {
		xs = append(xs, m.get(s))
		mins = append(mins, s.At.Minutes())
	}
	return trendOf(xs, mins)
}

func (r *report) markdown() string {
	var b strings.Builder
	o := r.opts
	b.WriteString("# Soak: the chat demo under chatting clients\n\n")
	b.WriteString("Written by `make soak` (`bench/soak`); the analysis is in REPORT.md, \"Soak\". Do not edit.\n\n")
	fmt.Fprintf(&b, "Command: `%s`  \n", strings.TrimSpace(o.command))
	fmt.Fprintf(&b, "Load: %d clients (bench/loadgen chat mode) in rooms of %d, %g says/s in all, over TCP to the demo server "+
		"(`%s`, in-process RPC) on loopback; %v under load after a %v warm-up, sampled every %v. "+
		"Server and load tool share one 2-core machine with other work.\n\n",
		o.conns, o.roomSize, o.rate, o.conf, o.duration, o.warmup, o.every)
	meas := r.measured()
	fmt.Fprintf(&b, "Trend over the %d samples under load after the warm-up (flat: the least-squares trend moves the figure by less than %.0f%% of its mean over the run):\n\n",
		len(meas), flatDrift*100)
	b.WriteString("| figure | first | last | min | max | slope per minute | drift over the run | flat |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
	for _, m := range metrics {
		t := r.trend(m)
		verdict := "yes"
		if !t.flat() {
			verdict = "**no**"
		}
		unit := ""
		if m.unit != "" {
			unit = " " + m.unit
		}
		fmt.Fprintf(&b, "| %s%s | %s | %s | %s | %s | %+.2f | %+.1f%% | %s |\n", m.name, unit,
			num(t.First), num(t.Last), num(t.Min), num(t.Max), t.SlopePerMin, 100*t.Drift, verdict)
	}
	idle, after := r.phaseLast(phaseIdle), r.phaseLast(phaseAfter)
	if idle != nil && after != nil {
		fmt.Fprintf(&b, "\nBefore any client: RSS %.1f MiB, %d goroutines, %d fds. After the clients left: RSS %.1f MiB, %d goroutines, %d fds.\n",
			float64(idle.RSS)/(1<<20), idle.Goroutines, idle.FDs, float64(after.RSS)/(1<<20), after.Goroutines, after.FDs)
	}
	fmt.Fprintf(&b, "\n![RSS, goroutines and open fds over the run](%s)\n\n", filepath.Base(o.svg))
	b.WriteString("The load tool's summary:\n\n```\n" + r.loadText + "```\n\n")
	if r.sampleErr != nil {
		fmt.Fprintf(&b, "Some samples failed; the first error: %v\n\n", r.sampleErr)
	}
	b.WriteString("Samples (at most 30 rows, evenly spaced; every phase's first and last kept):\n\n")
	b.WriteString("| time | phase | RSS MiB | goroutines | fds |\n| ---: | --- | ---: | ---: | ---: |\n")
	for _, s := range r.rows(30) {
		fmt.Fprintf(&b, "| %s | %s | %.1f | %d | %d |\n", s.At.Truncate(time.Second), s.Phase, float64(s.RSS)/(1<<20), s.Goroutines, s.FDs)
	}
	return b.String()
}

func num(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func (r *report) phaseLast(p string) *sample {
	var last *sample
	for i := range r.samples {
		if r.samples[i].Phase == p {
			last = &r.samples[i]
		}
	}
	return last
}

// rows picks at most n samples, evenly spaced, keeping phase boundaries.
func (r *report) rows(n int) []sample {
	if len(r.samples) <= n {
		return r.samples
	}
	keep := map[int]bool{}
	for i := range r.samples {
		if i == 0 || i == len(r.samples)-1 || r.samples[i].Phase != r.samples[i-1].Phase || r.samples[i].Phase != r.samples[i+1].Phase {
			keep[i] = true
		}
	}
	step := float64(len(r.samples)-1) / float64(n-len(keep)+1)
	for f := 0.0; int(f) < len(r.samples); f += math.Max(step, 1) {
		keep[int(f)] = true
	}
	var out []sample
	for i, s := range r.samples {
		if keep[i] {
			out = append(out, s)
		}
	}
	return out
}

// svg plots each figure in a panel of its own against minutes, the load
// phase shaded.
func (r *report) svg() string {
	const w, panelH, left, right, top, gap = 720, 150, 70, 20, 34, 36
	h := top + len(metrics)*(panelH+gap) + 10
	if len(r.samples) == 0 {
		return ""
	}
	tmax := r.samples[len(r.samples)-1].At.Minutes()
	if tmax <= 0 {
		tmax = 1
	}
	x := func(m float64) float64 { return left + m/tmax*float64(w-left-right) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="%d" y="18" font-size="14">Soak: demo server, %d chatting clients; shaded: under load (minutes on the x axis)</text>`+"\n", left, r.opts.conns)
	var loadFrom, loadTo float64 = -1, -1
	for _, s := range r.samples {
		if s.Phase == phaseLoad {
			if loadFrom < 0 {
				loadFrom = s.At.Minutes()
			}
			loadTo = s.At.Minutes()
		}
	}
	for k, m := range metrics {
		y0 := float64(top + k*(panelH+gap)) // panel top
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, s := range r.samples {
			v := m.get(s)
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
		lo = 0 // from zero: flatness is judged against the whole value
		hi = niceCeil(hi)
		y := func(v float64) float64 { return y0 + panelH - (v-lo)/(hi-lo)*panelH }
		if loadFrom >= 0 {
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%d" fill="#f3f6fa"/>`+"\n", x(loadFrom), y0, x(loadTo)-x(loadFrom), panelH)
		}
		for i := 0; i <= 4; i++ {
			v := lo + (hi-lo)*float64(i)/4
			fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n",
				left, w-right, y(v), y(v), left-6, y(v)+4, num(v))
		}
		label := m.name
		if m.unit != "" {
			label += " (" + m.unit + ")"
		}
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-weight="bold">%s</text>`+"\n", left, y0-6, label)
		var pts []string
		for _, s := range r.samples {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(s.At.Minutes()), y(m.get(s))))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", m.color, strings.Join(pts, " "))
		for mi := 0.0; mi <= tmax; mi += tickStep(tmax) {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#666">%s</text>`+"\n", x(mi), y0+panelH+14, num(mi))
		}
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func tickStep(tmax float64) float64 {
	switch {
	case tmax <= 2:
		return 0.5
	case tmax <= 10:
		return 1
	}
	return 5
}
