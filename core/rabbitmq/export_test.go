package rabbitmq

import (
	"strconv"
	"time"

	"github.com/mqantgen/mqantgen/core"
)

// AckerSize is how many entries the acknowledger of instance id holds.
func AckerSize(t *Transport, id string) int {
	s := t.current()
	if s == nil {
		return -1
	}
	s.smu.Lock()
	c := s.consumers[id]
	s.smu.Unlock()
	if c == nil {
		return -1
	}
	c.mu.Lock()
	a := c.acker
	c.mu.Unlock()
	if a == nil {
		return -1
	}
	return a.size()
}

// BreakConsumerChannel makes the broker close instance id's consuming
// channel with a channel error: it acknowledges a tag never delivered.
func BreakConsumerChannel(t *Transport, id string) {
	s := t.current()
	s.smu.Lock()
	c := s.consumers[id]
	s.smu.Unlock()
	c.mu.Lock()
	ch := c.ch
	c.mu.Unlock()
	_ = ch.Ack(1<<40, false)
}

// SetAfterConnect runs f between a connect and the session going live.
func SetAfterConnect(f func()) {
	if f == nil {
		afterConnect.Store(nil)
		return
	}
	afterConnect.Store(&f)
}

// WriteTimeout swaps the per-write deadline, returning the old one.
func WriteTimeout(d time.Duration) time.Duration {
	old := writeTimeout
	writeTimeout = d
	return old
}

// ConsumerStopping returns whether instance id's current consumer has
// begun its graceful stop.
func ConsumerStopping(t *Transport, id string) func() bool {
	s := t.current()
	s.smu.Lock()
	c := s.consumers[id]
	s.smu.Unlock()
	return c.stopping.Load
}

// SetBeforeResume runs f after a reconnect listed its endpoints, before
// it starts them.
func SetBeforeResume(f func()) {
	if f == nil {
		beforeResume.Store(nil)
		return
	}
	beforeResume.Store(&f)
}

// SetListenWait and SetTakeoverAfter swap those bounds, returning the old.
func SetListenWait(d time.Duration) time.Duration {
	return time.Duration(listenWait.Swap(int64(d)))
}

// SetHeartbeat swaps the AMQP heartbeat new connections ask for,
// returning the old.
func SetHeartbeat(d time.Duration) time.Duration {
	return time.Duration(heartbeat.Swap(int64(d)))
}

func SetTakeoverAfter(d time.Duration) time.Duration {
	return time.Duration(takeoverAfter.Swap(int64(d)))
}

// Consuming reports whether instance id has a consumer on t's session.
func Consuming(t *Transport, id string) bool {
	s := t.current()
	if s == nil {
		return false
	}
	s.smu.Lock()
	defer s.smu.Unlock()
	_, ok := s.consumers[id]
	return ok
}

// SendNoReplyQueued hands no-reply calls of fn with the given JSON
// arguments to t's no-reply outbox for queue q, one after the other
// without waiting, as concurrent senders would; the returned function
// waits for their confirms.
func SendNoReplyQueued(t *Transport, q, fn string, args []string) func() []error {
	s := t.current()
	ws := make([]*nrWaiter, len(args))
	for i, arg := range args {
		id := t.prefix + strconv.FormatUint(t.seq.Add(1), 36)
		ws[i] = &nrWaiter{id: id, to: core.Target{Type: "order"}, ch: make(chan error, 1)}
		s.noReplies.send(q, outItem{id: id, body: encodeCall(&core.Request{Fn: fn, NoReply: true}, 0, []byte(arg)), w: ws[i]})
	}
	return func() []error {
		errs := make([]error, len(ws))
		for i, w := range ws {
			errs[i] = <-w.ch
		}
		return errs
	}
}

// SendNoReplyAbandoning queues no-reply calls of fn to queue q as if a
// message to q were awaiting its confirm, marks the ones abandon names as
// given up by their senders (as publishNR does at their deadline), then
// ends that pretend flight, which publishes what queued. The returned
// function waits for the calls' outcomes.
func SendNoReplyAbandoning(t *Transport, q, fn string, args []string, abandon map[int]bool) func() []error {
	o := t.current().noReplies
	o.mu.Lock()
	qq := o.keys[q]
	if qq == nil {
		qq = &outQueue{}
		o.keys[q] = qq
	}
	qq.unconfirmed++
	o.mu.Unlock()
	wait := SendNoReplyQueued(t, q, fn, args)
	o.mu.Lock()
	for i, it := range qq.items { // all queued, in the order sent
		if abandon[i] {
			it.w.abandoned.Store(true)
		}
	}
	o.release(q)
	return wait
}

// CallArgs decodes the calls an AMQP message carries (one, or a batch)
// and returns their arguments.
func CallArgs(contentType, corrID string, body []byte) ([]string, error) {
	es, err := entries(contentType, corrID, body)
	if err != nil {
		return nil, err
	}
	args := make([]string, len(es))
	for i, e := range es {
		c, err := decodeCall(e.body)
		if err != nil {
			return nil, err
		}
		args[i] = string(c.arg)
	}
	return args, nil
}

// WireWrites returns how many writes t's current connection made to its
// socket.
func WireWrites(t *Transport) int64 { return t.current().wire.writes.Load() }

// Pending returns how many calls t's current session waits a reply for.
func Pending(t *Transport) int {
	s := t.current()
	s.pmu.Lock()
	defer s.pmu.Unlock()
	return len(s.pending)
}

// SetMaxQueued swaps the bound on calls waiting for one routing key,
// returning the old.
func SetMaxQueued(n int) int {
	old := maxQueued
	maxQueued = n
	return old
}

// ConfirmEverything makes t's current session send every call and reply
// with a confirm for the next minute, as after a broker's refusal: none
// goes plain.
func ConfirmEverything(t *Transport) {
	s := t.current()
	for _, o := range []*outbox{s.calls, s.replies} {
		o.mu.Lock()
		o.refusedAt = time.Now()
		o.mu.Unlock()
	}
}
