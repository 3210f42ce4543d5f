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
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ratio is one goal: num/den (or den/num when Inverse) against a bound.
type ratio struct {
	Name     string
	Num, Den string // benchmark names without the -N suffix
	Goal     string
	Check    func(float64) bool
}

var ratios = []ratio{
	{"generated dispatch speed-up over reflect.Value.Call (reflect ns / generated ns)",
		"BenchmarkDispatchReflect", "BenchmarkDispatchGenerated", ">= 10x", func(r float64) bool { return r >= 10 }},
	{"in-process typed Call / bare channel round trip (ns / ns)",
		"BenchmarkCallInProc", "BenchmarkChanRoundTrip", "<= 3x", func(r float64) bool { return r <= 3 }},
}

type result struct {
	ns, bytes, allocs float64
}

func main() {
	in := flag.String("in", "", "go test -bench output (several runs appended)")
	out := flag.String("out", "bench/results.md", "markdown file to write")
	cmdline := flag.String("cmd", "", "the command that produced the input, for the report")
	flag.Parse()
	f, err := os.Open(*in)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(2)
	}
	defer f.Close()
	runs := parse(f)
	if len(runs) == 0 {
		fmt.Fprintln(os.Stderr, "benchreport: no benchmark results in", *in)
		os.Exit(1)
	}
	var b strings.Builder
	write(&b, runs, *cmdline)
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
		var res result
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				continue
			}
			switch fields[i+1] {
			case "ns/op":
				res.ns = v
			case "B/op":
				res.bytes = v
			case "allocs/op":
				res.allocs = v
			}
		}
		cur[name] = res
	}
	if len(cur) > 0 {
		runs = append(runs, cur)
	}
	return runs
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
	fmt.Fprintf(b, "\n## Goals\n\n| ratio | goal | median | min | max | met |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, r := range ratios {
		var vals []float64
		for _, run := range runs {
			n, ok1 := run[r.Num]
			d, ok2 := run[r.Den]
			if ok1 && ok2 && d.ns > 0 {
				vals = append(vals, n.ns/d.ns)
			}
		}
		if len(vals) == 0 {
			continue
		}
		sort.Float64s(vals)
		m := median(vals)
		met := "no"
		if r.Check(m) {
			met = "yes"
		}
		fmt.Fprintf(b, "| %s | %s | %.2fx | %.2fx | %.2fx | %s |\n", r.Name, r.Goal, m, vals[0], vals[len(vals)-1], met)
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
	fmt.Fprintf(b, "\n## Benchmarks (median of runs)\n\n| benchmark | ns/op | B/op | allocs/op | runs |\n| --- | ---: | ---: | ---: | ---: |\n")
	for _, n := range sorted {
		var ns, by, al []float64
		for _, run := range runs {
			if r, ok := run[n]; ok {
				ns = append(ns, r.ns)
				by = append(by, r.bytes)
				al = append(al, r.allocs)
			}
		}
		fmt.Fprintf(b, "| %s | %.1f | %.0f | %.0f | %d |\n", strings.TrimPrefix(n, "Benchmark"), median(ns), median(by), median(al), len(ns))
	}
}

func cpuModel() string {
	out, err := exec.Command("sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").Output()
	if err != nil {
		return "unknown CPU"
	}
	return strings.TrimSpace(string(out))
}
