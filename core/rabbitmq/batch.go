package rabbitmq

import (
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/mqantgen/mqantgen/core"
)

// Adaptive batching. The broker's cost is per AMQP message, not per byte,
// so calls and replies bound for the same routing key while publishes to
// it are in flight travel together in one message (the batch envelope,
// envelope.go). The publishing channels are in confirm mode, and a message
// is in flight from the moment it is sent until the broker confirms it:
// the broker's own pace clocks the batches, as acknowledgements clock
// TCP's. Nothing waits for a batch to fill: a message to a routing key
// with fewer than window messages in flight goes out at once on the
// sender's goroutine; what queues while window are in flight goes out as
// one batch when a confirm arrives. At low load every message is a single
// one; the busier the broker, the more each message carries.
//
// The window is one message. A window of two let a sequential caller's
// next call go at once when its previous call's confirm came after its
// reply, but a second message in flight is a second message for the
// broker: at 64 callers (BenchmarkRabbitFramework, alternated runs) a
// window of one carries 0.146 broker messages per call against 0.188 and
// makes 33.8k-36.8k calls/s against 29.3k-31.9k; a window of three or
// four is slower still. A caller alone on a key is not held back: its
// lone calls go plain (below), and 1 caller's p50 (BenchmarkRabbitPaired)
// did not change.
//
// One publisher per routing key at a time, taking the queue in order,
// keeps the order of the messages one process sends to one queue.
//
// A confirm costs the broker and both processes a frame, so the outboxes
// of calls with a reply and of replies also have a plain channel, without
// confirms (outbox.plain). Their messages need no order between them: a
// reply is matched by its correlation id, and a caller that needs an order
// (a gate's calls for one connection, a handler's own calls) waits for one
// reply before it sends the next call. A call or reply to a key with
// nothing in flight goes out plain when the outbox sent no plain message
// for as long as a confirm takes to come back (the smoothed time of the
// last confirms). A plain message younger than that counts as one in
// flight, so what follows it goes through the confirm channel and a busy
// key batches as before; a quiet moment as long as a confirm's round trip
// sends the next lone one plain again. No-reply calls (a gate's pushes
// among them) keep their order: they never go plain.

const (
	// maxBatchItems and maxBatchBytes bound one batch: a batch is one
	// delivery for the receiver's prefetch, and one frame sequence.
	maxBatchItems = 128
	maxBatchBytes = 128 << 10
	// window is how many messages per routing key may await their
	// confirm before what follows waits for a batch.
	window = 1
)

// maxQueued bounds the calls (with or without a reply) that wait for one
// routing key while its message in flight awaits the broker's confirm: a
// broker that stops confirming (a stuck queue) must not grow a sender's
// memory without end. A call beyond it fails at once with
// core.ErrTransport. Replies are not bounded here: the prefetch bounds
// the calls they answer.
var maxQueued = 1 << 15

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
	r        *responder // replies: its done runs once published (or failed)
}

// outbox sends the items of one kind (calls, no-reply calls, replies) of a
// session on one channel in confirm mode, batching per routing key.
type outbox struct {
	kind trafficKind
	ch   *amqp.Channel
	// publish builds the message of items and sends it with o.emit.
	publish func(key string, items []outItem)
	// take takes a call waiting for its reply (the calls outbox).
	take func(id string) *pendingCall
	// plain, when set, publishes a lone message to a key with nothing in
	// flight on the channel without confirms.
	plain func(key string, items []outItem)
	// nacked, when set, is told of each message the broker refused.
	nacked func(sent sentTag)
	// full, when set, is told of a call failed because maxQueued wait
	// for key already.
	full func(key string)

	pub sync.Mutex // makes "next delivery tag + publish" one step

	mu     sync.Mutex
	keys   map[string]*outQueue // routing keys with a message in flight
	tags   map[uint64]sentTag   // delivery tag -> routing key, until confirmed
	failed error                // the session is lost: nothing more is sent
	free   *outQueue            // a forgotten key's queue, for the next key
	// With plain: when the last plain message went out, and the smoothed
	// time a confirm takes (the quiet time before the next may be plain).
	lastPlain time.Time
	rtt       time.Duration
	// refusedAt is when the broker last refused a message. For
	// refusedConfirmAll after it every message goes with a confirm: the
	// broker drops a refused message sent without one, and nobody knows.
	refusedAt time.Time
}

// refusedConfirmAll is how long an outbox sends nothing plain after a nack.
const refusedConfirmAll = time.Minute

// sentTag is a published message until its confirm.
type sentTag struct {
	key string
	at  time.Time // when sent, for an outbox with plain
	n   int       // the calls or replies it carries
	// The call ids of a calls outbox's message: id when it carries one
	// (no slice for a lone call), ids when a batch. A reply's function
	// (the first's) for logs.
	id  string
	ids []string
	fn  string
	// handBack: calls a stopping instance handed back to their queue
	// (session.republish), outside the window; replyTo is their callers'.
	handBack bool
	replyTo  string
}

// outQueue is one routing key's. The publisher of the key (one at a time:
// publishing) owns one and the batch it took; the rest is o.mu's.
type outQueue struct {
	unconfirmed int  // messages in flight
	publishing  bool // a goroutine publishes to the key: the others queue
	items       []outItem
	// spare is the array of a batch already published, for items to
	// queue in next: a steady flow of batches allocates no queue.
	spare []outItem
	one   [1]outItem // a message sent at once
}

func newOutbox(kind trafficKind, ch *amqp.Channel, publish func(string, []outItem)) *outbox {
	return &outbox{kind: kind, ch: ch, publish: publish, keys: map[string]*outQueue{}, tags: map[uint64]sentTag{}}
}

// send publishes it at once when the window to key has room and nothing
// queued before it, else queues it for the next batch to key.
func (o *outbox) send(key string, it outItem) {
	o.mu.Lock()
	if err := o.failed; err != nil {
		o.mu.Unlock()
		o.fail([]outItem{it}, err)
		return
	}
	q := o.keys[key]
	if q == nil {
		if q = o.free; q != nil {
			o.free = nil
		} else {
			q = &outQueue{}
		}
		o.keys[key] = q
	}
	// A plain message sent less than a confirm's time ago counts as one
	// in flight (to every key: the outbox keeps one time), so a busy key
	// batches as if it had been sent with a confirm. Only a real one in
	// flight holds what queues: its confirm sends it.
	inFlight, plain := q.unconfirmed, false
	var now time.Time
	if o.plain != nil {
		now = time.Now()
		if now.Sub(o.lastPlain) < o.rtt || now.Sub(o.refusedAt) < refusedConfirmAll {
			inFlight++
		} else {
			plain = q.unconfirmed == 0
		}
	}
	if q.publishing || len(q.items) > 0 || (q.unconfirmed > 0 && inFlight >= window) {
		if n := len(q.items); o.kind != trafficReply && n >= maxQueued {
			o.mu.Unlock()
			o.fail([]outItem{it}, core.Errorf(core.ErrTransport,
				"rabbitmq: %d calls to %s wait for the broker to confirm the last message sent there", n, key))
			if o.full != nil {
				o.full(key)
			}
			return
		}
		if q.items == nil {
			q.items, q.spare = q.spare, nil
		}
		q.items = append(q.items, it)
		o.mu.Unlock()
		return
	}
	q.publishing = true
	if plain {
		o.lastPlain = now
	} else {
		q.unconfirmed++
	}
	o.mu.Unlock()
	q.one[0] = it
	if plain {
		o.plain(key, q.one[:])
	} else {
		o.publish(key, q.one[:])
	}
	q.one[0] = outItem{}
	o.mu.Lock()
	q.publishing = false
	o.next(key, q)
}

// next starts the publisher of what queued for key when the window has
// room, or forgets an idle key. Called with o.mu held; it releases it.
func (o *outbox) next(key string, q *outQueue) {
	if q.publishing || o.failed != nil {
		o.mu.Unlock()
		return
	}
	if len(q.items) == 0 {
		if q.unconfirmed == 0 && o.keys[key] == q {
			delete(o.keys, key)
			if o.free == nil {
				// Nobody holds q any more: the caller returns now.
				*q = outQueue{spare: q.spare}
				o.free = q
			}
		}
		o.mu.Unlock()
		return
	}
	if q.unconfirmed >= window {
		o.mu.Unlock()
		return
	}
	batch := o.takeBatch(q)
	q.publishing = true
	q.unconfirmed++
	o.mu.Unlock()
	// Not on the caller's goroutine: it is a sender going back to its own
	// call, or the reader of the channel's confirms.
	go o.publishQueued(key, q, batch)
}

// publishQueued publishes batch, and the batches after it while the
// window has room.
func (o *outbox) publishQueued(key string, q *outQueue, batch []outItem) {
	for {
		o.publish(key, batch)
		clear(batch[:cap(batch)])
		o.mu.Lock()
		if cap(batch) > cap(q.spare) {
			q.spare = batch[:0]
		}
		if len(q.items) == 0 || q.unconfirmed >= window || o.failed != nil {
			q.publishing = false
			o.next(key, q)
			return
		}
		batch = o.takeBatch(q)
		q.unconfirmed++
		o.mu.Unlock()
	}
}

// takeBatch takes the next batch off q. Called with o.mu held.
func (o *outbox) takeBatch(q *outQueue) []outItem {
	items := q.items
	n, size := 0, 0
	for n < len(items) && n < maxBatchItems && (n == 0 || size+len(items[n].body) <= maxBatchBytes) {
		size += len(items[n].body) + len(items[n].id) + 8
		n++
	}
	if n == len(items) {
		q.items, q.spare = q.spare, nil
	} else {
		q.items, q.spare = append(q.spare[:0], items[n:]...), nil
	}
	// The whole array goes with the batch: publishQueued hands it back
	// as q.spare once published.
	return items[:n]
}

// emit publishes msg, carrying items, to key and notes its delivery tag;
// before (if any) runs with the tag before the publish. A failed publish
// leaves the window at once.
func (o *outbox) emit(key string, msg amqp.Publishing, items []outItem, mandatory bool, before func(tag uint64)) error {
	sent := sentTag{key: key, n: len(items)}
	switch {
	case o.kind == trafficCall && len(items) == 1:
		sent.id = items[0].id
	case o.kind == trafficCall:
		sent.ids = make([]string, len(items))
		for i := range items {
			sent.ids[i] = items[i].id
		}
	case o.kind == trafficReply:
		sent.fn = items[0].fn
	}
	return o.emitSent(msg, mandatory, sent, before)
}

// emitSent publishes msg to sent.key and notes sent under its delivery tag.
func (o *outbox) emitSent(msg amqp.Publishing, mandatory bool, sent sentTag, before func(tag uint64)) error {
	o.pub.Lock()
	tag := o.ch.GetNextPublishSeqNo()
	o.mu.Lock()
	if o.plain != nil { // the confirm's time decides when a message may go plain
		sent.at = time.Now()
	}
	o.tags[tag] = sent
	o.mu.Unlock()
	if before != nil {
		before(tag)
	}
	err := o.ch.Publish("", sent.key, mandatory, false, msg)
	o.pub.Unlock()
	if err != nil {
		o.confirmed(tag, true) // the caller fails what it carried
	}
	return err
}

// confirmed ends the flight of the message with this delivery tag: what
// queued goes out next. ack is false when the broker refused the message
// (a nack): o.nacked is told. Tags the outbox did not send are ignored.
func (o *outbox) confirmed(tag uint64, ack bool) {
	o.mu.Lock()
	sent, ok := o.tags[tag]
	delete(o.tags, tag)
	if !ok || sent.handBack {
		o.mu.Unlock()
		if !ack && sent.handBack && o.nacked != nil {
			o.nacked(sent)
		}
		return
	}
	if o.plain != nil {
		o.rtt += (time.Since(sent.at) - o.rtt) / 8
	}
	if !ack {
		o.refusedAt = time.Now()
	}
	o.release(sent.key)
	if !ack && o.nacked != nil {
		o.nacked(sent)
	}
}

// release frees a place in key's window. Called with o.mu held; it
// releases it.
func (o *outbox) release(key string) {
	q := o.keys[key]
	if q == nil {
		o.mu.Unlock()
		return
	}
	q.unconfirmed--
	o.next(key, q)
}

// idle frees the place in key's window of a publish that sent nothing
// after all (every call in the batch had expired).
func (o *outbox) idle(key string) {
	o.mu.Lock()
	o.release(key)
}

// failQueued fails what waits in the outbox, and all that is sent to it
// from now on: its session is lost.
func (o *outbox) failQueued(err error) {
	o.mu.Lock()
	o.failed = err
	var items []outItem
	for key, q := range o.keys {
		items = append(items, q.items...)
		delete(o.keys, key)
	}
	o.mu.Unlock()
	o.fail(items, err)
}

// fail tells the senders of items, which will not be published, why.
func (o *outbox) fail(items []outItem, err error) {
	for _, it := range items {
		switch {
		case it.p != nil:
			if p := o.take(it.id); p != nil {
				p.ch <- core.Reply{Err: err}
			}
		case it.w != nil:
			it.w.settle(err)
		case it.r != nil:
			it.r.done()
		}
	}
}

// confirms reads the confirms of an outbox's channel.
func (o *outbox) confirms(wg *sync.WaitGroup, confirms <-chan amqp.Confirmation) {
	defer wg.Done()
	for c := range confirms {
		o.confirmed(c.DeliveryTag, c.Ack)
	}
}
