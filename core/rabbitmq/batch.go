package rabbitmq

import (
	"strconv"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/mqantgen/mqantgen/core"
)

// Adaptive batching. The broker's cost is per AMQP message, not per byte,
// so calls and replies bound for the same routing key while a publish to
// it is in flight travel together in one message (the batch envelope,
// envelope.go). Nothing waits for a batch to fill: the first message to
// an idle routing key goes out at once on the sender's goroutine; what
// queues behind it meanwhile goes out as one batch when it returns, on a
// goroutine that keeps draining until the key is idle again. At low load
// every message is a single one, as before; under load the number of
// messages per call falls with the load.
//
// One publisher per routing key at a time, taking the queue in order,
// keeps the order of the messages one process sends to one queue.

const (
	// maxBatchItems and maxBatchBytes bound one batch: a batch is one
	// delivery for the receiver's prefetch, and one frame sequence.
	maxBatchItems = 128
	maxBatchBytes = 128 << 10
)

// outItem is one call or reply waiting for its routing key.
type outItem struct {
	id   string // call id (the correlation id)
	body []byte // call or reply envelope
	// Calls with a deadline: the timeout written in body and the deadline;
	// the timeout is rewritten with the time left when the item goes out.
	ms       uint64
	deadline time.Time
	p        *pendingCall // a call waiting for its reply
	w        *nrWaiter    // a no-reply call waiting for its confirm
	fn       string       // replies: the call's function, for logs
	trace    core.TraceContext
	after    func() // replies: runs once published (or failed)
}

// outbox sends the items of one kind (calls, no-reply calls, replies) of a
// session, batching per routing key.
type outbox struct {
	kind    trafficKind
	publish func(key string, items []outItem)

	mu   sync.Mutex
	busy map[string]*outQueue // routing keys with a publish in flight
}

type outQueue struct{ items []outItem }

func newOutbox(kind trafficKind, publish func(string, []outItem)) *outbox {
	return &outbox{kind: kind, publish: publish, busy: map[string]*outQueue{}}
}

// send publishes it at once when nothing is in flight to key, else queues
// it for the next batch to key.
func (o *outbox) send(key string, it outItem) {
	o.mu.Lock()
	if q := o.busy[key]; q != nil {
		q.items = append(q.items, it)
		o.mu.Unlock()
		return
	}
	q := &outQueue{}
	o.busy[key] = q
	o.mu.Unlock()
	o.publish(key, []outItem{it})
	o.mu.Lock()
	if len(q.items) == 0 {
		delete(o.busy, key)
		o.mu.Unlock()
		return
	}
	o.mu.Unlock()
	// The sender goes back to its own call; a goroutine drains what
	// queued behind it while the load lasts.
	go o.drain(key, q)
}

// drain publishes what queued for key, batch after batch, until nothing
// queued during the last publish.
func (o *outbox) drain(key string, q *outQueue) {
	for {
		o.mu.Lock()
		items := q.items
		if len(items) == 0 {
			delete(o.busy, key)
			o.mu.Unlock()
			return
		}
		q.items = nil
		o.mu.Unlock()
		for len(items) > 0 {
			n, size := 0, 0
			for n < len(items) && n < maxBatchItems && (n == 0 || size+len(items[n].body) <= maxBatchBytes) {
				size += len(items[n].body) + len(items[n].id) + 8
				n++
			}
			o.publish(key, items[:n])
			items = items[n:]
		}
	}
}

// trafficKind tells the three kinds of framework messages apart in the
// traffic counters (bounded metric labels).
type trafficKind int

const (
	trafficCall trafficKind = iota
	trafficNoReply
	trafficReply
	trafficKinds
)

var trafficKindNames = [trafficKinds]string{"call", "noreply", "reply"}

// counted records one AMQP message published carrying n framework items.
func (t *Transport) counted(kind trafficKind, n int) {
	c := &t.stats.traffic[kind]
	c.messages.Add(1)
	c.items.Add(int64(n))
	if n > 1 {
		c.batches.Add(1)
		c.batched.Add(int64(n))
	}
}

// Traffic counts the framework's AMQP messages: how many this transport
// published and how many framework calls and replies they carried.
type Traffic struct {
	Messages int64 // AMQP messages published (calls, no-reply calls, replies)
	Carried  int64 // framework calls and replies in them
	Batches  int64 // messages that carried more than one
	Batched  int64 // calls and replies that travelled in a batch
}

// Traffic returns the transport's message counters, summed over kinds.
func (t *Transport) Traffic() Traffic {
	var r Traffic
	for k := range t.stats.traffic {
		c := &t.stats.traffic[k]
		r.Messages += c.messages.Load()
		r.Carried += c.items.Load()
		r.Batches += c.batches.Load()
		r.Batched += c.batched.Load()
	}
	return r
}

// batchBody encodes items as one batch; calls get the time they have left.
// It returns the batch and the longest time left in ms (0 when some call
// has no deadline: the message then has no expiration).
func batchBody(items []outItem, now time.Time) (body []byte, longest int64) {
	size := 8
	for i := range items {
		size += len(items[i].id) + len(items[i].body) + 12
	}
	b := appendBatchHead(make([]byte, 0, size), len(items))
	noDeadline := false
	for i := range items {
		it := &items[i]
		if it.deadline.IsZero() {
			noDeadline = true
			b = appendBatchEntry(b, it.id, it.body)
			continue
		}
		ms := max(it.deadline.Sub(now).Milliseconds(), 1)
		longest = max(longest, ms)
		var err error
		if b, err = appendBatchCall(b, it.id, it.body, uint64(ms)); err != nil {
			b = appendBatchEntry(b, it.id, it.body) // our own encoding: never happens
		}
	}
	if noDeadline {
		longest = 0
	}
	return b, longest
}

// publishCalls publishes calls with a reply to queue q: one message, or a
// batch. A call whose deadline passed while it queued is not published
// (its caller is failing it with a timeout). A failed publish fails every
// call in it at once.
func (s *session) publishCalls(q string, items []outItem) {
	now := time.Now()
	live := items[:0:0]
	for _, it := range items {
		if !it.deadline.IsZero() && !it.deadline.After(now) {
			if p := s.take(it.id); p != nil {
				p.ch <- core.Reply{Err: core.Errorf(core.ErrTimeout, "call %s.%s: deadline exceeded before it was sent", p.to, p.fn)}
			}
			continue
		}
		live = append(live, it)
	}
	if len(live) == 0 {
		return
	}
	msg := amqp.Publishing{ReplyTo: replyTo, CorrelationId: live[0].id}
	if len(live) == 1 {
		it := live[0]
		msg.ContentType, msg.Body = "application/x-mqant-call", it.body
		if !it.deadline.IsZero() {
			ms := max(it.deadline.Sub(now).Milliseconds(), 1)
			if uint64(ms) < it.ms {
				if b, err := withTimeout(it.body, uint64(ms)); err == nil {
					msg.Body = b
				}
			} else {
				ms = int64(it.ms)
			}
			msg.Expiration = strconv.FormatInt(ms, 10)
		}
	} else {
		// The batch lives as long as its longest call; each call's own
		// deadline travels in its envelope and bounds its handler.
		body, longest := batchBody(live, now)
		msg.ContentType, msg.Body = batchContentType, body
		if longest > 0 {
			msg.Expiration = strconv.FormatInt(longest, 10)
		}
	}
	err := s.callCh.Publish("", q, true, false, msg)
	if err != nil {
		for _, it := range live {
			if p := s.take(it.id); p != nil {
				p.ch <- core.Reply{Err: core.Errorf(core.ErrTransport, "rabbitmq: publish %s.%s: %v", p.to, p.fn, err)}
			}
		}
		return
	}
	s.t.counted(trafficCall, len(live))
}

// publishReplies publishes replies to one caller's reply address.
func (s *session) publishReplies(to string, items []outItem) {
	msg := amqp.Publishing{ContentType: "application/x-mqant-reply", CorrelationId: items[0].id, Body: items[0].body}
	if len(items) > 1 {
		body, _ := batchBody(items, time.Time{})
		msg.ContentType, msg.Body = batchContentType, body
	}
	err := s.replyCh.Publish("", to, false, false, msg)
	if err != nil {
		for _, it := range items {
			s.t.log.Warn("reply not sent", "fn", it.fn, "err", err, "trace_id", it.trace.TraceIDString())
		}
	} else {
		s.t.counted(trafficReply, len(items))
	}
	for _, it := range items {
		if it.after != nil {
			it.after()
		}
	}
}

// publishNoReply publishes no-reply calls to queue q on the confirm-mode
// channel: one confirm (and a return, when nobody serves q) settles every
// call in the message.
func (s *session) publishNoReply(q string, items []outItem) {
	msg := amqp.Publishing{ContentType: "application/x-mqant-call", CorrelationId: items[0].id, Body: items[0].body}
	if len(items) > 1 {
		body, _ := batchBody(items, time.Time{})
		msg.ContentType, msg.Body = batchContentType, body
	}
	ws := make([]*nrWaiter, len(items))
	for i := range items {
		ws[i] = items[i].w
	}
	s.nrPublish.Lock()
	tag := s.nrCh.GetNextPublishSeqNo()
	s.nrMu.Lock()
	s.nrWait[tag] = &nrPublished{id: msg.CorrelationId, queue: q, ws: ws}
	s.nrMu.Unlock()
	err := s.nrCh.Publish("", q, true, false, msg)
	s.nrPublish.Unlock()
	if err != nil {
		s.nrMu.Lock()
		delete(s.nrWait, tag)
		s.nrMu.Unlock()
		for _, w := range ws {
			w.ch <- core.Errorf(core.ErrTransport, "rabbitmq: publish to %s: %v", w.to, err)
		}
		return
	}
	s.t.counted(trafficNoReply, len(items))
}

// entries returns the calls or replies an AMQP message carries: the
// entries of a batch, or the message itself.
func entries(contentType, corrID string, body []byte) ([]batchEntry, error) {
	if contentType != batchContentType {
		return []batchEntry{{id: corrID, body: body}}, nil
	}
	return decodeBatch(body)
}
