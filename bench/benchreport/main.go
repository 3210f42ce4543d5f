// Command benchreport turns `go test -bench` output into the markdown
// results file: a table of medians over repeated runs, and the ratios the
// project's performance goals are stated in, each computed within one run
// and then summarised (median, min, max) across runs.
//
//	go test -run NONE -bench . -count 1 ./pkg >> raw.txt   # repeated N times
//	go run ./bench/benchreport -in raw.txt -out bench/results.md
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// microGoal is one goal: Num's Metric divided by Den's, or Num's Metric
// itself when Den is empty, against a bound.
type microGoal struct {
	Name     string
	Num, Den string // benchmark names without the -N suffix
	Metric   string // a unit of the benchmark line: ns/op, calls/s, p50-us, ...
	Goal     string
	Check    func(float64) bool // nil: reported, no goal
}

var microGoals = []microGoal{
	{"generated dispatch speed-up over reflect.Value.Call (reflect ns / generated ns)",
		"BenchmarkDispatchReflect", "BenchmarkDispatchGenerated", "ns/op", ">= 10x", func(r float64) bool { return r >= 10 }},
	{"in-process typed Call / bare channel round trip (ns / ns)",
		"BenchmarkCallInProc", "BenchmarkChanRoundTrip", "ns/op", "<= 3x", func(r float64) bool { return r <= 3 }},
	{"RabbitMQ, 64 concurrent callers: framework calls/s / bare per-message amqp091-go loop calls/s",
		"BenchmarkRabbitFramework/conc=64", "BenchmarkRabbitBare/conc=64", "calls/s", ">= 3x", func(r float64) bool { return r >= 3 }},
	{"RabbitMQ, 64 concurrent callers, the test process and its broker in SCHED_BATCH (chrt -b): framework calls/s / bare loop calls/s",
		"BenchmarkRabbitFrameworkSchedBatch/conc=64", "BenchmarkRabbitBareSchedBatch/conc=64", "calls/s", "(reported)", nil},
	{"RabbitMQ, 1 caller: framework p50 latency / bare loop p50 latency, calls alternated in one run (BenchmarkRabbitPaired)",
		"BenchmarkRabbitPaired", "", "p50-ratio", "<= 1.2x", func(r float64) bool { return r <= 1.2 }},
	{"RabbitMQ, 1 caller: framework p50 latency / bare loop p50 latency, separate runs",
		"BenchmarkRabbitFramework/conc=1", "BenchmarkRabbitBare/conc=1", "p50-us", "(reported)", nil},
	{"RabbitMQ, 64 concurrent callers: broker messages per framework call (replies included)",
		"BenchmarkRabbitFramework/conc=64", "", "broker-msgs/call", "(reported)", nil},
	{"allocations per request through the gate, Echo case (BenchmarkGateRoundTrip allocs/op)",
		"BenchmarkGateRoundTrip", "", "allocs/op", "<= 2", func(r float64) bool { return r <= 2 }},
	{"gate round trip, metrics on / off, requests alternated in one run (BenchmarkGateRoundTripMetricsPaired: what the per-call metrics cost)",
		"BenchmarkGateRoundTripMetricsPaired", "", "metrics-ratio", "<= 1.05x", func(r float64) bool { return r <= 1.05 }},
	{"gate round trip, metrics on / off, separate runs (ns / ns)",
		"BenchmarkGateRoundTrip", "BenchmarkGateRoundTripNoMetrics", "ns/op", "(reported)", nil},
	{"gate round trip, tracing on (every request sampled, 3 spans) / off (ns / ns: what tracing costs)",
		"BenchmarkGateRoundTripTracing", "BenchmarkGateRoundTrip", "ns/op", "(reported)", nil},
}

// result is one benchmark line: value per unit.
type result map[string]float64

func main() {
	in := flag.String("in", "", "go test -bench output (several runs appended)")
	out := flag.String("out", "bench/results.md", "markdown file to write")
	cmdline := flag.String("cmd", "", "the command that produced the input, for the report")
	e2ePath := flag.String("e2e", "", "end-to-end results: mqantbench JSON summaries, one labelled line each")
	svgPath := flag.String("svg", "", "where to write the throughput plot (with -e2e)")
	flag.Parse()
	f, err := os.Open(*in)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(2)
	}
	defer f.Close()
	runs := parse(f)
	if len(runs) == 0 && *e2ePath == "" {
		fmt.Fprintln(os.Stderr, "benchreport: no benchmark results in", *in)
		os.Exit(1)
	}
	var b strings.Builder
	write(&b, runs, *cmdline)
	if *e2ePath != "" {
		e2e, err := readE2E(*e2ePath)
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchreport:", err)
			os.Exit(1)
		}
		writeE2E(&b, e2e, *svgPath)
	}
	if err := os.WriteFile(*out, []byte(b.String()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
	fmt.Print(b.String())
}

// parse splits the input into runs: a run ends at a line starting "ok" or
// "PASS" after some results. Results of one run were measured together.
func parse(r io.Reader) []map[string]result {
	var runs []map[string]result
	cur := map[string]result{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "ok ") || strings.HasPrefix(line, "ok\t") {
			if len(cur) > 0 {
				runs = append(runs, cur)
				cur = map[string]result{}
			}
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		name := fields[0]
		if i := strings.LastIndex(name, "-"); i > 0 {
			name = name[:i]
		}
		res := result{}
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				continue
			}
			res[fields[i+1]] = v
		}
		cur[name] = res
	}
	if len(cur) > 0 {
		runs = append(runs, cur)
	}
	return runs
}

// values returns the goal's figure in each run (result block) that has it.
func (g microGoal) values(runs []map[string]result) []float64 {
	var vals []float64
	for _, run := range runs {
		n, ok := run[g.Num]
		v, has := n[g.Metric]
		if !ok || !has {
			continue
		}
		if g.Den == "" {
			vals = append(vals, v)
			continue
		}
		if d, ok := run[g.Den]; ok && d[g.Metric] > 0 {
			vals = append(vals, v/d[g.Metric])
		}
	}
	return vals
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func write(b *strings.Builder, runs []map[string]result, cmdline string) {
	fmt.Fprintf(b, "# Benchmark results\n\nWritten by `make bench` (bench/benchreport); do not edit by hand. The analysis is in [REPORT.md](REPORT.md).\n\n")
	host, _ := os.Hostname()
	cpu := cpuModel()
	fmt.Fprintf(b, "- date: %s\n- machine: %s, %s, %d CPUs, %s/%s, %s\n- result blocks: %d (one per package per run; each ratio is computed inside one block, then summarised)\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), host, cpu, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), len(runs))
	if cmdline != "" {
		fmt.Fprintf(b, "- command: `%s`\n", cmdline)
	}
	fmt.Fprintf(b, "\n## Goals\n\n| measure | goal | median | min | max | met |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, r := range microGoals {
		vals := r.values(runs)
		if len(vals) == 0 {
			continue
		}
		sort.Float64s(vals)
		m := median(vals)
		met := "(reported)"
		if r.Check != nil {
			met = "no"
			if r.Check(m) {
				met = "yes"
			}
		}
		fmt.Fprintf(b, "| %s | %s | %.2f | %.2f | %.2f | %s |\n", r.Name, r.Goal, m, vals[0], vals[len(vals)-1], met)
	}
	names := map[string]bool{}
	for _, run := range runs {
		for n := range run {
			names[n] = true
		}
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	fmt.Fprintf(b, "\n## Benchmarks (median of runs)\n\n| benchmark | ns/op | B/op | allocs/op | other metrics | runs |\n| --- | ---: | ---: | ---: | --- | ---: |\n")
	for _, n := range sorted {
		vals := map[string][]float64{}
		count := 0
		for _, run := range runs {
			if r, ok := run[n]; ok {
				count++
				for unit, v := range r {
					vals[unit] = append(vals[unit], v)
				}
			}
		}
		var other []string
		units := make([]string, 0, len(vals))
		for u := range vals {
			units = append(units, u)
		}
		sort.Strings(units)
		for _, u := range units {
			if u != "ns/op" && u != "B/op" && u != "allocs/op" {
				// Small values (ratios, messages per call) keep two decimals.
				format := "%.0f %s"
				if m := median(vals[u]); m < 10 && m != math.Trunc(m) {
					format = "%.2f %s"
				}
				other = append(other, fmt.Sprintf(format, median(vals[u]), u))
			}
		}
		fmt.Fprintf(b, "| %s | %.1f | %.0f | %.0f | %s | %d |\n", strings.TrimPrefix(n, "Benchmark"),
			median(vals["ns/op"]), median(vals["B/op"]), median(vals["allocs/op"]), strings.Join(other, ", "), count)
	}
}

func cpuModel() string {
	out, err := exec.Command("sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").Output()
	if err != nil {
		return "unknown CPU"
	}
	return strings.TrimSpace(string(out))
}
