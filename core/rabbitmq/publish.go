package rabbitmq

import (
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/mqantgen/mqantgen/core"
)

// The session's publishers: the AMQP messages the outboxes (batch.go) send
// for calls, no-reply calls and replies, one item or a batch, and the
// traffic counters they keep.

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

// counted records one AMQP message published carrying n framework items;
// plain when it was sent without a confirm.
func (t *Transport) counted(kind trafficKind, n int, plain bool) {
	c := &t.stats.traffic[kind]
	c.messages.Add(1)
	if plain {
		c.plain.Add(1)
	}
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
	// Unconfirmed counts the messages sent without a publisher confirm: a
	// lone call or reply to a routing key with nothing in flight.
	Unconfirmed int64
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
		r.Unconfirmed += c.plain.Load()
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
// call in it at once. publishPlainCalls publishes a lone call on the
// plain channel.
func (s *session) publishCalls(q string, items []outItem) { s.sendCalls(q, items, false) }

func (s *session) publishPlainCalls(q string, items []outItem) { s.sendCalls(q, items, true) }

func (s *session) sendCalls(q string, items []outItem, plain bool) {
	now := time.Now()
	live := items[:0] // items is this publish's own: filtered in place
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
		if !plain {
			s.calls.idle(q)
		}
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
	var err error
	s.wire.hold() // the message's frames in one write (wire.go)
	if plain {
		err = s.plainCallCh.Publish("", q, true, false, msg)
	} else {
		err = s.calls.emit(q, msg, live, true, nil)
	}
	s.wire.release()
	if err != nil {
		for _, it := range live {
			if p := s.take(it.id); p != nil {
				p.ch <- core.Reply{Err: core.Errorf(core.ErrTransport, "rabbitmq: publish %s.%s: %v", p.to, p.fn, err)}
			}
		}
		return
	}
	s.t.counted(trafficCall, len(live), plain)
}

// publishReplies publishes replies to one caller's reply address on the
// confirm channel; publishPlainReply a lone one on the plain channel.
func (s *session) publishReplies(to string, items []outItem) { s.sendReplies(to, items, false) }

func (s *session) publishPlainReply(to string, items []outItem) { s.sendReplies(to, items, true) }

func (s *session) sendReplies(to string, items []outItem, plain bool) {
	msg := amqp.Publishing{ContentType: "application/x-mqant-reply", CorrelationId: items[0].id, Body: items[0].body}
	if len(items) > 1 {
		body, _ := batchBody(items, time.Time{})
		msg.ContentType, msg.Body = batchContentType, body
	}
	// The replies' frames and the acknowledgements their calls' end
	// sends at once (an idle consumer's) leave in one write (wire.go).
	s.wire.hold()
	defer s.wire.release()
	var err error
	if plain {
		err = s.plainCh.Publish("", to, false, false, msg)
	} else {
		err = s.replies.emit(to, msg, items, false, nil)
	}
	if err != nil {
		for _, it := range items {
			s.t.log.Warn("reply not sent", "fn", it.fn, "err", err, "trace_id", it.trace.TraceIDString())
		}
	} else {
		s.t.counted(trafficReply, len(items), plain)
	}
	for _, it := range items {
		if it.r != nil {
			it.r.done()
		}
	}
}

// publishNoReply publishes no-reply calls to queue q on the confirm-mode
// channel: one confirm (and a return, when nobody serves q) settles every
// call in the message.
func (s *session) publishNoReply(q string, items []outItem) {
	// A call whose sender gave up while it queued is not sent: the sender
	// was told it failed. items is this publish's own: filtered in place.
	live := items[:0]
	for _, it := range items {
		if it.w.abandoned.Load() {
			it.w.settle(errAbandoned)
			continue
		}
		live = append(live, it)
	}
	if len(live) == 0 {
		s.noReplies.idle(q)
		return
	}
	items = live
	msg := amqp.Publishing{ContentType: "application/x-mqant-call", CorrelationId: items[0].id, Body: items[0].body}
	if len(items) > 1 {
		body, _ := batchBody(items, time.Time{})
		msg.ContentType, msg.Body = batchContentType, body
	}
	ws := make([]*nrWaiter, len(items))
	for i := range items {
		ws[i] = items[i].w
	}
	m := &nrPublished{id: msg.CorrelationId, queue: q, ws: ws}
	s.wire.hold()
	err := s.noReplies.emit(q, msg, items, true, func(tag uint64) {
		s.nrMu.Lock()
		s.nrWait[tag] = m
		s.nrMu.Unlock()
	})
	s.wire.release()
	if err != nil {
		// The calls are this path's to settle only while m still waits:
		// a lost connection's failAll may have settled them already.
		mine := false
		s.nrMu.Lock()
		for tag, w := range s.nrWait {
			if w == m {
				delete(s.nrWait, tag)
				mine = true
			}
		}
		s.nrMu.Unlock()
		if mine {
			for _, w := range ws {
				w.settle(core.Errorf(core.ErrTransport, "rabbitmq: publish to %s: %v", w.to, err))
			}
		}
		return
	}
	s.t.counted(trafficNoReply, len(items), false)
}

// entries returns the calls or replies an AMQP message carries: the
// entries of a batch, or the message itself.
func entries(contentType, corrID string, body []byte) ([]batchEntry, error) {
	if contentType != batchContentType {
		return []batchEntry{{id: []byte(corrID), body: body}}, nil
	}
	return decodeBatch(body)
}
