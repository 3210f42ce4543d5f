package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
)

// e2eRun is one line of the end-to-end JSONL: an mqantbench summary with
// the label (server/connections/in-flight) and round it was measured in.
// Lines labelled broker/... carry no summary but the counters read around a
// cluster run: messages published to the broker, framework calls made by
// the cluster's processes (mqant_rpc_calls_total summed) and the messages
// the processes say they published (mqant_rpc_broker_messages_total, when
// core/rabbitmq exports it; -1 when not) in that run, and the calls and
// the processes' own count over the run's measured time alone (read by
// mqantbench -mark; absent in older results).
type e2eRun struct {
	Label          string `json:"label"`
	Round          int    `json:"round"`
	BrokerMessages int64  `json:"broker_messages"`
	Calls          int64  `json:"calls"`
	OwnMessages    *int64 `json:"own_messages"`
	WindowMessages int64  `json:"window_own_messages"`
	WindowCalls    int64  `json:"window_calls"`
	Summary        struct {
		Conns            int     `json:"conns"`
		Requests         int64   `json:"requests"`
		Replies          int64   `json:"replies"`
		Errors           int64   `json:"errors"`
		Timeouts         int64   `json:"timeouts"`
		Throughput       float64 `json:"throughput"`
		Latency          latency `json:"latency_ms"`
		SayLatency       latency `json:"say_latency_ms"`
		Deliveries       int64   `json:"deliveries"`
		Expected         int64   `json:"expected_deliveries"`
		DeliveriesPerSec float64 `json:"deliveries_per_sec"`
		RSSBefore        int64   `json:"rss_before"`
		RSSOpen          int64   `json:"rss_open"`
		RSSPerConn       float64 `json:"rss_per_conn"` // bytes
		// The server's CPU time per reply over the measured time (us),
		// when mqantbench was given its -pid.
		CPUPerReply float64 `json:"server_cpu_us_per_reply"`
		Connected   int     `json:"connected"`
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

// round is one round's runs by label.
type round map[string]e2eRun

// e2eGoal is one measure computed inside each round that has what it
// needs, then summarised (median, min, max) over the rounds.
type e2eGoal struct {
	name, goal string
	ok         func(float64) bool // nil: reported, no goal
	value      func(round) (float64, bool)
	unit       string // printed after the figures: "", " ms", " KiB"
}

// ratio is a's throughput over b's in the same round.
func ratio(a, b string) func(round) (float64, bool) {
	return func(rd round) (float64, bool) {
		n, ok1 := rd[a]
		d, ok2 := rd[b]
		if !ok1 || !ok2 || d.Summary.Throughput <= 0 {
			return 0, false
		}
		return n.Summary.Throughput / d.Summary.Throughput, true
	}
}

// cpuRatio is b's server CPU per reply over a's: like ratio(a, b) when
// both servers fill their core, and steadier when the machine's speed
// moves between periods, or when a server does not fill its core.
func cpuRatio(a, b string) func(round) (float64, bool) {
	return func(rd round) (float64, bool) {
		n, ok1 := rd[a]
		d, ok2 := rd[b]
		if !ok1 || !ok2 || n.Summary.CPUPerReply <= 0 || d.Summary.CPUPerReply <= 0 {
			return 0, false
		}
		return d.Summary.CPUPerReply / n.Summary.CPUPerReply, true
	}
}

// p50 is a run's median latency in milliseconds.
func p50(label string) func(round) (float64, bool) {
	return func(rd round) (float64, bool) {
		r, ok := rd[label]
		return r.Summary.Latency.P50, ok && r.Summary.Replies > 0
	}
}

// perCall is broker messages per framework call of a run: over its measured
// time (as the processes count the messages they publish), or around the
// whole run (set-up, warm-up and drain included, as the broker counts them).
func perCall(label string, measured bool) func(round) (float64, bool) {
	return func(rd round) (float64, bool) {
		r, ok := rd[label]
		msgs, calls := r.BrokerMessages, r.Calls
		if measured {
			msgs, calls = r.WindowMessages, r.WindowCalls
		}
		if !ok || calls <= 0 {
			return 0, false
		}
		return float64(msgs) / float64(calls), true
	}
}

// rssKiB is the resident memory per idle connection of a run.
func rssKiB(label string) func(round) (float64, bool) {
	return func(rd round) (float64, bool) {
		r, ok := rd[label]
		return r.Summary.RSSPerConn / 1024, ok && r.Summary.Connected > 0
	}
}

func atLeast(x float64) func(float64) bool { return func(v float64) bool { return v >= x } }
func atMost(x float64) func(float64) bool  { return func(v float64) bool { return v <= x } }
func below(x float64) func(float64) bool   { return func(v float64) bool { return v < x } }

// e2eGoals are issue 11's goals and the earlier ones still measured. The
// ceiling is the minimal echo server (bench/minecho).
var e2eGoals = []e2eGoal{
	{name: "gate + Echo handler / minimal echo server, 100 connections x 8 in flight, side by side", goal: ">= 0.70", ok: atLeast(0.70), value: ratio("pair/gate-echo/100/8", "pair/minecho/100/8")},
	{name: "gate + Echo handler / minimal echo, 100 x 8, side by side, by CPU per reply (the echo server's over the gate's)", goal: "(reported)", value: cpuRatio("pair/gate-echo/100/8", "pair/minecho/100/8")},
	{name: "gate + Echo handler / minimal echo, 100 x 8, in separate runs of a round", goal: "(reported)", value: ratio("gate-echo/100/8", "minecho/100/8")},
	{name: "gate + Echo handler over WebSocket / over TCP, 100 x 8, side by side", goal: "(reported)", value: ratio("pair/gate-echo-ws/100/8", "pair/gate-echo/100/8")},
	{name: "gate + Echo handler over WebSocket / over TCP, 100 x 8, side by side, by CPU per reply", goal: "(reported)", value: cpuRatio("pair/gate-echo-ws/100/8", "pair/gate-echo/100/8")},
	{name: "gate + Echo handler / minimal echo, 100 x 1", goal: "(aim 0.75)", ok: atLeast(0.75), value: ratio("gate-echo/100/1", "minecho/100/1")},
	{name: "gate + Echo handler / minimal echo, 1000 x 1", goal: "(aim 0.90)", ok: atLeast(0.90), value: ratio("gate-echo/1000/1", "minecho/1000/1")},
	{name: "demo Login (calls Bind) / minimal echo, 100 x 8, side by side", goal: ">= 0.55", ok: atLeast(0.55), value: ratio("pair/gate-login/100/8", "pair/minecho/100/8")},
	{name: "demo Login / minimal echo, 100 x 8, side by side, by CPU per reply", goal: "(reported)", value: cpuRatio("pair/gate-login/100/8", "pair/minecho/100/8")},
	{name: "demo Login / minimal echo, 100 x 8, in separate runs of a round", goal: "(reported)", value: ratio("gate-login/100/8", "minecho/100/8")},
	{name: "demo Login / minimal echo, 100 x 1", goal: "(reported)", value: ratio("gate-login/100/1", "minecho/100/1")},
	{name: "demo Login / minimal echo, 1000 x 1", goal: "(reported)", value: ratio("gate-login/1000/1", "minecho/1000/1")},
	{name: "demo Say (broadcast to a room of 10) says/s / minimal echo replies/s, 100 x 8", goal: "(reported)", value: ratio("gate-say/100/8", "minecho/100/8")},
	{name: "demo Say / minimal echo, 100 x 1", goal: "(reported)", value: ratio("gate-say/100/1", "minecho/100/1")},
	{name: "demo Say / minimal echo, 1000 x 1", goal: "(reported)", value: ratio("gate-say/1000/1", "minecho/1000/1")},
	{name: "bench/echoserver (gate connection code, no routing) / minimal echo, 100 x 8", goal: "(reported)", value: ratio("echoserver/100/8", "minecho/100/8")},
	{name: "cluster (gate, modules, RabbitMQ: 3 processes) Login / in-process Login, 100 x 8", goal: ">= 0.15", ok: atLeast(0.15), value: ratio("cluster-login/100/8", "gate-login/100/8")},
	{name: "cluster Login, 100 x 1: p50 latency", goal: "<= 10 ms", ok: atMost(10), value: p50("cluster-login/100/1"), unit: " ms"},
	{name: "cluster Login, 100 x 8: broker messages per framework call, measured time", goal: "< 0.2", ok: below(0.2), value: perCall("broker/cluster-login/100/8", true)},
	{name: "cluster Login, 100 x 8: broker messages per framework call, whole run (set-up, warm-up, drain)", goal: "(reported)", value: perCall("broker/cluster-login/100/8", false)},
	{name: "cluster Login, 100 x 1: broker messages per framework call, measured time", goal: "(reported)", value: perCall("broker/cluster-login/100/1", true)},
	{name: "cluster Login, the broker in SCHED_BATCH, 100 x 1: p50 latency", goal: "(reported)", value: p50("cluster-brokerbatch-login/100/1"), unit: " ms"},
	{name: "cluster Login, the broker in SCHED_BATCH / its default policy, 100 x 1", goal: "(reported)", value: ratio("cluster-brokerbatch-login/100/1", "cluster-login/100/1")},
	{name: "cluster Login, the broker in SCHED_BATCH / its default policy, 100 x 8", goal: "(reported)", value: ratio("cluster-brokerbatch-login/100/8", "cluster-login/100/8")},
	{name: "cluster Login, the broker in SCHED_BATCH / in-process Login, 100 x 8", goal: "(reported)", value: ratio("cluster-brokerbatch-login/100/8", "gate-login/100/8")},
	{name: "cluster Login, the broker in SCHED_BATCH, 100 x 8: broker messages per framework call, measured time", goal: "(reported)", value: perCall("broker/cluster-brokerbatch-login/100/8", true)},
	{name: "cluster Login, the broker on CPU 1 (beside the load tool, not the gate and modules), 100 x 1: p50 latency", goal: "(reported)", value: p50("cluster-brokercpu1-login/100/1"), unit: " ms"},
	{name: "cluster Login, the broker on CPU 1 / on CPU 0 with the gate and modules, 100 x 1", goal: "(reported)", value: ratio("cluster-brokercpu1-login/100/1", "cluster-login/100/1")},
	{name: "cluster Login, the broker on CPU 1 / in-process Login, 100 x 8", goal: "(reported)", value: ratio("cluster-brokercpu1-login/100/8", "gate-login/100/8")},
	{name: "gate with per-call metrics / without (Options.NoMetrics), 1000 x 1, side by side", goal: ">= 0.95", ok: atLeast(0.95), value: ratio("pair/gate-echo/1000/1", "pair/gate-nometrics/1000/1")},
	{name: "gate with metrics / without, 100 x 8, side by side", goal: ">= 0.95", ok: atLeast(0.95), value: ratio("pair/gate-echo/100/8", "pair/gate-nometrics/100/8")},
	{name: "gate with metrics / without, 1000 x 1, in separate runs of a round", goal: "(reported)", value: ratio("gate-echo/1000/1", "gate-nometrics/1000/1")},
	{name: "gate with metrics / without, 100 x 8, in separate runs of a round", goal: "(reported)", value: ratio("gate-echo/100/8", "gate-nometrics/100/8")},
	{name: "gate + Echo handler requests/s / mosquitto round trips/s, 1000 x 1, side by side", goal: ">= 1.0", ok: atLeast(1), value: ratio("pair/gate-echo/1000/1", "pair/mosquitto/1000/1")},
	{name: "gate + Echo handler / mosquitto, 1000 x 1, in separate runs of a round", goal: "(reported)", value: ratio("gate-echo/1000/1", "mosquitto/1000/1")},
	{name: "gate + Echo handler / mosquitto, 100 x 8", goal: ">= 1.0", ok: atLeast(1), value: ratio("gate-echo/100/8", "mosquitto/100/8")},
}

// idleLabels returns the idle/N labels present, by N.
func idleLabels(byLabel map[string][]e2eRun) []string {
	var out []string
	for l := range byLabel {
		if strings.HasPrefix(l, "idle/") {
			out = append(out, l)
		}
	}
	sort.Slice(out, func(i, j int) bool { return idleN(out[i]) < idleN(out[j]) })
	return out
}

func idleN(label string) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(label, "idle/"))
	return n
}

// goalRow is one computed line of the goals table.
type goalRow struct {
	name, goal, unit string
	med, min, max    float64
	rounds           int
	met              string // yes, no, or "" when only reported
}

// evalGoals computes every goal that has data.
func evalGoals(runs []e2eRun) []goalRow {
	rounds := map[int]round{}
	byLabel := map[string][]e2eRun{}
	for _, r := range runs {
		if rounds[r.Round] == nil {
			rounds[r.Round] = round{}
		}
		rounds[r.Round][r.Label] = r
		byLabel[r.Label] = append(byLabel[r.Label], r)
	}
	var nums []int
	for n := range rounds {
		nums = append(nums, n)
	}
	sort.Ints(nums)
	goals := append([]e2eGoal(nil), e2eGoals...)
	for _, l := range idleLabels(byLabel) {
		goals = append(goals, e2eGoal{name: fmt.Sprintf("resident memory per idle connection, %d connections asked", idleN(l)),
			goal: "<= 10 KiB", ok: atMost(10), value: rssKiB(l), unit: " KiB"})
	}
	var rows []goalRow
	for _, g := range goals {
		var vals []float64
		for _, n := range nums {
			if v, ok := g.value(rounds[n]); ok {
				vals = append(vals, v)
			}
		}
		if len(vals) == 0 {
			continue
		}
		sort.Float64s(vals)
		row := goalRow{name: g.name, goal: g.goal, unit: g.unit, med: median(vals), min: vals[0], max: vals[len(vals)-1], rounds: len(vals)}
		if g.ok != nil {
			row.met = "no"
			if g.ok(row.med) {
				row.met = "yes"
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// e2eServers are the servers of the runs table and the plot, in order:
// label prefix, what it is, plot colour.
var e2eServers = []struct{ prefix, desc, color string }{
	{"minecho", "minimal echo server (bench/minecho): the ceiling", "#555555"},
	{"echoserver", "bench/echoserver: the gate's connection code echoing, no routing", "#aaaaaa"},
	{"gate-echo", "gate + bench Echo handler (`Echo/Handler_Work`), in-process RPC", "#1f6feb"},
	{"gate-nometrics", "the same with the per-call metrics off (`benchserver -metrics=false`)", "#79b8ff"},
	{"gate-login", "gate + the demo's `Login/Handler_Login` (calls `s.Bind`), in-process", "#2da44e"},
	{"gate-say", "gate + the demo's `Chat/Handler_Say`, rooms of 10 (says/s; each say reaches 10 members)", "#8250df"},
	{"cluster-login", "gate and modules in two processes, one RabbitMQ broker: Login", "#cf222e"},
	{"cluster-brokerbatch-login", "the same cluster, the broker's threads in SCHED_BATCH (`chrt -a -b -p 0`: a woken broker no longer preempts the gate or the modules on their shared CPU)", "#ff8182"},
	{"cluster-brokercpu1-login", "the same cluster, the broker moved to CPU 1 beside the load tool (`taskset -a -p -c 1`): what a core of its own gives", "#ffb3b8"},
	{"mosquitto", "Debian's mosquitto, broker round trips (subscribe to your own topic, publish, receive)", "#d4a017"},
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

	fmt.Fprintf(b, "\n## End to end (servers pinned to CPU 0, mqantbench to CPU 1)\n\n")
	fmt.Fprintf(b, "Each round runs every server in turn; every ratio is computed inside one round, then summarised over the rounds (median, min, max). Labels are server/connections/requests in flight per connection. The `pair/` runs are side by side: the minimal echo server, the gate, the gate without metrics and mosquitto all listening, slots of short runs back to back (minimal echo, gate Echo, gate Login, the gate without metrics and gate Echo over WebSocket at 100 x 8; the gate, the gate without metrics and mosquitto at 1000 x 1), each ratio computed inside one slot (the rounds column counts slots); the goals between servers read them, because the gate's throughput on this VM moves between periods of seconds where the minimal echo server's does not. The servers:\n\n")
	for _, s := range e2eServers {
		fmt.Fprintf(b, "- `%s`: %s\n", s.prefix, s.desc)
	}
	fmt.Fprintf(b, "\n### Goals (issue 11)\n\n| measure | goal | median | min | max | rounds | met |\n| --- | --- | --- | --- | --- | ---: | --- |\n")
	for _, g := range evalGoals(runs) {
		met := g.met
		if met == "" {
			met = "(reported)"
		}
		fmt.Fprintf(b, "| %s | %s | %.2f%s | %.2f%s | %.2f%s | %d | %s |\n", g.name, g.goal, g.med, g.unit, g.min, g.unit, g.max, g.unit, g.rounds, met)
	}

	fmt.Fprintf(b, "\n### Runs (medians)\n\n| server / connections / in flight | replies/s | p50 ms | p90 ms | p99 ms | p99.9 ms | errors+timeouts | rounds |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	sort.Strings(labels)
	for _, l := range labels {
		if strings.HasPrefix(l, "idle/") || strings.HasPrefix(l, "broadcast/") || strings.HasPrefix(l, "broker/") {
			continue
		}
		var bad int64
		for _, r := range byLabel[l] {
			bad += r.Summary.Errors + r.Summary.Timeouts
		}
		lat := func(r e2eRun) latency { return r.Summary.Latency }
		if strings.HasPrefix(l, "gate-say/") {
			lat = func(r e2eRun) latency { return r.Summary.SayLatency }
		}
		fmt.Fprintf(b, "| %s | %.0f | %.2f | %.2f | %.2f | %.2f | %d | %d |\n", l, med(l, tput),
			med(l, func(r e2eRun) float64 { return lat(r).P50 }),
			med(l, func(r e2eRun) float64 { return lat(r).P90 }),
			med(l, func(r e2eRun) float64 { return lat(r).P99 }),
			med(l, func(r e2eRun) float64 { return lat(r).P999 }), bad, len(byLabel[l]))
	}
	fmt.Fprintf(b, "\n`gate-say` rows give says/s and the say's round trip; each say is also pushed to the 10 members of its room (the sayer included).\n")
	if rs := byLabel["gate-echo/1000/half"]; len(rs) > 0 {
		fmt.Fprintf(b, "`gate-echo/1000/half` is the gate at half the throughput it sustained with 1000 connections in the same round (`-rate`): its p99 is the latency at 50%% load.\n")
	}
	var brokerLabels []string
	for _, l := range labels {
		if strings.HasPrefix(l, "broker/") {
			brokerLabels = append(brokerLabels, l)
		}
	}
	if len(brokerLabels) > 0 {
		fmt.Fprintf(b, "\n### Broker messages per framework call\n\nRead around each cluster run: messages published to RabbitMQ (its `messages_received_total`), framework calls made by the gate and modules processes (`mqant_rpc_calls_total` from their admin `/metrics`, all modules and outcomes) and the messages the processes count themselves (`mqant_rpc_broker_messages_total`, \"-\" where not exported), set-up, warm-up and the drain of the last calls included; then the calls and the processes' own count over the run's measured time alone (read by `mqantbench -mark` as it begins and ends), the goal's figure. The broker's count is not read there: it takes a `rabbitmqctl` run, seconds of CPU on the servers' core while the load goes on; over the whole run the two counts can be compared.\n\n| run | round | broker messages | framework calls | per call | processes' own count | measured time: own count | calls | per call |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, l := range brokerLabels {
			for _, r := range byLabel[l] {
				per, own, wPer := "-", "-", "-"
				if r.Calls > 0 {
					per = fmt.Sprintf("%.2f", float64(r.BrokerMessages)/float64(r.Calls))
				}
				if r.OwnMessages != nil && *r.OwnMessages >= 0 {
					own = strconv.FormatInt(*r.OwnMessages, 10)
				}
				if r.WindowCalls > 0 {
					wPer = fmt.Sprintf("%.3f", float64(r.WindowMessages)/float64(r.WindowCalls))
				}
				fmt.Fprintf(b, "| %s | %d | %d | %d | %s | %s | %d | %d | %s |\n", strings.TrimPrefix(l, "broker/"), r.Round, r.BrokerMessages, r.Calls, per, own, r.WindowMessages, r.WindowCalls, wPer)
			}
		}
	}
	if rs := byLabel["broadcast/1000"]; len(rs) > 0 {
		s := rs[0].Summary
		fmt.Fprintf(b, "\n### Broadcast\n\nOne sender says 300 times a second into a room of %d members (the chat demo's Chat module; one call into the gate per say): %d of %d expected deliveries, **%.0f deliveries/s**, fan-out latency from the say to each member's receipt p50 %.2f ms, p99 %.2f ms, max %.2f ms.\n",
			s.Connected, s.Deliveries, s.Expected, s.DeliveriesPerSec, s.Latency.P50, s.Latency.P99, s.Latency.Max)
	}
	if idle := idleLabels(byLabel); len(idle) > 0 {
		fmt.Fprintf(b, "\n### Idle connections (gate + modules in-process)\n\n| asked | held | resident before | all set up | per connection |\n| ---: | ---: | ---: | ---: | ---: |\n")
		for _, l := range idle {
			s := byLabel[l][0].Summary
			fmt.Fprintf(b, "| %d | %d | %.1f MiB | %.1f MiB | **%.1f KiB** |\n", idleN(l), s.Connected,
				float64(s.RSSBefore)/(1<<20), float64(s.RSSOpen)/(1<<20), s.RSSPerConn/1024)
		}
	}
	if svgPath != "" {
		if err := os.WriteFile(svgPath, []byte(throughputSVG(byLabel)), 0o644); err == nil {
			fmt.Fprintf(b, "\n![throughput of each server](%s)\n", svgBase(svgPath))
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

// throughputSVG draws grouped bars: for each load (100 x 8, 100 x 1,
// 1000 x 1) the median replies/s of every server, labelled with its value.
func throughputSVG(byLabel map[string][]e2eRun) string {
	loads := []string{"100/8", "100/1", "1000/1"}
	maxY := 1.0
	vals := map[string]float64{}
	for _, s := range e2eServers {
		for _, l := range loads {
			var xs []float64
			for _, r := range byLabel[s.prefix+"/"+l] {
				xs = append(xs, r.Summary.Throughput)
			}
			if len(xs) > 0 {
				vals[s.prefix+"/"+l] = median(xs)
				maxY = math.Max(maxY, median(xs))
			}
		}
	}
	maxY *= 1.08 // room for the top bar's label
	const w, h, left, bottom, top, right = 760, 380, 70, 40, 30, 230
	groupW := float64(w-left-right) / float64(len(loads))
	barW := (groupW - 20) / float64(len(e2eServers))
	y := func(v float64) float64 { return float64(h-bottom) - v/maxY*float64(h-bottom-top) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="%d" y="18" font-size="14">Replies/s (Say: says/s), median of rounds</text>`+"\n", left)
	for i := 0; i <= 4; i++ {
		v := maxY * float64(i) / 4
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%.0fk</text>`+"\n",
			left, w-right, y(v), y(v), left-6, y(v)+4, v/1000)
	}
	for g, l := range loads {
		x0 := float64(left) + float64(g)*groupW + 10
		c, inflight, _ := strings.Cut(l, "/")
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s connections x %s</text>`+"\n", x0+groupW/2-10, h-bottom+18, c, inflight)
		for k, s := range e2eServers {
			v, ok := vals[s.prefix+"/"+l]
			if !ok {
				continue
			}
			x := x0 + float64(k)*barW
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n", x, y(v), barW-2, float64(h-bottom)-y(v), s.color)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="9" text-anchor="middle">%.0fk</text>`+"\n", x+barW/2-1, y(v)-3, v/1000)
		}
	}
	for k, s := range e2eServers {
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			w-right+15, top+20*k, s.color, w-right+32, top+20*k+11, s.prefix)
	}
	b.WriteString("</svg>\n")
	return b.String()
}
