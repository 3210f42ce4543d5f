package rabbitmq

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/mqantgen/mqantgen/core"
)

// session is one broker connection and the channels on it. A reconnect
// makes a new session; nothing is reused across connections.
type session struct {
	t    *Transport
	conn *amqp.Connection
	wire *wireConn // conn's socket: holds writes while a message is published

	// callCh publishes calls that want a reply and consumes their replies
	// (direct reply-to needs both on one channel); plainCallCh, not in
	// confirm mode, does the same for calls sent while nothing to their
	// queue is in flight (batch.go).
	callCh, plainCallCh *amqp.Channel
	pmu                 sync.Mutex
	pending             map[string]*pendingCall

	// nrCh is in confirm mode: no-reply calls wait for the broker's
	// confirm, and a basic.return before it means nobody serves the target.
	nrCh   *amqp.Channel
	nrMu   sync.Mutex
	nrWait map[uint64]*nrPublished
	nrRet  map[string]bool // correlation ids of no-reply messages the broker returned

	// replyCh publishes replies of the calls this process serves; plainCh,
	// not in confirm mode, those sent while nothing to their caller is in
	// flight (batch.go).
	replyCh, plainCh *amqp.Channel

	// The outboxes batch what queues behind a publish in flight to the
	// same routing key (batch.go). A call's remaining time is taken when
	// it goes out, so time it waits there counts against its deadline.
	calls, noReplies, replies *outbox

	smu       sync.Mutex
	consumers map[string]*consumer // instance id -> its consuming channel

	rmu      sync.Mutex
	reportCh *amqp.Channel // publishes console reports (reports.go)

	lost     chan struct{}
	lostOnce sync.Once
	errMu    sync.Mutex
	err      error
	wg       sync.WaitGroup
}

type pendingCall struct {
	id    string // its key in session.pending
	to    core.Target
	fn    string
	queue string
	sent  time.Time
	ch    chan core.Reply
}

type nrWaiter struct {
	id    string
	to    core.Target
	ch    chan error
	watch *pushWatch // a push to an instance queue (queue): followed until settled
	queue string
	done  atomic.Bool
	// abandoned: the sender gave up waiting (its context ended, or no
	// confirm came): a call still queued then is not sent.
	abandoned atomic.Bool
}

// errAbandoned settles a no-reply call that was never sent because its
// sender had given up on it first (nobody reads it: the sender has its own
// error).
var errAbandoned = core.Errorf(core.ErrTransport, "rabbitmq: no-reply call not sent: its sender gave up")

// settle tells the sender how its no-reply call ended: nil once the broker
// confirmed it. The first settle counts; a later one (a lost connection's
// failAll racing a failed publish) is ignored: a second send on ch could
// block its sender forever, and the watch would count the push twice.
func (w *nrWaiter) settle(err error) {
	if !w.done.CompareAndSwap(false, true) {
		return
	}
	if w.watch != nil {
		w.watch.settled(w.queue, err == nil)
	}
	w.ch <- err
}

// nrPublished is one no-reply message waiting for its confirm: one call,
// or a batch of calls to one queue.
type nrPublished struct {
	id    string // the message's correlation id
	queue string
	ws    []*nrWaiter
}

func (t *Transport) connect() (*session, error) {
	conn, wire, err := dialBroker(t.uri, amqp.Config{Heartbeat: time.Duration(heartbeat.Load()), Locale: "en_US",
		Properties: amqp.Table{"connection_name": t.name}})
	if err != nil {
		return nil, t.scrub(err)
	}
	s := &session{t: t, conn: conn, wire: wire, pending: map[string]*pendingCall{}, nrWait: map[uint64]*nrPublished{},
		nrRet: map[string]bool{}, consumers: map[string]*consumer{}, lost: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			_ = conn.CloseDeadline(time.Now().Add(closeWait))
			s.wg.Wait()
		}
	}()
	blocked := conn.NotifyBlocked(make(chan amqp.Blocking, 4))
	s.wg.Add(1)
	go s.watchBlocked(blocked)
	connClosed := conn.NotifyClose(make(chan *amqp.Error, 1))
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if e, open := <-connClosed; open && e != nil {
			s.fail(e)
		} else {
			s.fail(nil)
		}
	}()
	// The publishing channels are in confirm mode (but plainCh): a confirm
	// ends a message's flight, and what queued behind it goes next
	// (batch.go).
	if s.callCh, err = s.callChannel(true); err != nil {
		return nil, err
	}
	if s.plainCallCh, err = s.callChannel(false); err != nil {
		return nil, err
	}
	s.calls = newOutbox(trafficCall, s.callCh, s.publishCalls)
	s.calls.plain = s.publishPlainCalls
	s.calls.take = s.take
	s.calls.nacked = s.callsRefused
	s.calls.full = s.outboxFull
	s.wg.Add(1)
	go s.calls.confirms(&s.wg, s.callCh.NotifyPublish(make(chan amqp.Confirmation, 1024)))

	if s.nrCh, err = s.channel(); err != nil {
		return nil, err
	}
	if err := s.nrCh.Confirm(false); err != nil {
		return nil, err
	}
	// Unbuffered returns: the client library hands over a return before it
	// processes the confirm that follows it, and one goroutine reads both,
	// so a return is always seen before its confirm.
	nrReturns := s.nrCh.NotifyReturn(make(chan amqp.Return))
	confirms := s.nrCh.NotifyPublish(make(chan amqp.Confirmation, 1024))
	s.noReplies = newOutbox(trafficNoReply, s.nrCh, s.publishNoReply)
	s.noReplies.full = s.outboxFull
	s.wg.Add(1)
	go s.nrEvents(nrReturns, confirms)

	if s.replyCh, err = s.channel(); err != nil {
		return nil, err
	}
	if err := s.replyCh.Confirm(false); err != nil {
		return nil, err
	}
	if s.plainCh, err = s.channel(); err != nil {
		return nil, err
	}
	s.replies = newOutbox(trafficReply, s.replyCh, s.publishReplies)
	s.replies.plain = s.publishPlainReply
	s.replies.nacked = s.repliesRefused
	s.wg.Add(1)
	go s.replies.confirms(&s.wg, s.replyCh.NotifyPublish(make(chan amqp.Confirmation, 1024)))
	s.wg.Add(1)
	go s.watchTargets()
	ok = true
	return s, nil
}

// channel opens a channel whose closing (for any reason) fails the
// session: the supervisor then reconnects from scratch.
func (s *session) channel() (*amqp.Channel, error) {
	ch, err := s.conn.Channel()
	if err != nil {
		return nil, err
	}
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if e, open := <-closed; open && e != nil {
			s.fail(e)
		}
	}()
	return ch, nil
}

// callChannel opens a channel that publishes calls and reads their replies
// and returns; in confirm mode when confirm is set.
func (s *session) callChannel(confirm bool) (*amqp.Channel, error) {
	ch, err := s.channel()
	if err != nil {
		return nil, err
	}
	if confirm {
		if err := ch.Confirm(false); err != nil {
			return nil, err
		}
	}
	replies, err := ch.Consume(replyTo, "", true, false, false, false, nil)
	if err != nil {
		return nil, err
	}
	returns := ch.NotifyReturn(make(chan amqp.Return))
	s.wg.Add(1)
	go s.callEvents(replies, returns)
	return ch, nil
}

// fail marks the session lost; the supervisor reacts.
func (s *session) fail(err error) {
	s.lostOnce.Do(func() {
		s.errMu.Lock()
		s.err = err
		s.errMu.Unlock()
		close(s.lost)
	})
}

func (s *session) lostErr() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

func (s *session) close() {
	// Bounded: a broker that stops reading must not hold a shutdown.
	_ = s.conn.CloseDeadline(time.Now().Add(closeWait))
	s.wg.Wait()
}

// failAll fails every call still waiting on this session.
func (s *session) failAll(err error) {
	for _, o := range []*outbox{s.calls, s.noReplies, s.replies} {
		o.failQueued(err)
	}
	s.pmu.Lock()
	for id, p := range s.pending {
		p.ch <- core.Reply{Err: err}
		delete(s.pending, id)
	}
	s.pmu.Unlock()
	s.nrMu.Lock()
	for tag, m := range s.nrWait {
		for _, w := range m.ws {
			w.settle(err)
		}
		delete(s.nrWait, tag)
	}
	s.nrMu.Unlock()
}

func (s *session) take(id string) *pendingCall {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	p := s.pending[id]
	delete(s.pending, id)
	return p
}

// takeRaw is take for an id read from a batch: no string made for it.
func (s *session) takeRaw(id []byte) *pendingCall {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	p := s.pending[string(id)] // no conversion made for a lookup
	if p != nil {
		delete(s.pending, p.id)
	}
	return p
}

// callEvents routes replies and returns of calls to their waiters.
func (s *session) callEvents(replies <-chan amqp.Delivery, returns <-chan amqp.Return) {
	defer s.wg.Done()
	for replies != nil || returns != nil {
		select {
		case d, ok := <-replies:
			if !ok {
				replies = nil
				continue
			}
			if d.ContentType != batchContentType {
				if p := s.take(d.CorrelationId); p != nil {
					p.ch <- decodeReply(d.Body)
				}
				continue
			}
			es, err := decodeBatch(d.Body)
			if err != nil {
				s.t.log.Warn("reply batch not readable; its callers time out", "err", err)
			}
			for _, e := range es {
				if p := s.takeRaw(e.id); p != nil {
					p.ch <- decodeReply(e.body)
				}
			}
		case r, ok := <-returns:
			if !ok {
				returns = nil
				continue
			}
			// A returned batch fails every call in it at once.
			es, err := entries(r.ContentType, r.CorrelationId, r.Body)
			if err != nil {
				s.t.log.Warn("returned batch not readable; its callers time out", "queue", r.RoutingKey, "err", err)
			}
			for _, e := range es {
				if p := s.takeRaw(e.id); p != nil {
					p.ch <- core.Reply{Err: notFound(p.to)}
				} else if r.Headers[handBackHeader] != nil {
					s.handBackReturned(r, string(e.id))
				}
			}
		}
	}
}

// call publishes a call and waits for its reply. The remaining time is
// taken again when the call goes out (publishCalls), so time spent queued
// behind other publishes counts; a call whose deadline has passed is never
// published.
func (s *session) call(ctx context.Context, to core.Target, req *core.Request, id string) (core.Reply, error) {
	q := queueFor(to)
	p := pendingCalls.Get().(*pendingCall)
	p.id, p.to, p.fn, p.queue = id, to, req.Fn, q
	it := outItem{id: id, p: p}
	if d, ok := ctx.Deadline(); ok {
		left := time.Until(d)
		if left <= 0 || ctx.Err() != nil {
			p.recycle()
			return core.Reply{}, timeoutError(ctx, to, req.Fn)
		}
		it.ms, it.deadline = uint64(max(left.Milliseconds(), 1)), d
	}
	body, err := encodeCallArg(req, it.ms)
	if err != nil {
		p.recycle()
		return core.Reply{}, argError(req, err)
	}
	it.body = body
	p.sent = time.Now()
	s.pmu.Lock()
	s.pending[id] = p
	s.pmu.Unlock()
	s.calls.send(q, it)
	if done, ok := core.DeadlineWait(ctx); ok && !it.deadline.IsZero() {
		// The deadline or its parent ends ctx: a pooled timer, not ctx's own.
		t := timers.Get().(*time.Timer)
		t.Reset(time.Until(it.deadline))
		select {
		case r := <-p.ch:
			t.Stop()
			timers.Put(t)
			p.recycle()
			return r, r.Err
		case <-t.C:
			timers.Put(t)
			s.take(id)
			return core.Reply{}, timeoutError(ctx, to, req.Fn)
		case <-done:
			t.Stop()
			timers.Put(t)
			s.take(id)
			return core.Reply{}, timeoutError(ctx, to, req.Fn)
		}
	}
	select {
	case r := <-p.ch:
		p.recycle()
		return r, r.Err
	case <-ctx.Done():
		s.take(id)
		return core.Reply{}, timeoutError(ctx, to, req.Fn)
	}
}

// pendingCalls are calls' records for reuse. A record is handed back
// once its reply was received: whoever sent it had taken it out of
// session.pending first and does not touch it after the send, and the
// outbox's items only compare it with nil (they find calls by id). A call
// that timed out leaves its record to the collector: a reply may be on
// its way into the channel.
var pendingCalls = sync.Pool{New: func() any { return &pendingCall{ch: make(chan core.Reply, 1)} }}

func (p *pendingCall) recycle() {
	*p = pendingCall{ch: p.ch}
	pendingCalls.Put(p)
}

// timers are stopped timers for calls that wait for their deadline alone
// (since Go 1.23 a stopped or fired timer can be reset without a stale
// value in its channel).
var timers = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}}

// reply publishes the reply of a call this process served, batched with
// the other replies to the same caller (publishReplies logs a failure).
// r (if any) is the call's responder: its done runs once the reply is
// published or failed.
func (s *session) reply(to, corrID string, rep core.Reply, fn string, trace core.TraceContext, r *responder) {
	s.replies.send(to, outItem{id: corrID, body: encodeReply(rep), fn: fn, trace: trace, r: r})
}

// handBackHeader marks a call handed back by a stopping instance.
const handBackHeader = "x-mqant-handed-back"

var handedBack = amqp.Table{handBackHeader: true}

// republish hands a call that never started back to the queue it came
// from as a new message. Mandatory: when no instance is left there, the
// broker returns it and callEvents answers its caller.
//
// The delivery is acknowledged once the publish is written, not confirmed:
// should the broker refuse it (a nack), callsRefused answers its callers.
func (s *session) republish(d amqp.Delivery) error {
	sent := sentTag{key: d.RoutingKey, handBack: true, replyTo: d.ReplyTo}
	if es, err := entries(d.ContentType, d.CorrelationId, d.Body); err == nil {
		sent.n = len(es)
		for _, e := range es {
			sent.ids = append(sent.ids, string(e.id))
		}
	}
	return s.calls.emitSent(amqp.Publishing{Headers: handedBack, ContentType: d.ContentType,
		CorrelationId: d.CorrelationId, ReplyTo: d.ReplyTo, Expiration: d.Expiration, Body: d.Body}, true, sent, nil)
}

// handBackReturned answers the caller of a handed-back call (id) that
// found no instance left to run it.
func (s *session) handBackReturned(r amqp.Return, id string) {
	to := core.Target{Type: strings.TrimPrefix(r.RoutingKey, typePrefix)}
	if r.ReplyTo == "" {
		s.t.log.Warn("no-reply call lost: its instance stopped and no other serves the type", "queue", r.RoutingKey)
		return
	}
	s.reply(r.ReplyTo, id, core.Reply{Err: notFound(to)}, "", core.TraceContext{}, nil)
}

// callsRefused fails the calls of a message the broker refused (a nack:
// a queue at its length limit with overflow reject-publish, or an
// internal error) at once, rather than at their deadline.
func (s *session) callsRefused(sent sentTag) {
	s.t.stats.callsNacked.Add(int64(sent.n))
	s.t.losses.log(s.t.log, slog.LevelWarn, "call not delivered: the broker refused it (a queue length limit with overflow reject-publish?)", sent.key, sent.n)
	if sent.handBack { // other processes' calls: answer them
		if sent.replyTo != "" {
			// Not on this goroutine, the reader of the channel's confirms:
			// a reply may publish, and a publish may wait for the socket.
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				for _, id := range sent.ids {
					s.reply(sent.replyTo, id, core.Reply{Err: core.Errorf(core.ErrTransport,
						"rabbitmq: the broker refused the call when its stopping instance handed it back to %s", sent.key)}, "", core.TraceContext{}, nil)
				}
			}()
		}
		return
	}
	refuse := func(id string) {
		if p := s.take(id); p != nil {
			p.ch <- core.Reply{Err: core.Errorf(core.ErrTransport, "rabbitmq: the broker refused the call %s.%s", p.to, p.fn)}
		}
	}
	if sent.id != "" {
		refuse(sent.id)
	}
	for _, id := range sent.ids {
		refuse(id)
	}
}

// outboxFull logs a call failed because too many wait for queue q.
func (s *session) outboxFull(q string) {
	s.t.losses.log(s.t.log, slog.LevelWarn, "call not sent: too many calls wait for the broker to confirm (is the queue stuck?)", q, 1)
}

// repliesRefused logs replies the broker refused: their callers time out.
func (s *session) repliesRefused(sent sentTag) {
	s.t.stats.repliesNacked.Add(int64(sent.n))
	s.t.losses.log(s.t.log, slog.LevelWarn, "reply not delivered: the broker refused it; its caller will time out", replyTo, sent.n, "fn", sent.fn)
}

// nrEvents matches confirms to no-reply calls, noting returns first.
func (s *session) nrEvents(returns <-chan amqp.Return, confirms <-chan amqp.Confirmation) {
	defer s.wg.Done()
	for returns != nil || confirms != nil {
		select {
		case r, ok := <-returns:
			if !ok {
				returns = nil
				continue
			}
			s.nrMu.Lock()
			s.nrRet[r.CorrelationId] = true
			s.nrMu.Unlock()
		case c, ok := <-confirms:
			if !ok {
				confirms = nil
				continue
			}
			s.noReplies.confirmed(c.DeliveryTag, true) // a nack is told below
			s.nrMu.Lock()
			m := s.nrWait[c.DeliveryTag]
			delete(s.nrWait, c.DeliveryTag)
			var returned bool
			if m != nil {
				returned = s.nrRet[m.id]
				delete(s.nrRet, m.id)
			}
			s.nrMu.Unlock()
			if m == nil {
				continue
			}
			// One confirm, and one return, settle every call in a batch.
			n := int64(len(m.ws))
			switch {
			case returned:
				s.t.stats.noReplyReturned.Add(n)
				s.t.losses.log(s.t.log, slog.LevelWarn, "no-reply call not delivered: nobody serves its target", m.queue, len(m.ws))
				for _, w := range m.ws {
					w.settle(notFound(w.to))
				}
			case !c.Ack:
				s.t.stats.noReplyNacked.Add(n)
				s.t.losses.log(s.t.log, slog.LevelWarn, "no-reply call not delivered: the broker refused it", m.queue, len(m.ws))
				for _, w := range m.ws {
					w.settle(core.Errorf(core.ErrTransport, "rabbitmq: broker refused the call to %s", w.to))
				}
			default:
				for _, w := range m.ws {
					w.settle(nil)
				}
			}
		}
	}
}

func (s *session) publishNR(ctx context.Context, to core.Target, id string, body []byte) error {
	q := queueFor(to)
	w := &nrWaiter{id: id, to: to, ch: make(chan error, 1)}
	if to.ID != "" {
		if refused, unserved := s.t.pushes.start(q, s.t.instanceQueueExpiry()); refused {
			s.t.stats.noReplyUnserved.Add(1)
			s.t.losses.log(s.t.log, slog.LevelWarn, "no-reply call not sent: its instance queue has had no consumer for longer than its expiry (the process is gone)", q, 1,
				"unservedFor", unserved.Round(time.Millisecond))
			return notFound(to)
		}
		w.watch, w.queue = &s.t.pushes, q
	}
	s.noReplies.send(q, outItem{id: id, body: body, w: w})
	timer := time.NewTimer(confirmWait)
	defer timer.Stop()
	select {
	case err := <-w.ch:
		return err
	case <-ctx.Done():
		w.abandoned.Store(true)
		return timeoutError(ctx, to, "(no reply)")
	case <-timer.C:
		w.abandoned.Store(true)
		return core.Errorf(core.ErrTransport, "rabbitmq: no confirm from the broker for a call to %s", to)
	}
}
