package core

import (
	"bytes"
	"log/slog"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"testing"
	"time"
)

// heapGoal is the runtime's heap goal for GOGC p (floorPercent's comment).
func heapGoal(p int, live, other uint64) uint64 {
	return max(live+(live+other)*uint64(p)/100, heapMinimum*uint64(p)/100)
}

func TestFloorPercent(t *testing.T) {
	const mib = 1 << 20
	for _, floor := range []uint64{16 * mib, 32 * mib, 1024 * mib} {
		for _, live := range []uint64{0, 64 << 10, mib, 3 * mib, 8 * mib, 15 * mib, 16 * mib, 40 * mib, 2048 * mib} {
			for _, other := range []uint64{0, 256 << 10, 2 * mib, 20 * mib} {
				for _, base := range []int{50, 100, 400} {
					p := floorPercent(floor, live, other, base)
					switch {
					case p < base:
						t.Errorf("floor %d live %d other %d base %d: GOGC %d below base", floor, live, other, base, p)
					case live >= floor && p != base:
						t.Errorf("floor %d live %d other %d base %d: GOGC %d, want base once live reaches the floor", floor, live, other, base, p)
					case live < floor && heapGoal(p, live, other) < floor:
						t.Errorf("floor %d live %d other %d base %d: GOGC %d gives goal %d, under the floor", floor, live, other, base, p, heapGoal(p, live, other))
					case p > base && heapGoal(p-1, live, other) >= floor:
						t.Errorf("floor %d live %d other %d base %d: GOGC %d is not the least (%d reaches the floor too)", floor, live, other, base, p, p-1)
					}
				}
			}
		}
	}
	if p := floorPercent(32<<20, mib, 0, -1); p != -1 {
		t.Errorf("GOGC=off: got %d, want -1 (left off)", p)
	}
}

func readMetric(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

var garbageSink []byte

// garbageCycles makes n MiB of short-lived garbage in 1 KiB pieces and
// returns how many collections ran meanwhile.
func garbageCycles(n int) uint64 {
	before := readMetric("/gc/cycles/total:gc-cycles")
	for range n << 10 {
		garbageSink = make([]byte, 1024)
	}
	garbageSink = nil
	return readMetric("/gc/cycles/total:gc-cycles") - before
}

// TestHeapFloor: with a floor, garbage on a small live heap is collected
// a floor at a time, not 4 MiB at a time; its release restores GOGC.
// Not parallel: GOGC is the process's.
func TestHeapFloor(t *testing.T) {
	base := debug.SetGCPercent(100)
	debug.SetGCPercent(base)
	if base != 100 {
		t.Fatalf("GOGC is %d in this test process; the test wants the default 100", base)
	}
	var logs bytes.Buffer
	release := holdHeapFloor(64, slog.New(slog.NewTextHandler(&logs, nil)))
	floorMu.Lock()
	f := floorOn
	floorMu.Unlock()
	if f == nil {
		t.Fatal("no floor running after holdHeapFloor(64)")
	}
	if f.floor != 64<<20 {
		// An App of another test still holds the default floor.
		t.Fatalf("floor %d MiB, want 64: an App left running holds another", f.floor>>20)
	}
	if !strings.Contains(logs.String(), "gc heap floor") || !strings.Contains(logs.String(), "heap_floor_mb=64") {
		t.Errorf("start-up log %q lacks the floor", logs.String())
	}
	runtime.GC()
	withFloor := garbageCycles(512)
	goal := readMetric("/gc/heap/goal:bytes")
	if goal < 60<<20 {
		t.Errorf("heap goal %d MiB with a 64 MiB floor", goal>>20)
	}
	// 512 MiB of garbage at a 64 MiB goal: about 8 collections (at the
	// 4 MiB minimum of a small heap without the floor, over 100).
	if withFloor > 20 {
		t.Errorf("%d collections for 512 MiB of garbage under a 64 MiB floor", withFloor)
	}
	release()
	release() // a second release is a no-op
	if now := debug.SetGCPercent(base); now != base {
		t.Errorf("GOGC %d after the release, want %d back", now, base)
	}
	runtime.GC()
	without := garbageCycles(512)
	if without < 3*withFloor {
		t.Errorf("collections for 512 MiB: %d after the release, %d under the floor; want far more without", without, withFloor)
	}
	t.Logf("collections for 512 MiB of garbage: %d with a 64 MiB floor, %d without", withFloor, without)
}

// TestHeapFloorYieldsToSetGCPercent: a GOGC set by the program wins over
// the floor, which stops and leaves it alone.
func TestHeapFloorYieldsToSetGCPercent(t *testing.T) {
	base := debug.SetGCPercent(100)
	debug.SetGCPercent(base)
	var logs bytes.Buffer
	release := holdHeapFloor(64, slog.New(slog.NewTextHandler(&logs, nil)))
	defer debug.SetGCPercent(base)
	floorMu.Lock()
	f := floorOn
	floorMu.Unlock()
	debug.SetGCPercent(150)
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		f.mu.Lock()
		stopped := f.stopped
		f.mu.Unlock()
		if stopped {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the floor did not notice GOGC set elsewhere within 10 s")
		}
		time.Sleep(10 * time.Millisecond) // let the cleanup goroutine run; polled with a deadline
	}
	release()
	if now := debug.SetGCPercent(base); now != 150 {
		t.Errorf("GOGC %d after the floor stopped and was released, want the program's 150", now)
	}
	if !strings.Contains(logs.String(), "GOGC was set elsewhere") {
		t.Errorf("log %q does not say why the floor stopped", logs.String())
	}
}

func TestHeapFloorOff(t *testing.T) {
	for _, mb := range []int{0, -1} {
		release := holdHeapFloor(mb, slog.New(slog.DiscardHandler))
		floorMu.Lock()
		on := floorOn
		floorMu.Unlock()
		release()
		if on != nil {
			t.Errorf("holdHeapFloor(%d) started a floor", mb)
		}
	}
	if got := (GCConfig{}).heapFloorMB(); got != DefaultHeapFloorMB {
		t.Errorf("zero GCConfig: floor %d, want the default %d", got, DefaultHeapFloorMB)
	}
}
