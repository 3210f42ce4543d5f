package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/mqantgen/mqantgen/core"
)

// errDuplicate is returned when another connection consumes an
// instance's queue: that instance id is served elsewhere.
var errDuplicate = errors.New("instance id already served by another process")

// instanceQueueArgs are the arguments of every instance queue: it
// outlives its consumer by expiry (a reconnecting process finds the calls
// sent meanwhile), not much longer (a dead process's queue goes).
func instanceQueueArgs(expiry time.Duration) amqp.Table {
	ms := int32(max(expiry.Milliseconds(), 1))
	// x-message-ttl: probes (passive declares) renew the lease, so a dead
	// instance's queue that is still pushed to stays; its calls do not.
	return amqp.Table{"x-expires": ms, "x-message-ttl": ms}
}

// consumer is one endpoint's consuming channel on one session. It keeps
// consuming through what an operator or the broker does to it: a consumer
// the broker cancels (its queue was deleted) is declared and consumed
// again, and a channel the broker closes is opened again, without
// disturbing the connection and the other endpoints.
type consumer struct {
	s *session
	e *endpoint

	mu     sync.Mutex
	ch     *amqp.Channel
	acker  *acker
	tags   map[string]string // consumer tag -> queue, on ch
	serveG sync.WaitGroup    // delivery loops of ch

	stopping atomic.Bool // graceful stop: deliveries from now on are handed back
	// abandoned: a stop ran out of drain time and closes the channel; the
	// deliveries still buffered go back to the broker (redelivered), so
	// they are neither run nor handed back here.
	abandoned atomic.Bool
	stopc     chan struct{} // closed to end run
	done      chan struct{} // run has returned
	seq       atomic.Uint64 // consumer tags
}

func (s *session) newConsumer(e *endpoint) *consumer {
	return &consumer{s: s, e: e, stopc: make(chan struct{}), done: make(chan struct{})}
}

// attach opens a channel and consumes the endpoint's queues on it. The
// instance queue is declared first: until it is ours, nothing is consumed
// from the shared type queue, so a duplicate instance never takes (and
// drops) calls meant for the healthy ones.
func (c *consumer) attach() (closed chan *amqp.Error, cancels chan string, err error) {
	ch, err := c.s.conn.Channel()
	if err != nil {
		return nil, nil, err
	}
	closed = ch.NotifyClose(make(chan *amqp.Error, 1))
	cancels = ch.NotifyCancel(make(chan string, 4))
	fail := func(err error) (chan *amqp.Error, chan string, error) {
		_ = ch.Close()
		return nil, nil, err
	}
	if err := ch.Qos(prefetch, 0, false); err != nil {
		return fail(err)
	}
	a := newAcker(c.s, ch)
	c.mu.Lock()
	c.ch, c.acker, c.tags = ch, a, map[string]string{}
	c.mu.Unlock()
	for _, q := range []string{c.iq(), c.tq()} {
		if err := c.consume(q); err != nil {
			close(a.stop)
			return fail(err)
		}
	}
	return closed, cancels, nil
}

// queueErr says what failed on queue q: declaring it (declare) or
// consuming it. Only the instance queue's exclusive consume refused
// (ACCESS_REFUSED: another connection consumes it) and its declare locked
// (RESOURCE_LOCKED: an older version holds it as an exclusive queue) mean
// a duplicate; a permission refused is the user's.
func (c *consumer) queueErr(q string, err error, declare bool) error {
	var ae *amqp.Error
	if !errors.As(err, &ae) {
		return err
	}
	inst := q == c.iq()
	switch {
	case inst && declare && ae.Code == amqp.ResourceLocked:
		return errDuplicate
	case inst && !declare && ae.Code == amqp.AccessRefused && !strings.Contains(ae.Reason, "refused for user"):
		return errDuplicate
	case ae.Code == amqp.PreconditionFailed:
		return fmt.Errorf("%w (queue %s exists with other properties, declared by an older version, another instance queue expiry or by hand: delete it, rabbitmqctl delete_queue %s)", err, q, q)
	case ae.Code == amqp.AccessRefused:
		return fmt.Errorf("%w (queue %s: the broker user lacks permission to declare or consume it)", err, q)
	}
	return fmt.Errorf("%w (queue %s)", err, q)
}

func (c *consumer) iq() string { return instancePrefix + c.e.id }
func (c *consumer) tq() string { return typePrefix + c.e.typ }

// consume declares queue q and consumes it on the current channel. The
// type queue lives while any instance consumes it (auto-delete), so a
// mandatory publish to an unserved type comes back at once. The instance
// queue outlives its consumer by its expiry and is consumed
// exclusively: calls (pushes to a gate) sent while its process reconnects
// wait there for it, and a second process with the same id is refused.
func (c *consumer) consume(q string) error {
	c.mu.Lock()
	ch, a := c.ch, c.acker
	c.mu.Unlock()
	inst := q == c.iq()
	var args amqp.Table
	if inst {
		args = instanceQueueArgs(c.s.t.instanceQueueExpiry())
	}
	dq, err := ch.QueueDeclare(q, false, !inst, false, false, args)
	if err != nil {
		return c.queueErr(q, err, true)
	}
	tag := c.s.t.prefix + c.e.id + "." + strconv.FormatUint(c.seq.Add(1), 10)
	deliveries, err := ch.Consume(q, tag, false, inst, false, false, nil)
	if err != nil {
		return c.queueErr(q, err, false)
	}
	// Redelivered calls may be run only when this process consumed the
	// instance queue before (then they were delivered to it, and callLog
	// knows whether they started); on a first consume they come from
	// another process, which may have run them.
	ours := inst && c.e.calls.consumed.Swap(true)
	if inst && dq.Messages > 0 {
		// Counted before the consume: what arrived in between is not.
		c.s.t.stats.waited.Add(int64(dq.Messages))
		msg := "calls waited in the instance queue while it had no consumer (a predecessor with this id left them); delivering them"
		if ours {
			msg = "calls waited in the instance queue while this process reconnected; delivering them"
		}
		c.s.t.log.Info(msg, "id", c.e.id, "queue", q, "calls", dq.Messages)
	}
	c.mu.Lock()
	c.tags[tag] = q
	c.mu.Unlock()
	// One goroutine takes deliveries off the client library as they
	// arrive and notes when; another serves them. A call handed back at a
	// graceful stop then carries what is left of its deadline, not all of
	// it. The broker sends at most prefetch unacknowledged deliveries per
	// consumer, so buf never holds the reader up for long.
	buf := make(chan received, prefetch)
	c.serveG.Add(2)
	go func() {
		defer c.serveG.Done()
		defer close(buf)
		// Ends when the consumer is cancelled (after the deliveries
		// already buffered) or its channel closes.
		for d := range deliveries {
			buf <- received{d, time.Now()}
		}
	}()
	go func() {
		defer c.serveG.Done()
		for rd := range buf {
			d := rd.d
			if c.abandoned.Load() {
				continue
			}
			a.register(d.DeliveryTag)
			// A redelivered call may have run at the instance that died
			// with it: it goes through serve's refusal, not handed back
			// as a fresh message another instance would run again.
			if c.stopping.Load() && q == c.tq() && !d.Redelivered {
				c.handBack(a, d, rd.at)
				continue
			}
			c.s.serve(c.e, a, d, inst, ours)
		}
	}()
	return nil
}

// received is a delivery and when it reached this process.
type received struct {
	d  amqp.Delivery
	at time.Time
}

// waitBounded waits for wg until deadline; false if it did not end.
func waitBounded(wg *sync.WaitGroup, deadline time.Time) bool {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// run keeps the endpoint consuming until stop or the session ends.
func (c *consumer) run(closed chan *amqp.Error, cancels chan string) {
	defer close(c.done)
	backoff := 100 * time.Millisecond
	var dupSince, logged time.Time
	for {
		if closed == nil {
			var err error
			closed, cancels, err = c.attach()
			if err != nil {
				now := time.Now()
				if errors.Is(err, errDuplicate) && !c.e.calls.consumed.Load() {
					// Never consumed by this process: another one's.
					c.s.forget(c)
					c.s.t.refuse(c.e, err)
					return
				}
				if errors.Is(err, errDuplicate) {
					if dupSince.IsZero() {
						dupSince = now
					}
					// The broker may still hold the consumer of our dead
					// connection until it notices (two heartbeats); past
					// that, another process took this instance id over.
					if now.Sub(dupSince) > time.Duration(takeoverAfter.Load()) {
						c.s.takenOver(c, now.Sub(dupSince))
						return
					}
				} else {
					dupSince = time.Time{}
				}
				if now.Sub(logged) >= consumeRetryLogEvery {
					logged = now
					c.s.t.log.Warn("RPC endpoint cannot consume; retrying", "id", c.e.id, "err", err, "retryIn", backoff)
				}
				select {
				case <-time.After(backoff):
				case <-c.stopc:
					return
				case <-c.s.lost:
					return
				}
				backoff = min(backoff*2, reconnectMax)
				continue
			}
			dupSince, logged = time.Time{}, time.Time{}
			backoff = 100 * time.Millisecond
			c.s.t.log.Info("RPC endpoint consuming again", "id", c.e.id)
		}
		select {
		case tag := <-cancels:
			c.mu.Lock()
			q := c.tags[tag]
			delete(c.tags, tag)
			c.mu.Unlock()
			c.s.t.log.Warn("consumer cancelled by the broker (queue deleted?): calls and pushes waiting in it are lost; declaring and consuming it again", "id", c.e.id, "queue", q)
			if q == "" {
				continue
			}
			if err := c.consume(q); err != nil {
				// The channel is likely gone with it: start over.
				c.s.t.log.Warn("consuming again failed; reopening the channel", "id", c.e.id, "queue", q, "err", err)
				c.drop()
				closed = nil
			}
		case err, ok := <-closed:
			if !ok || err == nil {
				// Closed by us (stop) or with the connection.
				select {
				case <-c.stopc:
					return
				case <-c.s.lost:
					return
				default:
				}
			}
			c.s.t.log.Warn("consumer channel closed by the broker; opening it again", "id", c.e.id, "err", err)
			c.drop()
			closed = nil
		case <-c.stopc:
			return
		case <-c.s.lost:
			return
		}
	}
}

// drop forgets a dead channel: its unacknowledged calls went back to
// their queues (redelivered, so not run twice).
func (c *consumer) drop() {
	c.mu.Lock()
	ch, a := c.ch, c.acker
	c.mu.Unlock()
	if a != nil {
		close(a.stop)
	}
	if ch != nil {
		_ = ch.Close()
	}
	// Bounded: a handler that never returns holds its delivery loop.
	if !waitBounded(&c.serveG, time.Now().Add(c.s.t.drainTimeout())) {
		c.s.t.log.Warn("a handler still runs on the dropped consumer channel; going on without it", "id", c.e.id)
	}
}

// stop ends consuming gracefully: cancel the consumers so the broker sends
// no more, hand back to the type queue what arrives after that without
// having started, wait (up to drain) for the calls running, acknowledge
// them, and only then close the channel. Closing first would send every
// unacknowledged call back as redelivered, which other instances refuse.
func (c *consumer) stop(drain time.Duration) {
	c.stopping.Store(true)
	close(c.stopc)
	<-c.done
	c.mu.Lock()
	ch, a := c.ch, c.acker
	tags := make([]string, 0, len(c.tags))
	for tag := range c.tags {
		tags = append(tags, tag)
	}
	c.mu.Unlock()
	if ch == nil || ch.IsClosed() {
		return
	}
	for _, tag := range tags {
		if err := ch.Cancel(tag, false); err != nil {
			c.s.t.log.Debug("consumer cancel failed", "id", c.e.id, "err", err)
		}
	}
	deadline := time.Now().Add(drain)
	// Deliveries buffered before the cancel-ok are served or handed back;
	// a handler that does not return holds its loop: bounded by drain.
	if !waitBounded(&c.serveG, deadline) {
		c.abandoned.Store(true)
		c.s.t.log.Warn("calls still being delivered to handlers when the drain time ran out; closing anyway (unacknowledged calls go back redelivered, and are refused)", "id", c.e.id)
	}
	if !a.waitIdle(deadline) {
		c.s.t.log.Warn("calls still running when the consumer closed; they are not run again elsewhere", "id", c.e.id, "running", a.running())
	}
	close(a.stop)
	a.flush(true)
	// The instance queue would outlive us by its expiry: delete it, so
	// calls to this instance fail at once (not found) instead of waiting
	// there for nobody. What arrived after the cancel is dropped, and said.
	if n, err := ch.QueueDelete(c.iq(), false, false, false); err != nil {
		c.s.t.log.Debug("instance queue not deleted", "id", c.e.id, "err", err)
	} else if n > 0 {
		c.s.t.stats.droppedAtStop.Add(int64(n))
		c.s.t.log.Warn("calls left in the instance queue dropped at stop", "id", c.e.id, "queue", c.iq(), "calls", n)
	}
	_ = ch.Close()
}

// handBack returns a call that never started to its type queue as a new
// message, so another instance runs it: requeueing it would mark it
// redelivered, and it would be refused as possibly run. It carries what is
// left of its deadline after waiting here since at; a call with nothing
// left is answered with a timeout instead.
func (c *consumer) handBack(a *acker, d amqp.Delivery, at time.Time) {
	if d.ContentType == batchContentType {
		c.handBackBatch(a, d, at)
		return
	}
	if d.Expiration != "" {
		ms, err := strconv.ParseInt(d.Expiration, 10, 64)
		if err == nil {
			left := ms - time.Since(at).Milliseconds()
			if left <= 0 {
				c.s.t.log.Debug("call not handed back: its deadline passed while it waited at the stopping instance", "id", c.e.id)
				if d.ReplyTo != "" {
					fn := "?"
					if call, err := decodeCall(d.Body); err == nil {
						fn = call.fn
					}
					rep := core.Reply{Err: core.Errorf(core.ErrTimeout, "call %s: deadline exceeded while its instance stopped", fn)}
					c.s.reply(d.ReplyTo, d.CorrelationId, rep, fn, core.TraceContext{}, nil)
				}
				a.complete(d.DeliveryTag)
				return
			}
			if body, err := withTimeout(d.Body, uint64(left)); err == nil {
				d.Body, d.Expiration = body, strconv.FormatInt(left, 10)
			}
		}
	}
	if err := c.s.republish(d); err != nil {
		c.s.t.log.Warn("call could not be handed back; the broker redelivers it", "id", c.e.id, "err", err)
		a.forget(d.DeliveryTag) // left unacknowledged: the channel's close requeues it
		return
	}
	a.complete(d.DeliveryTag)
}

// handBackBatch hands back the calls of a batch that never started, as one
// batch, each with what is left of its own deadline; a call with nothing
// left is answered with a timeout instead.
func (c *consumer) handBackBatch(a *acker, d amqp.Delivery, at time.Time) {
	es, err := decodeBatch(d.Body)
	if err != nil {
		c.s.t.log.Warn("call batch not readable; dropped (its callers time out)", "id", c.e.id, "err", err)
		a.complete(d.DeliveryTag)
		return
	}
	now := time.Now()
	waited := now.Sub(at).Milliseconds()
	items := make([]outItem, 0, len(es))
	for _, en := range es {
		_, _, ms, _, err := splitCall(en.body)
		if err != nil {
			c.s.t.log.Warn("call in a batch not readable; dropped (its caller times out)", "id", c.e.id, "err", err)
			continue
		}
		it := outItem{id: string(en.id), body: en.body, ms: ms}
		if ms > 0 {
			left := int64(ms) - waited
			if left <= 0 {
				if d.ReplyTo != "" {
					rep := core.Reply{Err: core.Errorf(core.ErrTimeout, "call: deadline exceeded while its instance stopped")}
					c.s.reply(d.ReplyTo, it.id, rep, "", core.TraceContext{}, nil)
				}
				continue
			}
			it.deadline = now.Add(time.Duration(left) * time.Millisecond)
		}
		items = append(items, it)
	}
	if len(items) == 0 {
		a.complete(d.DeliveryTag)
		return
	}
	body, longest := batchBody(items, now)
	d.Body, d.Expiration = body, ""
	if longest > 0 {
		d.Expiration = strconv.FormatInt(longest, 10)
	}
	if err := c.s.republish(d); err != nil {
		c.s.t.log.Warn("calls could not be handed back; the broker redelivers them", "id", c.e.id, "err", err)
		a.forget(d.DeliveryTag) // left unacknowledged: the channel's close requeues it
		return
	}
	a.complete(d.DeliveryTag)
}

// serve hands the calls of one delivery (one call, or a batch) to the
// endpoint, in order; the delivery is acknowledged when all of them ran.
// inst: it came from the instance queue; ours: this process consumed that
// queue before.
func (s *session) serve(e *endpoint, a *acker, d amqp.Delivery, inst, ours bool) {
	if d.ContentType != batchContentType {
		s.serveOne(e, a, d, d.CorrelationId, d.Body, inst, ours, nil)
		return
	}
	es, err := decodeBatch(d.Body)
	if err != nil {
		s.t.log.Warn("call batch not readable; dropped (its callers time out)", "id", e.id, "queue", d.RoutingKey, "err", err)
		a.complete(d.DeliveryTag)
		return
	}
	g := &deliveryGroup{a: a, tag: d.DeliveryTag}
	g.left.Store(int32(len(es)))
	// The calls' ids as substrings of one string: one allocation per
	// batch, not one per call.
	var ids strings.Builder
	n := 0
	for _, en := range es {
		n += len(en.id)
	}
	ids.Grow(n)
	for _, en := range es {
		ids.Write(en.id)
	}
	all, off := ids.String(), 0
	for _, en := range es {
		id := all[off : off+len(en.id)]
		off += len(en.id)
		s.serveOne(e, a, d, id, en.body, inst, ours, g)
	}
}

// deliveryGroup acknowledges a batch's delivery once its last call ran.
type deliveryGroup struct {
	a    *acker
	tag  uint64
	left atomic.Int32
}

// serveOne hands one call (id, body) of delivery d to the endpoint. Each
// call of a batch follows the rules of a single one: deduplicated by its
// id, refused when redelivered and possibly run, its own deadline.
func (s *session) serveOne(e *endpoint, a *acker, d amqp.Delivery, id string, body []byte, inst, ours bool, g *deliveryGroup) {
	// The responder and the request are one allocation.
	rr := &struct {
		responder
		req core.Request
	}{responder: responder{s: s, a: a, replyTo: d.ReplyTo, tag: d.DeliveryTag, id: id, group: g}}
	r := &rr.responder
	c, err := decodeCall(body)
	if err != nil {
		r.Respond(core.Reply{Err: core.Errorf(core.ErrBadRequest, "rabbitmq: %v", err)})
		return
	}
	r.noReply, r.fn, r.trace = c.noReply, c.fn, c.trace
	if d.Redelivered {
		if !ours || e.calls.started(id) {
			// Its first consumer died mid-call: it may have run. At most once.
			s.t.stats.redeliveredRefused.Add(1)
			s.t.losses.log(s.t.log, slog.LevelWarn, "redelivered call not run again: it may have run", d.RoutingKey, 1, "id", e.id, "fn", c.fn, "noReply", c.noReply,
				"trace_id", c.trace.TraceIDString())
			r.Respond(core.Reply{Err: core.Errorf(core.ErrTransport, "call %s was interrupted by a consumer failure and is not run twice", c.fn)})
			return
		}
		// Delivered to this process before its connection dropped, but it
		// never reached a handler: running it now is running it once.
		s.t.stats.redeliveredRun.Add(1)
	}
	if inst {
		e.calls.start(id)
		r.calls = e.calls
	}
	ctx := context.Background()
	if c.timeoutMs > 0 {
		// No timer unless the handler waits on its context.
		ctx = core.ServeContext(ctx, time.Now().Add(time.Duration(c.timeoutMs)*time.Millisecond), c.trace)
		r.ctx = ctx
	}
	// The server answers even no-reply calls here, so the delivery is
	// acknowledged after the handler ran; the responder sends nothing back.
	rr.req = core.Request{Fn: c.fn, Session: c.session, Raw: c.arg, Trace: c.trace}
	e.serve(ctx, &rr.req, r)
}

// responder publishes a call's reply and then acknowledges the call.
type responder struct {
	s       *session
	a       *acker
	replyTo string         // the delivery's reply address
	tag     uint64         // the delivery's tag
	id      string         // the call's id
	group   *deliveryGroup // the calls of d's batch; nil for a single call
	fn      string
	trace   core.TraceContext
	noReply bool
	ctx     context.Context // the handler's, from core.ServeContext: released after it ran
	calls   *callLog        // set for calls from the instance queue
}

func (r *responder) Respond(rep core.Reply) {
	if r.ctx != nil {
		core.ReleaseServeContext(r.ctx)
	}
	if r.calls != nil {
		r.calls.end(r.id)
	}
	if r.noReply {
		if rep.Err != nil {
			r.s.t.log.Warn("no-reply call failed", "fn", r.fn, "err", rep.Err, "trace_id", r.trace.TraceIDString())
		}
	} else if r.replyTo != "" {
		// Acknowledged once the reply is out, as before batching: a
		// reply still queued when the process dies leaves its call
		// unacknowledged, redelivered and refused (at most once).
		r.s.reply(r.replyTo, r.id, rep, r.fn, r.trace, r)
		return
	}
	r.done()
}

// done acknowledges the call's delivery, once every call of its batch ran.
func (r *responder) done() {
	if r.group == nil || r.group.left.Add(-1) == 0 {
		r.a.complete(r.tag)
	}
}
