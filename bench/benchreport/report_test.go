package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// microOutput is go test -bench output of two runs, the gate's package
// once.
const microOutput = `goos: linux
BenchmarkRabbitFramework/conc=1-2    3756   328532 ns/op   3044 calls/s   330.0 p50-us
BenchmarkRabbitFramework/conc=64-2  16836    68620 ns/op  60000 calls/s  4127 p50-us  0.15 broker-msgs/call
BenchmarkRabbitBare/conc=1-2         3606   308027 ns/op   3246 calls/s   300.0 p50-us
BenchmarkRabbitBare/conc=64-2       21699    55492 ns/op  18000 calls/s  3399 p50-us
BenchmarkRabbitPaired-2              1800   650000 ns/op   345.0 fw-p50-us   300.0 bare-p50-us   1.15 p50-ratio
PASS
ok  	github.com/mqantgen/mqantgen/core/rabbitmq	20.1s
BenchmarkGateRoundTrip-2            175828   5727 ns/op   328 B/op   2 allocs/op
BenchmarkGateRoundTripNoMetrics-2   202634   5755 ns/op   328 B/op   2 allocs/op
BenchmarkGateRoundTripMetricsPaired-2   200000   12073 ns/op   1.025 metrics-ratio   5962 off-ns/req   6111 on-ns/req   769 B/op   4 allocs/op
ok  	github.com/mqantgen/mqantgen/gate	3.1s
BenchmarkRabbitFramework/conc=1-2    3756   328532 ns/op   3044 calls/s   390.0 p50-us
BenchmarkRabbitFramework/conc=64-2  16836    68620 ns/op  36000 calls/s  4127 p50-us
BenchmarkRabbitBare/conc=1-2         3606   308027 ns/op   3246 calls/s   300.0 p50-us
BenchmarkRabbitBare/conc=64-2       21699    55492 ns/op  18000 calls/s  3399 p50-us
BenchmarkRabbitPaired-2              1800   650000 ns/op   375.0 fw-p50-us   300.0 bare-p50-us   1.25 p50-ratio
ok  	github.com/mqantgen/mqantgen/core/rabbitmq	20.1s
BenchmarkRabbitFrameworkSchedBatch/conc=64-2  16836    68620 ns/op  45000 calls/s  4127 p50-us
BenchmarkRabbitBareSchedBatch/conc=64-2       21699    55492 ns/op  15000 calls/s  3399 p50-us
ok  	github.com/mqantgen/mqantgen/core/rabbitmq	8.1s
`

func TestParse(t *testing.T) {
	runs := parse(strings.NewReader(microOutput))
	if len(runs) != 4 {
		t.Fatalf("%d result blocks, want 4", len(runs))
	}
	if got := runs[0]["BenchmarkRabbitFramework/conc=64"]["calls/s"]; got != 60000 {
		t.Errorf("conc=64 calls/s %v, want 60000 (the -2 suffix cut, the subbenchmark kept)", got)
	}
	if got := runs[1]["BenchmarkGateRoundTrip"]["allocs/op"]; got != 2 {
		t.Errorf("GateRoundTrip allocs/op %v, want 2", got)
	}
}

func goalByName(t *testing.T, prefix string) microGoal {
	t.Helper()
	for _, g := range microGoals {
		if strings.HasPrefix(g.Name, prefix) {
			return g
		}
	}
	t.Fatalf("no micro goal %q", prefix)
	return microGoal{}
}

// TestMicroGoals: ratios inside each block, values (no Den) as they are,
// blocks lacking a benchmark skipped, and the goal bounds of issue 11.
func TestMicroGoals(t *testing.T) {
	runs := parse(strings.NewReader(microOutput))
	rabbit := goalByName(t, "RabbitMQ, 64")
	if got := rabbit.values(runs); fmt.Sprint(got) != "[3.3333333333333335 2]" {
		t.Errorf("rabbit 64 ratios %v, want [3.33 2] (one per block with both)", got)
	}
	if !rabbit.Check(3) || rabbit.Check(2.99) {
		t.Error("RabbitMQ at 64 callers: the goal is >= 3x")
	}
	// The 1-caller goal is the paired benchmark's own ratio (framework and
	// bare calls alternated in one run); the ratio of separate runs is
	// reported beside it.
	p50 := goalByName(t, "RabbitMQ, 1 caller: framework p50 latency / bare loop p50 latency, calls alternated")
	if got := p50.values(runs); fmt.Sprint(got) != "[1.15 1.25]" {
		t.Errorf("paired p50 ratios %v, want [1.15 1.25]", got)
	}
	if !p50.Check(1.2) || p50.Check(1.21) {
		t.Error("RabbitMQ at 1 caller: the goal is <= 1.2x")
	}
	sep := goalByName(t, "RabbitMQ, 1 caller: framework p50 latency / bare loop p50 latency, separate")
	if got := sep.values(runs); len(got) != 2 || math.Abs(got[0]-1.1) > 1e-9 || math.Abs(got[1]-1.3) > 1e-9 {
		t.Errorf("separate-run p50 ratios %v, want [1.1 1.3]", got)
	}
	if sep.Check != nil {
		t.Error("the separate-run p50 ratio is reported, not a goal")
	}
	// The SCHED_BATCH runs are their own block, and reported.
	batch := goalByName(t, "RabbitMQ, 64 concurrent callers, the test process and its broker in SCHED_BATCH")
	if got := batch.values(runs); fmt.Sprint(got) != "[3]" || batch.Check != nil {
		t.Errorf("SCHED_BATCH ratios %v (reported: %v), want [3], reported", got, batch.Check == nil)
	}
	allocs := goalByName(t, "allocations per request")
	if got := allocs.values(runs); fmt.Sprint(got) != "[2]" {
		t.Errorf("allocs/op values %v, want [2]", got)
	}
	if !allocs.Check(2) || allocs.Check(3) {
		t.Error("allocations: the goal is <= 2")
	}
	var b strings.Builder
	write(&b, runs, "test")
	for _, want := range []string{
		"| RabbitMQ, 64 concurrent callers: framework calls/s / bare per-message amqp091-go loop calls/s | >= 3x | 2.67 | 2.00 | 3.33 | no |",
		"| allocations per request through the gate, Echo case (BenchmarkGateRoundTrip allocs/op) | <= 2 | 2.00 | 2.00 | 2.00 | yes |",
		"| RabbitMQ, 64 concurrent callers: broker messages per framework call (replies included) | (reported) | 0.15 | 0.15 | 0.15 | (reported) |",
		"| RabbitMQ, 1 caller: framework p50 latency / bare loop p50 latency, calls alternated in one run (BenchmarkRabbitPaired) | <= 1.2x | 1.20 | 1.15 | 1.25 | yes |",
		"| gate round trip, metrics on / off, requests alternated in one run (BenchmarkGateRoundTripMetricsPaired: what the per-call metrics cost) | <= 1.05x | 1.02 | 1.02 | 1.02 | yes |",
		"| gate round trip, metrics on / off, separate runs (ns / ns) | (reported) | 1.00 | 1.00 | 1.00 | (reported) |",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}

// e2eLine is one JSONL line as scripts/bench.sh writes it.
func e2eLine(label string, round int, tput, p50 float64) string {
	return fmt.Sprintf(`{"label":%q,"round":%d,"summary":{"conns":100,"replies":10,"throughput":%g,"latency_ms":{"p50":%g},"say_latency_ms":{"p50":%g}}}`,
		label, round, tput, p50, p50*2)
}

// e2eLineCPU is e2eLine with the server's CPU per reply (us).
func e2eLineCPU(label string, round int, tput, p50, cpu float64) string {
	return fmt.Sprintf(`{"label":%q,"round":%d,"summary":{"conns":100,"replies":10,"throughput":%g,"latency_ms":{"p50":%g},"server_cpu_us_per_reply":%g}}`,
		label, round, tput, p50, cpu)
}

// sampleE2E is two rounds: the ratios differ per round so that medians,
// mins and maxes are told apart, and round 2 lacks the cluster's 100 x 1.
func sampleE2E() string {
	var lines []string
	for r, k := range []float64{1, 2} {
		r++
		lines = append(lines,
			e2eLine("minecho/100/8", r, 500000, 1), e2eLine("minecho/100/1", r, 80000, 1), e2eLine("minecho/1000/1", r, 60000, 10),
			e2eLine("echoserver/100/8", r, 450000, 1),
			e2eLine("gate-echo/100/8", r, 350000*k/1.5, 2), e2eLine("gate-echo/100/1", r, 60000, 1), e2eLine("gate-echo/1000/1", r, 55000, 12),
			e2eLine("gate-login/100/8", r, 250000*k/1.5, 3), e2eLine("gate-login/100/1", r, 40000, 2), e2eLine("gate-login/1000/1", r, 30000, 20),
			e2eLine("gate-say/100/8", r, 50000, 5), e2eLine("gate-say/100/1", r, 20000, 5), e2eLine("gate-say/1000/1", r, 10000, 50),
			e2eLine("cluster-login/100/8", r, 25000*k, 30),
			e2eLine("gate-nometrics/100/8", r, 350000*k/1.5, 2),
			e2eLine("mosquitto/100/8", r, 100000, 4), e2eLine("mosquitto/1000/1", r, 30000, 20),
			fmt.Sprintf(`{"label":"broker/cluster-login/100/8","round":%d,"broker_messages":%d,"calls":1000,"own_messages":%d,"window_own_messages":%d,"window_calls":800}`, r, 100*r, 161*r-162, 60*r), // round 1: -1, not exported
		)
		// The broker in SCHED_BATCH: 1.2 of the default policy at 100 x 8,
		// 1.25 at 100 x 1 (round 1 only).
		lines = append(lines, e2eLine("cluster-brokerbatch-login/100/8", r, 30000*k, 25),
			fmt.Sprintf(`{"label":"broker/cluster-brokerbatch-login/100/8","round":%d,"broker_messages":100,"calls":1000,"own_messages":100,"window_own_messages":%d,"window_calls":800}`, r, 80*r))
		// The broker on CPU 1: 0.3 and 0.36 of in-process Login at 100 x 8,
		// 1.5 of the broker on CPU 0 at 100 x 1 (round 1 only).
		lines = append(lines, e2eLine("cluster-brokercpu1-login/100/8", r, 50000*k*(1+0.2*float64(r-1)), 12))
		if r == 1 {
			lines = append(lines, e2eLine("cluster-login/100/1", r, 2000, 8), e2eLine("cluster-brokerbatch-login/100/1", r, 2500, 6.5),
				e2eLine("cluster-brokercpu1-login/100/1", r, 3000, 5.5))
		}
	}
	// Three side-by-side slots: Echo at 0.6, 0.8, 0.7 and Login at 0.5,
	// 0.56, 0.6 of the minimal echo server run just before them.
	// The gate with metrics at 0.9, 1, 1 of the one without (100 x 8) and
	// at 1 of it and 1.1 of mosquitto (1000 x 1).
	for i, f := range [][3]float64{{0.6, 0.5, 0.9}, {0.8, 0.56, 1}, {0.7, 0.6, 1}} {
		me := 400000 + 50000*float64(i)
		// By CPU per reply (2 us for the minimal echo server): Echo at
		// 0.7, 0.9, 0.8, Login at 0.6, 0.66, 0.7.
		lines = append(lines, e2eLineCPU("pair/minecho/100/8", i+1, me, 1, 2),
			e2eLineCPU("pair/gate-echo/100/8", i+1, me*f[0], 2, 2/(f[0]+0.1)), e2eLineCPU("pair/gate-login/100/8", i+1, me*f[1], 2, 2/(f[1]+0.1)),
			e2eLine("pair/gate-nometrics/100/8", i+1, me*f[0]/f[2], 2),
			// Echo over WebSocket at 0.8 of TCP, by CPU per reply at 0.75.
			e2eLineCPU("pair/gate-echo-ws/100/8", i+1, me*f[0]*0.8, 2, 2/(f[0]+0.1)/0.75),
			e2eLine("pair/gate-echo/1000/1", i+1, 44000, 20), e2eLine("pair/gate-nometrics/1000/1", i+1, 44000, 20),
			e2eLine("pair/mosquitto/1000/1", i+1, 40000, 25))
	}
	lines = append(lines,
		`{"label":"idle/10000","round":1,"summary":{"conns":10000,"connected":10000,"rss_before":10485760,"rss_open":104857600,"rss_per_conn":9216}}`,
		`{"label":"idle/19000","round":1,"summary":{"conns":19000,"connected":19000,"rss_before":10485760,"rss_open":204857600,"rss_per_conn":11264}}`)
	return strings.Join(lines, "\n") + "\n"
}

func TestE2EGoals(t *testing.T) {
	path := filepath.Join(t.TempDir(), "e2e.jsonl")
	if err := os.WriteFile(path, []byte(sampleE2E()), 0o644); err != nil {
		t.Fatal(err)
	}
	runs, err := readE2E(path)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]goalRow{}
	for _, g := range evalGoals(runs) {
		rows[g.name] = g
	}
	check := func(prefix string, med, lo, hi float64, n int, met string) {
		t.Helper()
		for name, g := range rows {
			// A whole name is its own row, though it prefixes another's.
			if _, whole := rows[prefix]; whole && name != prefix {
				continue
			}
			if strings.HasPrefix(name, prefix) {
				if math.Abs(g.med-med) > 1e-6 || math.Abs(g.min-lo) > 1e-6 || math.Abs(g.max-hi) > 1e-6 || g.rounds != n || g.met != met {
					t.Errorf("%s: median %v min %v max %v over %d rounds, met %q; want %v %v %v, %d, %q", name, g.med, g.min, g.max, g.rounds, g.met, med, lo, hi, n, met)
				}
				return
			}
		}
		t.Errorf("no goal row %q", prefix)
	}
	// The 100 x 8 goals read the side-by-side slots.
	check("gate + Echo handler / minimal echo server, 100 connections x 8 in flight, side by side", 0.7, 0.6, 0.8, 3, "yes")
	check("demo Login (calls Bind) / minimal echo, 100 x 8, side by side", 0.56, 0.5, 0.6, 3, "yes")
	check("gate + Echo handler / minimal echo, 100 x 8, side by side, by CPU per reply", 0.8, 0.7, 0.9, 3, "")
	check("demo Login / minimal echo, 100 x 8, side by side, by CPU per reply", 0.66, 0.6, 0.7, 3, "")
	check("gate + Echo handler over WebSocket / over TCP, 100 x 8, side by side", 0.8, 0.8, 0.8, 3, "") // the whole name
	check("gate + Echo handler over WebSocket / over TCP, 100 x 8, side by side, by CPU per reply", 0.75, 0.75, 0.75, 3, "")
	// The rounds' separate runs are reported. Round 1: 233333/500000 =
	// 0.467, round 2: 466667/500000 = 0.933.
	check("gate + Echo handler / minimal echo, 100 x 8, in separate runs", 0.7, 0.7*2/3, 0.7*4/3, 2, "")
	check("demo Login / minimal echo, 100 x 8, in separate runs", 0.5, 1.0/3, 2.0/3, 2, "")
	check("demo Login / minimal echo, 1000 x 1", 0.5, 0.5, 0.5, 2, "")
	check("demo Say (broadcast to a room of 10) says/s / minimal echo replies/s, 100 x 8", 0.1, 0.1, 0.1, 2, "")
	check("bench/echoserver", 0.9, 0.9, 0.9, 2, "")
	// Cluster / in-process Login: 25000/166667 = 0.15 and 50000/333333 = 0.15.
	check("cluster (gate, modules, RabbitMQ: 3 processes) Login / in-process Login, 100 x 8", 0.15, 0.15, 0.15, 2, "yes")
	check("cluster Login, 100 x 1: p50 latency", 8, 8, 8, 1, "yes")
	// Broker messages per call over the measured time (the goal): 60/800
	// and 120/800, median 0.1125; over the whole run 0.1 and 0.2.
	check("cluster Login, 100 x 8: broker messages per framework call, measured time", 0.1125, 0.075, 0.15, 2, "yes")
	check("cluster Login, 100 x 8: broker messages per framework call, whole run", 0.15, 0.1, 0.2, 2, "")
	// The broker in SCHED_BATCH, reported: 30000/166667 = 0.18, 80/800
	// and 160/800 broker messages per call.
	check("cluster Login, the broker in SCHED_BATCH, 100 x 1: p50 latency", 6.5, 6.5, 6.5, 1, "")
	check("cluster Login, the broker in SCHED_BATCH / its default policy, 100 x 1", 1.25, 1.25, 1.25, 1, "")
	check("cluster Login, the broker in SCHED_BATCH / its default policy, 100 x 8", 1.2, 1.2, 1.2, 2, "")
	check("cluster Login, the broker in SCHED_BATCH / in-process Login, 100 x 8", 0.18, 0.18, 0.18, 2, "")
	check("cluster Login, the broker in SCHED_BATCH, 100 x 8: broker messages per framework call", 0.15, 0.1, 0.2, 2, "")
	// The broker on CPU 1, reported: 50000/166667 = 0.3 and 120000/333333 = 0.36.
	check("cluster Login, the broker on CPU 1 (beside the load tool, not the gate and modules), 100 x 1: p50 latency", 5.5, 5.5, 5.5, 1, "")
	check("cluster Login, the broker on CPU 1 / on CPU 0 with the gate and modules, 100 x 1", 1.5, 1.5, 1.5, 1, "")
	check("cluster Login, the broker on CPU 1 / in-process Login, 100 x 8", 0.33, 0.3, 0.36, 2, "")
	check("gate with metrics / without, 100 x 8, side by side", 1, 0.9, 1, 3, "yes")
	check("gate with per-call metrics / without (Options.NoMetrics), 1000 x 1, side by side", 1, 1, 1, 3, "yes")
	check("gate with metrics / without, 100 x 8, in separate runs", 1, 1, 1, 2, "")
	check("gate + Echo handler requests/s / mosquitto round trips/s, 1000 x 1, side by side", 1.1, 1.1, 1.1, 3, "yes")
	check("gate + Echo handler / mosquitto, 1000 x 1, in separate runs", 55000.0/30000, 55000.0/30000, 55000.0/30000, 2, "")
	check("resident memory per idle connection, 10000 connections asked", 9, 9, 9, 1, "yes")
	check("resident memory per idle connection, 19000 connections asked", 11, 11, 11, 1, "no")
	if _, ok := rows["cluster Login, 100 x 1: broker messages per framework call, measured time"]; ok {
		t.Error("a goal without data got a row")
	}

	var b strings.Builder
	svg := filepath.Join(t.TempDir(), "throughput.svg")
	writeE2E(&b, runs, svg)
	out := b.String()
	for _, want := range []string{
		"| cluster Login, 100 x 1: p50 latency | <= 10 ms | 8.00 ms | 8.00 ms | 8.00 ms | 1 | yes |",
		"| resident memory per idle connection, 10000 connections asked | <= 10 KiB | 9.00 KiB | 9.00 KiB | 9.00 KiB | 1 | yes |",
		"| demo Login / minimal echo, 1000 x 1 | (reported) | 0.50 | 0.50 | 0.50 | 2 | (reported) |",
		"| cluster-login/100/8 | 1 | 100 | 1000 | 0.10 | - | 60 | 800 | 0.075 |",
		"| cluster-login/100/8 | 2 | 200 | 1000 | 0.20 | 160 | 120 | 800 | 0.150 |",
		"| gate-say/100/8 | 50000 | 10.00 |", // the say's round trip, not the fan-out latency
		"| 19000 | 19000 | 10.0 MiB | 195.4 MiB | **11.0 KiB** |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	plot, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range e2eServers {
		if !strings.Contains(string(plot), ">"+s.prefix+"</text>") {
			t.Errorf("throughput.svg has no legend entry for %s", s.prefix)
		}
	}
	if n := strings.Count(string(plot), "<rect x="); n != 10+22 {
		t.Errorf("throughput.svg has %d bars and legend boxes, want 10 legend boxes + 22 bars (echoserver and gate-nometrics: 1 load, the three clusters and mosquitto: 2)", n)
	}
}
