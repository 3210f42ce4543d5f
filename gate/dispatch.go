package gate

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/gate/packets"
)

// dispatcher runs a connection's calls: one queue per module type, so a
// connection's requests to one module run one at a time in arrival order
// while its calls to different modules, and other connections' calls, run
// in parallel. It never blocks the reader.
//
// Its state is bounded whatever the client sends: at most maxInflight calls
// are queued or running, queues exist only for module types of the
// configuration (route refuses the others before queueing), and a call
// whose handler outlives its deadline is abandoned by the gate's watchdog
// (the client gets the timeout, the queue moves on), so closing the
// connection never waits for longer than the RPC timeout.
type dispatcher struct {
	c *conn

	mu       sync.Mutex
	queues   map[string]*callQueue
	last     *callQueue // the queue of the last call dispatched; in queues
	inflight int        // calls queued or running
	closedAt time.Time
	idle     chan struct{} // closed when inflight drops to 0 after the connection closed
	busy     atomic.Int32  // queues running, read by the watchdog without the lock
}

type call struct {
	typ, fn, msgid, topic string
	payload               []byte // the request's body: in ic's buf when it fits
	rt                    reqTrace
	ic                    *inlineCall // the call's one allocation, made by route
}

// inlineCall is what the gate allocates per request, once: the request,
// the room for its call's context (core.InlineCall) and, for a body up to
// inlineBody bytes (most game requests), the copy of the body the reader's
// buffer cannot keep. Never reused (a handler may keep its ctx).
type inlineCall struct {
	core.InlineCall
	body [inlineBody]byte
}

// inlineBody is the size of the body kept in an inlineCall: the object
// (248 bytes with the request and context) then fills the 352-byte size
// class, about what the three allocations it replaces took together
// (a login or a chat line fits; a larger body is copied apart).
// TestInlineCallSize keeps it there.
const inlineBody = 104

// The states of a callQueue's current call.
const (
	curIdle int32 = iota
	curRunning
	curAbandoned
)

type callQueue struct {
	typ     string
	calls   []call // calls[head:] wait
	head    int
	running bool
	// The call running now, for the watchdog. state says whose it is: the
	// drain that runs it (running) or the watchdog that gave up on it
	// (abandoned; the drain stops after it). Each takes it with a
	// compare-and-swap, so the drain needs no lock to learn its call's
	// fate: one lock per call less.
	cur      call
	deadline time.Time
	state    atomic.Int32 // curIdle, curRunning or curAbandoned
	// afterClose: the rest of a closed connection's queue, handed on after
	// the call before it was abandoned: nothing in it starts.
	afterClose bool
	// flushT writes the replies of a burst that have waited replyHold
	// (the calls after them are slow): batching replies into one write
	// must not hold a fast call's reply behind a slow one. fired says it
	// went off since it was last armed.
	flushT *time.Timer
	fired  atomic.Bool
}

// replyHold is how long a reply may wait for the rest of its burst.
const replyHold = 2 * time.Millisecond

// route checks a PUBLISH's topic and payload and queues the call.
func (c *conn) route(p *packets.Publish, now time.Time) {
	c.g.stats.requests.Add(1)
	if c.g.onPublish != nil {
		p.Topic = publishTopic(p)
		c.g.onPublish(c, p)
		return
	}
	rt := c.receiveTrace(p.Payload)
	if why := c.routeTraced(p, now, rt); why != "" {
		rt.refused(why)
	}
}

// publishTopic is p's topic as a string: its own, or one made of RawTopic
// (the gate's reader gives only that).
func publishTopic(p *packets.Publish) string {
	if p.Topic != "" {
		return p.Topic
	}
	return string(p.RawTopic)
}

// routeTraced is route once the request has its trace. It returns why the
// request was refused, "" when it was queued.
func (c *conn) routeTraced(p *packets.Publish, now time.Time, rt reqTrace) string {
	if n := max(len(p.Topic), len(p.RawTopic)); n > c.g.cfg.maxTopicLen {
		c.g.stats.dropped.Add(1)
		c.warn("dropping message: topic too long", "topic", clip(publishTopic(p)), "len", n, "limit", c.g.cfg.maxTopicLen,
			"trace_id", rt.id())
		return "topic too long"
	}
	// The reader reuses its buffer: the topic and the body are copied,
	// into the call's one allocation when they fit (a topic carries a
	// msgid, different every time: its own string would be an allocation
	// per request).
	ic := &inlineCall{}
	var topic string
	var payload []byte
	if raw := p.RawTopic; p.Topic == "" && len(raw)+len(p.Payload) <= inlineBody {
		n := copy(ic.body[:], raw)
		topic = unsafe.String(&ic.body[0], n) // ic.body is never written again
		payload = ic.body[n : n+copy(ic.body[n:], p.Payload)]
	} else {
		topic = publishTopic(p)
	}
	typ, rest, ok1 := strings.Cut(topic, "/")
	fn, msgid, _ := strings.Cut(rest, "/")
	if !ok1 || typ == "" || fn == "" || strings.Contains(msgid, "/") {
		c.g.stats.dropped.Add(1)
		c.warn("dropping message: topic must be Module/Handler_X[/msgid]", "topic", clip(topic), "trace_id", rt.id())
		return "bad topic"
	}
	if !c.bucket.take(now) {
		c.g.stats.rateLimited.Add(1)
		c.warn("request refused: over the request rate", "topic", clip(topic), "limit", c.g.cfg.rate, "trace_id", rt.id())
		return c.replyError(topic, msgid, "too many requests", core.CodeRateLimited, rt)
	}
	if !strings.HasPrefix(fn, "Handler_") {
		c.g.stats.requestsRefused[reqNotHandler].Add(1)
		return c.replyError(topic, msgid, "Method("+clip(fn)+") must begin with 'Handler_'", core.CodeBadRoute, rt)
	}
	if c.g.closing.Load() {
		c.g.stats.requestsRefused[reqShuttingDown].Add(1)
		return c.replyError(topic, msgid, "server shutting down", core.CodeShuttingDown, rt)
	}
	if !c.g.knownType(typ) {
		// Refused here, before anything is kept for it: a client cannot
		// make the gate hold state for module names that do not exist.
		c.g.stats.requestsRefused[reqUnknownModule].Add(1)
		return c.replyError(topic, msgid, "Service(type:"+clip(typ)+") not found", core.CodeNotFound, rt)
	}
	if !validJSON(p.Payload) {
		c.g.stats.requestsRefused[reqBadJSON].Add(1)
		return c.replyError(topic, msgid, "body must be JSON format", core.CodeBadJSON, rt)
	}
	if payload == nil {
		if len(p.Payload) <= inlineBody {
			payload = ic.body[:copy(ic.body[:], p.Payload)]
		} else {
			payload = append([]byte(nil), p.Payload...)
		}
	}
	return c.calls.dispatch(call{typ: typ, fn: fn, msgid: msgid, topic: topic, payload: payload, rt: rt, ic: ic})
}

// replyError answers a request the gate refused with text and code, and
// returns code (fixed, no client data) for the receive span's status.
func (c *conn) replyError(topic, msgid, text, code string, rt reqTrace) string {
	if c.g.log.Enabled(context.Background(), slog.LevelDebug) {
		c.g.log.Debug("request refused", "remote", c.remote, "topic", clip(topic), "err", text, "trace_id", rt.id())
	}
	if msgid != "" {
		c.enqueueReply(topic, nil, text, code, true)
	}
	return code
}

// dispatch queues a call behind the connection's earlier calls to the same
// module. It returns why it refused the call, "" when it queued it.
func (d *dispatcher) dispatch(cl call) string {
	c := d.c
	d.mu.Lock()
	if d.inflight >= c.g.cfg.maxInflight {
		d.mu.Unlock()
		c.g.stats.dropped.Add(1)
		c.warn("request refused: too many in flight", "topic", clip(cl.topic), "limit", c.g.cfg.maxInflight, "trace_id", cl.rt.id())
		if cl.msgid != "" {
			c.enqueueReply(cl.topic, nil, "too many requests in flight", core.CodeRateLimited, true)
		}
		return core.CodeRateLimited
	}
	d.inflight++
	c.g.inflight.Add(1)
	q := d.last
	if q == nil || q.typ != cl.typ {
		// A client calls one module many times in a row: the map lookup
		// is skipped then.
		q = d.queues[cl.typ]
		if q == nil {
			if d.queues == nil {
				d.queues = map[string]*callQueue{}
			}
			q = &callQueue{typ: cl.typ}
			d.queues[cl.typ] = q
		}
		d.last = q
	}
	if q.head >= 16 && q.head*2 >= len(q.calls) {
		// A queue that never runs dry would grow its slice for ever: move
		// the waiting calls to the front now and then (amortised O(1)).
		n := copy(q.calls, q.calls[q.head:])
		clear(q.calls[n:])
		q.calls, q.head = q.calls[:n], 0
	}
	q.calls = append(q.calls, cl)
	if q.running {
		d.mu.Unlock()
		return ""
	}
	q.running = true
	d.busy.Add(1)
	d.mu.Unlock()
	c.g.drains.Submit(drainJob{c, q})
	return ""
}

// drainJob is one activation of a connection's queue of calls to a module.
type drainJob struct {
	c *conn
	q *callQueue
}

func runDrain(j drainJob) { j.c.calls.drain(j.q) }

func (d *dispatcher) drain(q *callQueue) {
	c := d.c
	armed := false // flushT runs for a reply of this burst
	// now is the start of the next call: the clock is read for the first
	// call of the activation, and each call starts when the one before it
	// ended, as the handler's metrics read it (one clock read per call, not
	// two).
	var now time.Time
	d.mu.Lock()
	for {
		if q.head == len(q.calls) {
			q.running = false
			// Kept, with its capacity, for the next burst: queues exist
			// only for module types of the configuration.
			q.calls, q.head = q.calls[:0], 0
			d.busy.Add(-1)
			d.mu.Unlock()
			if armed {
				q.flushT.Stop()
			}
			// The replies of a burst go out together, in one write.
			c.out.flush()
			return
		}
		cl := q.calls[q.head]
		q.calls[q.head] = call{}
		q.head++
		if now.IsZero() {
			now = time.Now()
		}
		q.deadline = d.deadline(now)
		if q.afterClose || !now.Before(q.deadline) {
			// Its connection closed more than the RPC timeout ago, or
			// closed and the call before it ran past its deadline: nobody
			// waits for it, and running it would hold the close up.
			d.mu.Unlock()
			if cl.msgid != "" {
				c.enqueueReply(cl.topic, nil, "call "+cl.typ+"."+cl.fn+": deadline exceeded", core.CodeTimeout, false)
			}
			cl.rt.refused(core.CodeTimeout)
			d.mu.Lock()
			d.finishLocked()
			continue
		}
		q.cur = cl
		q.state.Store(curRunning)
		d.mu.Unlock()

		rep := c.invoke(cl, now)
		now = cl.ic.Ended() // zero when the handler was not timed: the next call reads the clock

		if !q.state.CompareAndSwap(curRunning, curIdle) {
			// The watchdog answered the client and handed the rest of the
			// queue on; this late result goes nowhere.
			rep.release()
			c.out.flush() // replies of the burst before it, if any still wait
			c.g.log.Warn("handler returned after its deadline; result dropped", "module", cl.typ, "fn", clip(cl.fn),
				"session", c.sessionID, "trace_id", cl.rt.id())
			return
		}
		// Ended here, not in invoke: an abandoned call's span was ended by
		// the watchdog with the timeout its client got.
		cl.rt.end(cl.typ, cl.fn, rep.err)
		if rep.send {
			// Queued without waking the writer: the drain writes it once
			// the burst of calls it belongs to is done.
			c.enqueueReply(cl.topic, rep.result, rep.errText, rep.code, false)
			rep.release()
		}
		// The call is accounted for under the lock that takes the next.
		d.mu.Lock()
		q.cur = call{}
		d.finishLocked()
		if rep.send && q.head < len(q.calls) && (!armed || q.fired.Load()) {
			// The reply waits while the next call runs: flushT writes it
			// if that call is slow. (With no call waiting, the loop's top,
			// under this same lock, ends the burst and writes it now: no
			// timer for a burst of one.)
			q.fired.Store(false)
			if q.flushT == nil {
				q.flushT = time.AfterFunc(replyHold, func() { q.fired.Store(true); c.out.flush() })
			} else {
				q.flushT.Reset(replyHold)
			}
			armed = true
		}
	}
}

// deadline is when a call started at now must have answered: the RPC
// timeout, and no later than the timeout after the connection closed, so
// a closed connection's queue cannot hold its close up for long.
func (d *dispatcher) deadline(now time.Time) time.Time {
	t := now.Add(d.c.g.rpcTimeout)
	if !d.closedAt.IsZero() {
		if limit := d.closedAt.Add(d.c.g.rpcTimeout); limit.Before(t) {
			t = limit
		}
	}
	return t
}

// finishLocked accounts for one finished (or abandoned) call.
func (d *dispatcher) finishLocked() {
	d.inflight--
	d.c.g.inflight.Add(-1)
	if d.inflight == 0 && d.idle != nil {
		close(d.idle)
		d.idle = nil
	}
}

// connClosed records when the connection closed.
func (d *dispatcher) connClosed() {
	d.mu.Lock()
	d.closedAt = time.Now()
	d.mu.Unlock()
}

// wait returns once the connection's calls are finished or abandoned.
func (d *dispatcher) wait() {
	d.mu.Lock()
	if d.inflight == 0 {
		d.mu.Unlock()
		return
	}
	if d.idle == nil {
		d.idle = make(chan struct{})
	}
	idle := d.idle
	d.mu.Unlock()
	<-idle
}

// expire abandons running calls whose deadline passed: the client gets the
// timeout its handler failed to return, and the calls queued behind run on
// a fresh activation; those of a closed connection are answered with the
// timeout and never start. Called by the gate's watchdog.
func (d *dispatcher) expire(now time.Time) {
	if d.busy.Load() == 0 {
		return
	}
	c := d.c
	var late []call
	d.mu.Lock()
	for typ, q := range d.queues {
		if !q.running || q.deadline.IsZero() || now.Before(q.deadline) || !q.state.CompareAndSwap(curRunning, curAbandoned) {
			continue
		}
		late = append(late, q.cur)
		d.busy.Add(-1)
		d.finishLocked()
		delete(d.queues, typ)
		if d.last == q {
			d.last = nil
		}
		if rest := q.calls[q.head:]; len(rest) > 0 {
			nq := &callQueue{typ: typ, calls: rest, running: true, afterClose: !d.closedAt.IsZero()}
			q.calls, q.head = nil, 0
			d.queues[typ] = nq
			d.busy.Add(1)
			c.g.drains.Submit(drainJob{c, nq})
		}
	}
	d.mu.Unlock()
	for _, cl := range late {
		c.g.stats.abandoned.Add(1)
		c.g.log.Warn("handler ignored its deadline; call abandoned, client told it timed out", "module", cl.typ,
			"fn", clip(cl.fn), "session", c.sessionID, "timeout", c.g.rpcTimeout, "trace_id", cl.rt.id())
		cl.rt.end(cl.typ, cl.fn, core.ErrTimeout)
		if cl.msgid != "" {
			c.enqueueReply(cl.topic, nil, "call "+cl.typ+"."+cl.fn+": deadline exceeded", core.CodeTimeout, true)
		}
	}
}

// reply is a call's outcome, encoded for the client.
type reply struct {
	send    bool
	result  []byte
	errText string
	code    string // with errText: the client's error code
	err     error  // the call's, for the receive span
	scratch *[]byte
}

func (r reply) release() {
	if r.scratch != nil && cap(*r.scratch) <= 64<<10 {
		scratchPool.Put(r.scratch)
	}
}

// invoke makes one call and encodes its outcome. Without a msgid the
// client gets no reply, but the gate still waits for the call to finish:
// the next call of this connection to this module runs only after it, and
// sees the session it left (a Bind).
func (c *conn) invoke(cl call, now time.Time) reply {
	cl.ic.Req = core.Request{Fn: cl.fn, Session: c.session(), Raw: cl.payload, Trace: cl.rt.tc, Start: now}
	rep, err := c.g.App.InvokeCall(cl.rt.ctx(c.g.ctx), core.Target{Type: cl.typ}, &cl.ic.InlineCall)
	if err != nil {
		c.logFailure(cl, err)
	}
	if cl.msgid == "" {
		return reply{err: err}
	}
	// The result is encoded into a pooled scratch buffer and the reply
	// assembled straight into the connection's write queue: no allocation
	// for the encoded result or the reply body.
	out := reply{send: true, err: err}
	if err == nil {
		if rep.Raw != nil {
			out.result = rep.Raw
		} else {
			out.scratch = scratchPool.Get().(*[]byte)
			if out.result, err = core.AppendJSON((*out.scratch)[:0], rep.Result); err != nil {
				c.g.log.Error("cannot encode handler result", "topic", clip(cl.topic), "err", err, "trace_id", cl.rt.id())
				err = errors.New("internal error: result cannot be encoded as JSON")
			} else {
				*out.scratch = out.result
			}
		}
	}
	if err != nil {
		out.result = nil
		out.errText, out.code = c.clientError(cl, err)
	}
	return out
}

var scratchPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// enqueueReply queues the reply {"Error": text, "Result": result} on topic;
// on error Result is null and a "Code" field carries the error's code.
func (c *conn) enqueueReply(topic string, result []byte, errText, code string, wake bool) {
	if errText != "" || len(result) == 0 {
		result = nullJSON
	}
	quoted, quotedCode := emptyJSONString, []byte(nil)
	n := len(`{"Error":`) + len(`,"Result":`) + len(result) + 1
	if errText != "" {
		quoted, _ = core.AppendJSON(nil, errText)
		quotedCode, _ = core.AppendJSON(nil, code)
		n += len(`,"Code":`) + len(quotedCode)
	}
	n += len(quoted)
	ok := c.queue(func(b []byte) []byte {
		b = packets.AppendPublishHeader(b, topic, n)
		b = append(b, `{"Error":`...)
		b = append(b, quoted...)
		if quotedCode != nil {
			b = append(b, `,"Code":`...)
			b = append(b, quotedCode...)
		}
		b = append(b, `,"Result":`...)
		b = append(b, result...)
		return append(b, '}')
	}, wake)
	if ok {
		c.g.stats.replies.Add(1)
	}
}

var (
	nullJSON        = []byte("null")
	emptyJSONString = []byte(`""`)
)

// clientError is what the client is told of a failed call: its text and
// code. The handler's own errors and the failures of the client's own
// route keep their text (PROTOCOL.md); a failure of a call the handler
// made further on (another module not found, a broker down, a nested
// timeout) would name the deployment's internals, so the client gets a
// generic text with an id, and the log the details under that id.
func (c *conn) clientError(cl call, err error) (text, code string) {
	code = core.ClientCode(err)
	text = err.Error()
	if e := (*core.Error)(nil); errors.As(err, &e) && e.Kind == core.ErrRemote && e.Code != "" {
		return text, code // the handler's own, even when it reuses a framework code's name
	}
	switch code {
	case core.CodeNotFound:
		if text == "Service(type:"+cl.typ+") not found" || text == "Remote function("+cl.fn+") not found" {
			return text, code
		}
	case core.CodeTimeout:
		return "call " + cl.typ + "." + cl.fn + ": deadline exceeded", code
	case core.CodeUnavailable:
	default:
		return text, code
	}
	id := randomHex(6)
	c.warn("call failed further on; the client is told only the id", "id", id, "topic", clip(cl.topic), "err", err,
		"trace_id", cl.rt.id())
	if code == core.CodeNotFound {
		code = core.CodeInternal
	}
	c.g.App.RecordError(cl.typ, cl.fn, code, id, err.Error()) // the operator's console, under the same id
	return "service unavailable (id " + id + ")", code
}
