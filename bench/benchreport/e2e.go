package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
)

// e2eRun is one line of the end-to-end JSONL: an mqantbench summary with
// the label (server/connections/in-flight) and round it was measured in.
type e2eRun struct {
	Label   string `json:"label"`
	Round   int    `json:"round"`
	Summary struct {
		Conns            int     `json:"conns"`
		Requests         int64   `json:"requests"`
		Replies          int64   `json:"replies"`
		Errors           int64   `json:"errors"`
		Timeouts         int64   `json:"timeouts"`
		Throughput       float64 `json:"throughput"`
		Latency          latency `json:"latency_ms"`
		Deliveries       int64   `json:"deliveries"`
		Expected         int64   `json:"expected_deliveries"`
		DeliveriesPerSec float64 `json:"deliveries_per_sec"`
		RSSBefore        int64   `json:"rss_before"`
		RSSOpen          int64   `json:"rss_open"`
		RSSPerConn       float64 `json:"rss_per_conn"` // bytes
		Connected        int     `json:"connected"`
	} `json:"summary"`
}

type latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

func readE2E(path string) ([]e2eRun, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []e2eRun
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var r e2eRun
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return nil, fmt.Errorf("%s: %v: %.80s", path, err, line)
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

// e2eGoal is a ratio of two labels' throughput, computed per round.
type e2eGoal struct {
	name, num, den, goal string
	ok                   func(float64) bool
}

var e2eGoals = []e2eGoal{
	{"gate / echo server, 1000 connections x 1 in flight", "gate/1000/1", "echo/1000/1", ">= 0.60", func(r float64) bool { return r >= 0.6 }},
	{"gate / echo server, 100 x 1", "gate/100/1", "echo/100/1", "(aim 0.75)", func(r float64) bool { return r >= 0.75 }},
	{"gate / echo server, 100 x 8", "gate/100/8", "echo/100/8", "(aim 0.70)", func(r float64) bool { return r >= 0.70 }},
	{"gate requests/s / mosquitto round trips/s, 1000 x 1", "gate/1000/1", "mosquitto/1000/1", ">= 1.0", func(r float64) bool { return r >= 1 }},
	{"gate / mosquitto, 100 x 8", "gate/100/8", "mosquitto/100/8", ">= 1.0", func(r float64) bool { return r >= 1 }},
	{"gate with metrics / without (Options.NoMetrics), 1000 x 1", "gate/1000/1", "gate-nometrics/1000/1", ">= 0.95", func(r float64) bool { return r >= 0.95 }},
	{"gate with metrics / without, 100 x 8", "gate/100/8", "gate-nometrics/100/8", ">= 0.95", func(r float64) bool { return r >= 0.95 }},
	{"gate with modules behind RabbitMQ / in-process, 100 x 8", "gate-rabbit/100/8", "gate/100/8", "(reported)", func(float64) bool { return true }},
}

func writeE2E(b *strings.Builder, runs []e2eRun, svgPath string) {
	byLabel := map[string][]e2eRun{}
	var labels []string
	for _, r := range runs {
		if _, ok := byLabel[r.Label]; !ok {
			labels = append(labels, r.Label)
		}
		byLabel[r.Label] = append(byLabel[r.Label], r)
	}
	med := func(label string, f func(e2eRun) float64) float64 {
		var xs []float64
		for _, r := range byLabel[label] {
			xs = append(xs, f(r))
		}
		return median(xs)
	}
	tput := func(r e2eRun) float64 { return r.Summary.Throughput }

	fmt.Fprintf(b, "\n## End to end (server pinned to CPU 0, mqantbench to CPU 1)\n\n")
	fmt.Fprintf(b, "Request/reply to a Chat-like handler (`Echo/Handler_Work`: session, JSON request decoded, typed reply encoded) through the gate with in-process RPC; the reference echo server (the gate's own listener, codec and writer, minus routing and RPC); Debian's mosquitto in broker round-trip mode (subscribe to your own topic, publish, wait for it). Medians over rounds.\n\n")
	fmt.Fprintf(b, "### Goals (ratios computed inside each round)\n\n| ratio | goal | median | min | max | met |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, g := range e2eGoals {
		var vals []float64
		for _, n := range byLabel[g.num] {
			for _, d := range byLabel[g.den] {
				if n.Round == d.Round && d.Summary.Throughput > 0 {
					vals = append(vals, n.Summary.Throughput/d.Summary.Throughput)
				}
			}
		}
		if len(vals) == 0 {
			continue
		}
		sort.Float64s(vals)
		m := median(vals)
		met := "no"
		if g.ok(m) {
			met = "yes"
		}
		fmt.Fprintf(b, "| %s | %s | %.2f | %.2f | %.2f | %s |\n", g.name, g.goal, m, vals[0], vals[len(vals)-1], met)
	}
	if rs := byLabel["idle/10000"]; len(rs) > 0 {
		s := rs[0].Summary
		met := "no"
		if s.RSSPerConn <= 10*1024 {
			met = "yes"
		}
		fmt.Fprintf(b, "| resident memory per idle connection, %d held by the gate | <= 10 KiB | %.1f KiB | | | %s |\n", s.Connected, s.RSSPerConn/1024, met)
	}

	fmt.Fprintf(b, "\n### Runs (medians)\n\n| server / connections / in flight | replies/s | p50 ms | p90 ms | p99 ms | p99.9 ms | errors+timeouts | rounds |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	sort.Strings(labels)
	for _, l := range labels {
		if strings.HasPrefix(l, "idle/") || strings.HasPrefix(l, "broadcast/") {
			continue
		}
		var bad int64
		for _, r := range byLabel[l] {
			bad += r.Summary.Errors + r.Summary.Timeouts
		}
		fmt.Fprintf(b, "| %s | %.0f | %.2f | %.2f | %.2f | %.2f | %d | %d |\n", l, med(l, tput),
			med(l, func(r e2eRun) float64 { return r.Summary.Latency.P50 }),
			med(l, func(r e2eRun) float64 { return r.Summary.Latency.P90 }),
			med(l, func(r e2eRun) float64 { return r.Summary.Latency.P99 }),
			med(l, func(r e2eRun) float64 { return r.Summary.Latency.P999 }), bad, len(byLabel[l]))
	}
	if rs := byLabel["gate/1000/half"]; len(rs) > 0 {
		fmt.Fprintf(b, "\n`gate/1000/half` is the gate at half the throughput it sustained with 1000 connections in the same round (`-rate`): its p99 is the latency at 50%% load.\n")
	}
	if rs := byLabel["broadcast/1000"]; len(rs) > 0 {
		s := rs[0].Summary
		fmt.Fprintf(b, "\n### Broadcast\n\nOne sender says 300 times a second into a room of %d members (the chat demo's Chat module; one call into the gate per say): %d of %d expected deliveries, **%.0f deliveries/s**, fan-out latency from the say to each member's receipt p50 %.2f ms, p99 %.2f ms, max %.2f ms.\n",
			s.Connected, s.Deliveries, s.Expected, s.DeliveriesPerSec, s.Latency.P50, s.Latency.P99, s.Latency.Max)
	}
	if rs := byLabel["idle/10000"]; len(rs) > 0 {
		s := rs[0].Summary
		fmt.Fprintf(b, "\n### Idle connections\n\n%d connections held: the gate's resident memory went from %.1f MiB to %.1f MiB, **%.1f KiB per connection**.\n",
			s.Connected, float64(s.RSSBefore)/(1<<20), float64(s.RSSOpen)/(1<<20), s.RSSPerConn/1024)
	}
	if svgPath != "" {
		if err := os.WriteFile(svgPath, []byte(throughputSVG(byLabel)), 0o644); err == nil {
			fmt.Fprintf(b, "\n![throughput against connections](%s)\n", svgBase(svgPath))
		}
		latPath := strings.TrimSuffix(svgPath, svgBase(svgPath)) + "latency.svg"
		if err := os.WriteFile(latPath, []byte(latencySVG(byLabel)), 0o644); err == nil {
			fmt.Fprintf(b, "\n![latency percentiles](%s)\n", svgBase(latPath))
		}
	}
}

func svgBase(p string) string {
	if i := strings.LastIndex(p, "/"); i >= 0 {
		return p[i+1:]
	}
	return p
}

// throughputSVG plots replies/s against connections (1 in flight) for each
// server, log-scaled connections.
func throughputSVG(byLabel map[string][]e2eRun) string {
	servers := []struct{ name, color string }{{"echo", "#888888"}, {"gate", "#1f6feb"}, {"mosquitto", "#d4a017"}}
	conns := []int{10, 100, 1000}
	maxY := 1.0
	pts := map[string][]float64{}
	for _, s := range servers {
		for _, c := range conns {
			var xs []float64
			for _, r := range byLabel[fmt.Sprintf("%s/%d/1", s.name, c)] {
				xs = append(xs, r.Summary.Throughput)
			}
			v := median(xs)
			pts[s.name] = append(pts[s.name], v)
			maxY = math.Max(maxY, v)
		}
	}
	const w, h, left, bottom, top, right = 640, 360, 70, 40, 30, 130
	x := func(i int) float64 { return left + float64(i)*float64(w-left-right)/float64(len(conns)-1) }
	y := func(v float64) float64 { return float64(h-bottom) - v/maxY*float64(h-bottom-top) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="%d" y="18" font-size="14">Replies/s against connections (1 request in flight each)</text>`+"\n", left)
	for i := 0; i <= 4; i++ {
		v := maxY * float64(i) / 4
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%.0fk</text>`+"\n",
			left, w-right, y(v), y(v), left-6, y(v)+4, v/1000)
	}
	for i, c := range conns {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%d</text>`+"\n", x(i), h-bottom+18, c)
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">connections</text>`+"\n", (left+w-right)/2, h-6)
	for k, s := range servers {
		var path []string
		for i, v := range pts[s.name] {
			path = append(path, fmt.Sprintf("%.1f,%.1f", x(i), y(v)))
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", x(i), y(v), s.color)
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", s.color, strings.Join(path, " "))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			w-right+15, top+20*k, s.color, w-right+32, top+20*k+11, s.name)
	}
	b.WriteString("</svg>\n")
	return b.String()
}
