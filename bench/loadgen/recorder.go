package loadgen

import (
	"sync"
	"sync/atomic"
	"time"
)

// recorder collects latencies and failures from every connection's reader
// goroutine. Connections are spread over shards, each with its own lock, so
// that readers rarely contend; each shard keeps the measurement window's
// histogram and the current second's, which the progress line takes and
// resets. A result counts in the summary only when its request was sent
// inside the measurement window (after the warm-up, before the end); the
// progress line counts everything.
type recorder struct {
	shards []shard

	errors, timeouts       atomic.Int64 // inside the window
	allErrors, allTimeouts atomic.Int64 // since the start, for the progress line
	firstErr               atomic.Pointer[string]
}

type shard struct {
	mu       sync.Mutex
	total    Histogram
	interval Histogram
	_        [64]byte // keep neighbouring shards' locks off one cache line
}

func newRecorder(n int) *recorder { return &recorder{shards: make([]shard, max(n, 1))} }

// record adds one latency, measured on connection conn.
func (r *recorder) record(conn int, d time.Duration, measured bool) {
	s := &r.shards[conn%len(r.shards)]
	s.mu.Lock()
	if measured {
		s.total.Record(d)
	}
	s.interval.Record(d)
	s.mu.Unlock()
}

// fail counts one error and keeps the first error's text.
func (r *recorder) fail(text string, measured bool) {
	r.allErrors.Add(1)
	if measured {
		r.errors.Add(1)
	}
	if r.firstErr.Load() == nil {
		r.firstErr.CompareAndSwap(nil, &text)
	}
}

// timeout counts one request that got no reply in time.
func (r *recorder) timeout(measured bool) {
	r.allTimeouts.Add(1)
	if measured {
		r.timeouts.Add(1)
	}
}

// firstError returns the text of the first error, or "".
func (r *recorder) firstError() string {
	if p := r.firstErr.Load(); p != nil {
		return *p
	}
	return ""
}

// takeInterval merges and resets the per-second histograms into into.
func (r *recorder) takeInterval(into *Histogram) {
	into.Reset()
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		into.Merge(&s.interval)
		s.interval.Reset()
		s.mu.Unlock()
	}
}

// totals merges the window's histograms into into.
func (r *recorder) totals(into *Histogram) {
	into.Reset()
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		into.Merge(&s.total)
		s.mu.Unlock()
	}
}
