package rabbitmq

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Stats counts what this transport knows about calls that were, or may
// have been, not delivered: the losses nobody else can see. Each count is
// also logged where it happens, at most once per lossLogEvery per queue.
type Stats struct {
	// NoReplyReturned: no-reply calls the broker returned (nobody serves
	// the target, or its instance queue is gone); the sender got
	// core.ErrNotFound.
	NoReplyReturned int64
	// NoReplyNacked: no-reply calls the broker refused; the sender got
	// core.ErrTransport.
	NoReplyNacked int64
	// CallsNacked: calls the broker refused, sent by this process or
	// handed back by one of its stopping instances; a caller waiting for
	// a reply got core.ErrTransport at once. A lone call sent without a
	// confirm (to a queue with nothing in flight) cannot be refused so:
	// the broker drops it and its caller times out. After a refusal,
	// every call goes with a confirm for a minute.
	CallsNacked int64
	// RepliesNacked: replies the broker refused; their callers time out.
	RepliesNacked int64
	// NoReplyExpired: no-reply calls this sender had published into an
	// instance queue that expired with them in it (its process never came
	// back in time): lost, after their publish was confirmed. Counted at
	// each check of a queue without consumer (what its message TTL dropped
	// since the last check) and when it is gone (what it held). An
	// estimate: queue message counts include other senders' calls.
	NoReplyExpired int64
	// NoReplyUnserved: no-reply calls failed at once (core.ErrNotFound)
	// because their instance queue had had no consumer for at least the
	// instance queue expiry: its process is gone, and the queue's message
	// TTL would drop them.
	NoReplyUnserved int64
	// Waited: calls this process found waiting in its instance queue when
	// it consumed it (after a reconnect, or left by a predecessor with the
	// same id); they are delivered now, not lost.
	Waited int64
	// RedeliveredRefused: redelivered calls not run because they may have
	// run already (at most once); a caller waiting for a reply is told.
	RedeliveredRefused int64
	// RedeliveredRun: calls redelivered to this process's own instance
	// queue after a reconnect that had never reached a handler here, so
	// they were run.
	RedeliveredRun int64
	// DroppedAtStop: calls left in an instance queue of this process when
	// it stopped the instance gracefully (and deleted its queue).
	DroppedAtStop int64
}

type stats struct {
	noReplyReturned, noReplyNacked, callsNacked, repliesNacked, noReplyExpired, noReplyUnserved, waited, redeliveredRefused, redeliveredRun, droppedAtStop,
	connects atomic.Int64
	// traffic counts AMQP messages published and the framework items
	// (calls, replies) they carried, per kind (publish.go).
	traffic [trafficKinds]struct{ messages, items, batches, batched, plain atomic.Int64 }
}

// Stats returns the transport's loss counters.
func (t *Transport) Stats() Stats {
	s := &t.stats
	return Stats{NoReplyReturned: s.noReplyReturned.Load(), NoReplyNacked: s.noReplyNacked.Load(),
		CallsNacked: s.callsNacked.Load(), RepliesNacked: s.repliesNacked.Load(),
		NoReplyExpired: s.noReplyExpired.Load(), NoReplyUnserved: s.noReplyUnserved.Load(), Waited: s.waited.Load(),
		RedeliveredRefused: s.redeliveredRefused.Load(), RedeliveredRun: s.redeliveredRun.Load(),
		DroppedAtStop: s.droppedAtStop.Load()}
}

// lossLogEvery bounds how often one kind of loss to one queue is logged:
// a dead gate under a broadcast storm would otherwise log every push.
var lossLogEvery = 5 * time.Second

// lossLog logs losses per (message, queue), the first at once and then at
// most once per lossLogEvery with how many happened since the last line.
// What a window held back is said when it ends, even with no loss after
// it, and at the transport's close: every loss is logged.
type lossLog struct {
	mu     sync.Mutex
	keys   map[[2]string]*lossKey
	closed bool
}

type lossKey struct {
	last   time.Time
	unsaid int
	held   *time.Timer // says unsaid when the window ends
	// How the held-back losses are said: the last call's.
	log   *slog.Logger
	level slog.Level
	args  []any
}

func (l *lossLog) log(log *slog.Logger, level slog.Level, msg, queue string, n int, args ...any) {
	l.mu.Lock()
	if l.keys == nil {
		l.keys = map[[2]string]*lossKey{}
	}
	k := [2]string{msg, queue}
	e := l.keys[k]
	if e == nil {
		e = &lossKey{}
		l.keys[k] = e
	}
	e.unsaid += n
	now := time.Now()
	if wait := lossLogEvery - now.Sub(e.last); wait > 0 && !l.closed {
		e.log, e.level, e.args = log, level, args
		if e.held == nil {
			e.held = time.AfterFunc(wait, func() { l.sayHeld(k) })
		}
		l.mu.Unlock()
		return
	}
	count := e.unsaid
	e.unsaid, e.last = 0, now
	if len(l.keys) > 1024 { // forget quiet keys
		for k, e := range l.keys {
			if e.unsaid == 0 && e.held == nil && now.Sub(e.last) >= lossLogEvery {
				delete(l.keys, k)
			}
		}
	}
	l.mu.Unlock()
	log.Log(nil, level, msg, append([]any{"queue", queue, "count", count}, args...)...)
}

// sayHeld logs what the window of key k held back.
func (l *lossLog) sayHeld(k [2]string) {
	l.mu.Lock()
	e := l.keys[k]
	if e == nil || e.held == nil {
		l.mu.Unlock()
		return
	}
	e.held = nil
	count := e.unsaid
	if count == 0 {
		l.mu.Unlock()
		return
	}
	e.unsaid, e.last = 0, time.Now()
	log, level, args := e.log, e.level, e.args
	l.mu.Unlock()
	log.Log(nil, level, k[0], append([]any{"queue", k[1], "count", count}, args...)...)
}

// close says what every window holds back and logs later losses at once.
func (l *lossLog) close() {
	l.mu.Lock()
	l.closed = true
	var held [][2]string
	for k, e := range l.keys {
		if e.held != nil && e.held.Stop() {
			held = append(held, k)
		}
	}
	l.mu.Unlock()
	for _, k := range held {
		l.sayHeld(k)
	}
}

// callLog remembers which calls from an instance queue reached a handler
// in this process, across reconnects, so that a call the broker
// redelivers to the same process after its connection dropped runs when
// it never started here (it was still in the client library's buffer, or
// in flight on the wire) and is refused when it may have (at most once).
// It keeps the calls running and the last callLogSize started.
type callLog struct {
	consumed atomic.Bool // the instance queue was consumed before by this process

	mu      sync.Mutex
	running map[string]int
	recent  map[string]struct{}
	ring    []string
	next    int
}

const callLogSize = 8192

func newCallLog() *callLog {
	return &callLog{running: map[string]int{}, recent: map[string]struct{}{}, ring: make([]string, callLogSize)}
}

// start records that call id is handed to a handler.
func (l *callLog) start(id string) {
	l.mu.Lock()
	l.running[id]++
	if _, ok := l.recent[id]; !ok {
		if old := l.ring[l.next]; old != "" {
			delete(l.recent, old)
		}
		l.ring[l.next] = id
		l.next = (l.next + 1) % len(l.ring)
		l.recent[id] = struct{}{}
	}
	l.mu.Unlock()
}

// end records that call id's handler answered.
func (l *callLog) end(id string) {
	l.mu.Lock()
	if l.running[id]--; l.running[id] <= 0 {
		delete(l.running, id)
	}
	l.mu.Unlock()
}

// started reports whether call id may have reached a handler here.
func (l *callLog) started(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, recent := l.recent[id]
	return recent || l.running[id] > 0
}
