package main

import (
	"fmt"
	"math"
	"strings"
)

// latencySVG plots each server's latency percentiles (p50, p90, p99,
// p99.9; log-scaled milliseconds) for the runs with 100 and 1000
// connections, one request in flight each: the minimal echo server, the
// gate with the Echo and Login handlers, Login in a cluster, mosquitto.
func latencySVG(byLabel map[string][]e2eRun) string {
	type series struct {
		label, color string
	}
	all := []series{
		{"minecho/100/1", "#555555"}, {"gate-echo/100/1", "#1f6feb"}, {"gate-login/100/1", "#2da44e"},
		{"cluster-login/100/1", "#cf222e"}, {"mosquitto/100/1", "#d4a017"},
		{"minecho/1000/1", "#bbbbbb"}, {"gate-echo/1000/1", "#79b8ff"}, {"gate-login/1000/1", "#8fd19e"},
		{"mosquitto/1000/1", "#f0d070"},
	}
	pcts := []struct {
		name string
		get  func(latency) float64
	}{{"p50", func(l latency) float64 { return l.P50 }}, {"p90", func(l latency) float64 { return l.P90 }},
		{"p99", func(l latency) float64 { return l.P99 }}, {"p99.9", func(l latency) float64 { return l.P999 }}}
	lo, hi := math.Inf(1), 0.0
	vals := map[string][]float64{}
	var shown []series
	for _, s := range all {
		runs := byLabel[s.label]
		if len(runs) == 0 {
			continue
		}
		shown = append(shown, s)
		for _, p := range pcts {
			var xs []float64
			for _, r := range runs {
				xs = append(xs, p.get(r.Summary.Latency))
			}
			v := math.Max(median(xs), 0.01)
			vals[s.label] = append(vals[s.label], v)
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	if len(shown) == 0 {
		return ""
	}
	lo, hi = math.Pow(10, math.Floor(math.Log10(lo))), math.Pow(10, math.Ceil(math.Log10(hi)))
	const w, h, left, bottom, top, right = 640, 360, 70, 40, 30, 170
	x := func(i int) float64 { return left + float64(i)*float64(w-left-right)/float64(len(pcts)-1) }
	y := func(v float64) float64 {
		f := (math.Log10(v) - math.Log10(lo)) / (math.Log10(hi) - math.Log10(lo))
		return float64(h-bottom) - f*float64(h-bottom-top)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="%d" y="18" font-size="14">Latency percentiles, ms (log scale), 1 request in flight</text>`+"\n", left)
	for v := lo; v <= hi*1.001; v *= 10 {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%g</text>`+"\n",
			left, w-right, y(v), y(v), left-6, y(v)+4, v)
	}
	for i, p := range pcts {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x(i), h-bottom+18, p.name)
	}
	for k, s := range shown {
		var pts []string
		for i, v := range vals[s.label] {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(i), y(v)))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", s.color, strings.Join(pts, " "))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			w-right+15, top+20*k, s.color, w-right+32, top+20*k+11, s.label)
	}
	b.WriteString("</svg>\n")
	return b.String()
}
