package gate

import (
	"io"
	"log/slog"
	"runtime"
	"testing"
	"time"
)

func queueGate(max, bytes int, age time.Duration) *Gate {
	return &Gate{log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		cfg: gateConfig{sessQueueMax: max, sessQueueBytes: bytes, sessQueueAge: age, sessInflight: 32, sessExpiry: time.Minute}}
}

// TestSessionQueueBounds: an away session keeps at most SessionQueueMax
// pushes and SessionQueueBytes bytes, none older than SessionQueueAge,
// dropping the oldest and counting every drop for the client.
func TestSessionQueueBounds(t *testing.T) {
	body := make([]byte, 100)
	cost := msgOverhead + len("T/x") + len(body)

	s := newPSession(queueGate(3, 1<<20, time.Hour), "s", "c", "u", [32]byte{}, false)
	for range 5 {
		s.push("T/x", body)
	}
	if len(s.msgs) != 3 || s.dropped != 2 || s.msgs[0].pid != 3 {
		t.Errorf("count bound: %d kept (first id %d), %d dropped; want 3 kept from id 3, 2 dropped", len(s.msgs), s.msgs[0].pid, s.dropped)
	}

	s = newPSession(queueGate(1000, 2*cost+10, time.Hour), "s", "c", "u", [32]byte{}, false)
	for range 4 {
		s.push("T/x", body)
	}
	if len(s.msgs) != 2 || s.bytes != 2*cost || s.dropped != 2 {
		t.Errorf("bytes bound: %d kept, %d bytes, %d dropped; want 2, %d, 2", len(s.msgs), s.bytes, s.dropped, 2*cost)
	}
	s.push("T/x", make([]byte, 3*cost)) // larger than the whole bound: dropped itself
	if len(s.msgs) != 2 || s.dropped != 3 {
		t.Errorf("oversized push: %d kept, %d dropped; want 2, 3", len(s.msgs), s.dropped)
	}

	s = newPSession(queueGate(1000, 1<<20, time.Minute), "s", "c", "u", [32]byte{}, false)
	s.push("T/x", body)
	s.push("T/x", body)
	s.msgs[0].at -= int64(2 * time.Minute) // queued two minutes ago
	s.push("T/x", body)
	if len(s.msgs) != 2 || s.dropped != 1 || s.g.stats.sessDropped.Load() != 1 {
		t.Errorf("age bound: %d kept, %d dropped; want 2, 1", len(s.msgs), s.dropped)
	}
}

// BenchmarkSessionQueue is the cost of keeping a push for an away
// persistent session: B/op and allocs/op are the queue's own per push (the
// body is the sender's, handed over, not copied); heap-B/msg is what a
// full queue holds per chat message, body included.
func BenchmarkSessionQueue(b *testing.B) {
	g := queueGate(MaxSessionQueueMax, 1<<30, time.Hour)
	body := []byte(`{"roomName":"lobby","say":"hello there","userName":"alice"}`)
	b.ReportAllocs()
	s := newPSession(g, "s", "c", "u", [32]byte{}, false)
	n := 0
	for b.Loop() {
		if n == MaxSessionQueueMax {
			s, n = newPSession(g, "s", "c", "u", [32]byte{}, false), 0
		}
		s.push("Chat/OnSay", body)
		n++
	}
	b.StopTimer()
	const fill = 50000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s = newPSession(g, "s", "c", "u", [32]byte{}, false)
	for range fill {
		s.push("Chat/OnSay", append([]byte(nil), body...))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/fill, "heap-B/msg")
	runtime.KeepAlive(s)
}
