package core

import (
	"log/slog"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// DefaultHeapFloorMB is the heap floor of a process whose config does not
// set GC.HeapFloorMB.
const DefaultHeapFloorMB = 32

// heapMinimum is the Go runtime's heap goal floor at GOGC=100; it scales
// with GOGC (runtime/mgcpacer.go, defaultHeapMinimum).
const heapMinimum = 4 << 20

// A game server's live heap is often small while it makes garbage fast:
// every request leaves its call, its body and its reply behind. Go
// collects when the heap has grown by GOGC percent over what the last
// collection kept, and never below 4 MiB: with 1 MiB live and 300k
// requests a second, that is 55 collections a second, each scanning every
// goroutine's stack (make bench, REPORT.md "Sixth pass"). The heap floor
// lets the heap reach the floor before a collection, and changes nothing
// once the live heap is large enough for GOGC alone to give a goal above
// it. It does so by setting GOGC after each collection, as an operator
// could by hand for one heap size.
//
// gcFloor is process-wide: the runtime has one GOGC. The first App that
// starts with a floor sets it, later ones share it, and when the last one
// stops GOGC is what it was before.
type gcFloor struct {
	floor uint64 // bytes
	base  int    // GOGC before the floor; never set below it
	log   *slog.Logger

	mu      sync.Mutex
	set     int  // the GOGC this floor last set
	stopped bool // no more adjustments; GOGC restored
	samples [4]metrics.Sample
}

var (
	floorMu    sync.Mutex
	floorOn    *gcFloor
	floorUsers int
)

// holdHeapFloor starts the process's heap floor of mb MiB, or joins the
// one already running; release ends this hold. mb <= 0 holds nothing.
func holdHeapFloor(mb int, log *slog.Logger) (release func()) {
	if mb <= 0 {
		return func() {}
	}
	floorMu.Lock()
	defer floorMu.Unlock()
	if floorOn == nil {
		gogc := []metrics.Sample{{Name: "/gc/gogc:percent"}}
		metrics.Read(gogc)
		base := int(int64(gogc[0].Value.Uint64())) // -1 (off) reads as the uint64 of -1
		if base < 0 {
			log.Info("gc heap floor not set: GOGC=off", "heap_floor_mb", mb)
			return func() {}
		}
		floorOn = &gcFloor{floor: uint64(mb) << 20, base: base, set: base, log: log}
		floorOn.samples[0].Name = "/gc/heap/live:bytes"
		floorOn.samples[1].Name = "/gc/scan/stack:bytes"
		floorOn.samples[2].Name = "/gc/scan/globals:bytes"
		floorOn.samples[3].Name = "/gc/gogc:percent"
		floorOn.adjust()
		floorOn.arm()
		log.Info("gc heap floor", "heap_floor_mb", mb, "gogc", base)
	} else if floorOn.floor != uint64(mb)<<20 {
		log.Warn("gc heap floor already set by another App of this process; keeping it",
			"heap_floor_mb", floorOn.floor>>20, "asked_mb", mb)
	}
	floorUsers++
	f := floorOn
	var once sync.Once
	return func() {
		once.Do(func() {
			floorMu.Lock()
			defer floorMu.Unlock()
			floorUsers--
			if floorUsers == 0 && floorOn == f {
				floorOn = nil
				f.stop()
			}
		})
	}
}

// arm asks for one call of cycle after the next collection: a new object,
// unreachable at once, whose cleanup runs once a collection has freed it.
func (f *gcFloor) arm() {
	p := new([16]byte) // not a tiny object: those may share a block and never be freed alone
	runtime.AddCleanup(p, func(f *gcFloor) { f.cycle() }, f)
}

// cycle runs after a collection: it sets GOGC for the live heap that
// collection found, and arms itself for the next.
func (f *gcFloor) cycle() {
	if f.adjust() {
		f.arm()
	}
}

// adjust sets GOGC for the heap now live; false once stopped.
func (f *gcFloor) adjust() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return false
	}
	metrics.Read(f.samples[:])
	if now := int(f.samples[3].Value.Uint64()); now != f.set {
		// Someone else called debug.SetGCPercent: theirs wins.
		f.stopped = true
		f.log.Warn("gc heap floor off: GOGC was set elsewhere", "gogc", now, "floor_set", f.set)
		return false
	}
	p := floorPercent(f.floor, f.samples[0].Value.Uint64(), f.samples[1].Value.Uint64()+f.samples[2].Value.Uint64(), f.base)
	if p != f.set {
		debug.SetGCPercent(p)
		f.set = p
	}
	return true
}

// stop ends the adjustments and restores GOGC.
func (f *gcFloor) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.stopped {
		f.stopped = true
		debug.SetGCPercent(f.base)
	}
}

// floorPercent is the least GOGC, not below base, whose heap goal reaches
// floor when live bytes of heap and other bytes of stacks and globals
// survived the last collection. The runtime's goal for GOGC p is
// max(live + (live+other)*p/100, heapMinimum*p/100) (gcControllerState's
// commit); either term reaching the floor is enough.
func floorPercent(floor, live, other uint64, base int) int {
	if base < 0 || live >= floor {
		return base
	}
	p := (floor*100 + heapMinimum - 1) / heapMinimum // by the minimum heap alone
	if scan := live + other; scan > 0 {
		p = min(p, ((floor-live)*100+scan-1)/scan)
	}
	return max(int(p), base)
}
