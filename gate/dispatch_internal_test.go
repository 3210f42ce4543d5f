package gate

import (
	"testing"
	"time"
	"unsafe"

	"github.com/mqantgen/mqantgen/internal/workpool"
)

// TestCallQueueStaysSmall: a connection's queue to a module that never
// runs dry (a client keeping calls in flight for hours) does not grow its
// slice with every call it ever carried.
func TestCallQueueStaysSmall(t *testing.T) {
	g := &Gate{cfg: gateConfig{maxInflight: 64}}
	g.drains = workpool.New(func(drainJob) {}, time.Minute) // the queue stays running; the test pops
	defer g.drains.Close()
	c := &conn{g: g}
	c.calls.c = c
	d := &c.calls
	for i := 0; i < 100000; i++ {
		for j := 0; j < 3; j++ {
			d.dispatch(call{typ: "M", fn: "Handler_X", topic: "M/Handler_X/1"})
		}
		d.mu.Lock()
		q := d.queues["M"]
		for j := 0; j < 3; j++ { // what drain does for each call it runs
			q.calls[q.head] = call{}
			q.head++
			d.finishLocked()
		}
		d.mu.Unlock()
	}
	q := d.queues["M"]
	if n := cap(q.calls); n > 256 {
		t.Fatalf("after 300,000 calls, at most 3 waiting at a time, the queue's slice holds %d", n)
	}
}

// TestInlineCallSize: the per-request object fills its size class (352
// bytes) and does not spill into the next; a field added to core.Request
// or core.InlineCall takes room from inlineBody.
func TestInlineCallSize(t *testing.T) {
	if n := unsafe.Sizeof(inlineCall{}); n != 352 {
		t.Fatalf("inlineCall is %d bytes, want 352 (adjust inlineBody)", n)
	}
}
