package loadgen

import (
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/mqantgen/mqantgen/gate/packets"
)

// requester sends one connection's requests and matches their replies.
//
// Each outstanding request has a slot; slot i carries the msgids i, i+n,
// i+2n, ... (n slots), so a reply finds its slot by msgid modulo n and is
// checked against the msgid the slot now waits for, with no map and no
// allocation. A reply to a request that already timed out finds its slot
// moved on and counts as late.
type requester struct {
	c      *conn
	rec    *recorder
	prefix string // the topic up to the msgid, with its trailing '/'

	payload []byte // the request body; say mode builds one per request
	say     []byte // broadcast: body up to the send time, `{"roomName":"r","say":"t`

	// Rate mode: time between this connection's requests and the intended
	// time of the next. A request waiting for a free slot keeps its
	// intended time, so queueing shows in its latency (no coordinated
	// omission).
	interval int64
	next     int64

	wake chan struct{} // a slot was freed

	mu          sync.Mutex
	slots       []slot
	free        []int32
	dead        bool  // the connection was lost
	sent, sent2 int64 // requests sent in all, and inside the window

	// Owned by the sender goroutine.
	buf, topic, body []byte
}

type slot struct {
	msgid    uint64
	sent     int64 // intended send time, run clock
	busy     bool
	measured bool // sent inside the measurement window
}

func newRequester(c *conn, rec *recorder, prefix string, payload []byte, inflight int, interval, first int64) *requester {
	q := &requester{c: c, rec: rec, prefix: prefix, payload: payload, interval: interval, next: first,
		wake: make(chan struct{}, 1), slots: make([]slot, inflight), free: make([]int32, inflight)}
	for i := range q.slots {
		// The first use adds n, giving msgid i.
		q.slots[i].msgid = uint64(i) - uint64(inflight)
		q.free[i] = int32(inflight - 1 - i)
	}
	return q
}

// reply handles a PUBLISH on the connection; false when it is not a reply
// to one of this requester's requests.
func (q *requester) reply(p *packets.Publish) bool {
	t := p.Topic
	if len(t) <= len(q.prefix) || t[:len(q.prefix)] != q.prefix {
		return false
	}
	id, err := strconv.ParseUint(t[len(q.prefix):], 10, 64)
	if err != nil {
		return false
	}
	r := q.c.r
	now := r.now()
	i := int(id % uint64(len(q.slots)))
	q.mu.Lock()
	s := &q.slots[i]
	if !s.busy || s.msgid != id {
		q.mu.Unlock()
		r.late.Add(1)
		return true
	}
	sent, measured := s.sent, s.measured
	// Recorded before the slot is freed: once every slot is free the
	// sender may return and the run summarise, and this reply must be in.
	if text := errorText(p.Payload); text != "" {
		q.rec.fail(text, measured)
	} else {
		q.rec.record(q.c.id, time.Duration(now-sent), measured)
	}
	s.busy = false
	q.free = append(q.free, int32(i))
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

// loop sends requests until stop is closed, then waits for the outstanding
// ones (each at most the timeout).
func (q *requester) loop(stop <-chan struct{}) {
	r := q.c.r
	timeout := int64(r.cfg.Timeout)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	stopping := false
	for {
		now := r.now()
		q.buf = q.buf[:0]
		q.mu.Lock()
		if q.dead {
			q.mu.Unlock()
			return
		}
		oldest := q.expire(now, timeout)
		wait := int64(time.Second)
		if !stopping {
			if q.interval == 0 {
				for len(q.free) > 0 {
					q.send(now)
				}
			} else {
				for len(q.free) > 0 && q.next <= now {
					q.send(q.next)
					q.next += q.interval
				}
				if len(q.free) > 0 {
					wait = min(wait, q.next-now)
				}
			}
		}
		outstanding := len(q.free) < len(q.slots)
		if outstanding {
			wait = min(wait, min(oldest, now)+timeout-now)
		}
		q.mu.Unlock()
		if len(q.buf) > 0 {
			if err := q.c.write(q.buf); err != nil {
				r.lost(q.c, err)
				return
			}
		}
		if stopping && !outstanding {
			return
		}
		timer.Reset(time.Duration(max(wait, int64(50*time.Microsecond))))
		select {
		case <-q.wake:
		case <-timer.C:
		case <-stop:
			stopping, stop = true, nil
		}
	}
}

// expire frees the slots of requests older than the timeout and returns
// the oldest send time left (math.MaxInt64 when none). q.mu is held.
func (q *requester) expire(now, timeout int64) int64 {
	oldest := int64(1<<63 - 1)
	if len(q.free) == len(q.slots) {
		return oldest
	}
	for i := range q.slots {
		s := &q.slots[i]
		if !s.busy {
			continue
		}
		if now-s.sent >= timeout {
			s.busy = false
			q.free = append(q.free, int32(i))
			q.rec.timeout(s.measured)
			continue
		}
		oldest = min(oldest, s.sent)
	}
	return oldest
}

// send takes a free slot and appends a request sent at t (its intended
// time) to q.buf. q.mu is held.
func (q *requester) send(t int64) {
	i := q.free[len(q.free)-1]
	q.free = q.free[:len(q.free)-1]
	s := &q.slots[i]
	s.msgid += uint64(len(q.slots))
	s.sent, s.busy, s.measured = t, true, q.c.r.inWindow(t)
	q.sent++
	if s.measured {
		q.sent2++
	}
	q.topic = strconv.AppendUint(append(q.topic[:0], q.prefix...), s.msgid, 10)
	body := q.payload
	if q.say != nil {
		q.body = append(strconv.AppendInt(append(q.body[:0], q.say...), t, 10), `"}`...)
		body = q.body
	}
	// The codec copies the topic before this returns, so viewing the
	// reused bytes as a string is safe and saves an allocation.
	q.buf = packets.AppendPublish(q.buf, unsafe.String(unsafe.SliceData(q.topic), len(q.topic)), body, 0, 0)
}

// kill marks the requester dead after its connection was lost: the
// outstanding requests count as errors.
func (q *requester) kill(why string) {
	q.mu.Lock()
	if q.dead {
		q.mu.Unlock()
		return
	}
	q.dead = true
	for i := range q.slots {
		if s := &q.slots[i]; s.busy {
			s.busy = false
			q.rec.fail(why, s.measured)
		}
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// counts returns the requests sent, in all and inside the window.
func (q *requester) counts() (all, window int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.sent, q.sent2
}
