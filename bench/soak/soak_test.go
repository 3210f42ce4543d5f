package main

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestTrend(t *testing.T) {
	for _, tc := range []struct {
		name     string
		xs, mins []float64
		slope    float64
		drift    float64
		wantFlat bool
	}{
		{"flat", []float64{100, 100, 100}, []float64{0, 1, 2}, 0, 0, true},
		{"growing 10 per minute", []float64{100, 110, 120}, []float64{0, 1, 2}, 10, 20.0 / 110, false},
		{"noise around flat", []float64{100, 102, 98, 100}, []float64{0, 1, 2, 3}, -0.4, -0.012, true},
	} {
		got := trendOf(tc.xs, tc.mins)
		if math.Abs(got.SlopePerMin-tc.slope) > 1e-9 || math.Abs(got.Drift-tc.drift) > 1e-9 || got.flat() != tc.wantFlat {
			t.Errorf("%s: %+v; want slope %v, drift %v, flat %v", tc.name, got, tc.slope, tc.drift, tc.wantFlat)
		}
	}
}

// TestSoakShort runs the command for a few seconds against the real demo
// server and checks that it sampled every phase and wrote both files.
func TestSoakShort(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the demo server and loads it; skipped with -short")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "server")
	if out, err := exec.Command("go", "build", "-o", bin, "../../demo/server").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out, svg := filepath.Join(dir, "soak.md"), filepath.Join(dir, "soak.svg")
	err := run(t.Context(), []string{"-server", bin, "-conf", "../../demo/conf/server.conf", "-conns", "40", "-rate", "40",
		"-duration", "2s", "-warmup", "500ms", "-every", "250ms", "-out", out, "-svg", svg, "-quiet"})
	if err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| RSS MiB |", "| goroutines |", "| open fds |", "| idle |", "| setup |", "| load |", "| after |",
		"connections  40 asked, 40 set up, 0 failed, 0 lost", "![RSS, goroutines and open fds over the run](soak.svg)"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if p, err := os.ReadFile(svg); err != nil || strings.Count(string(p), "<polyline") != 3 {
		t.Errorf("svg: %v, %d plots, want 3", err, strings.Count(string(p), "<polyline"))
	}
}
