package gate

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqantgen/mqantgen/gate/packets"
	"github.com/mqantgen/mqantgen/internal/wsconn"
	"github.com/mqantgen/mqantgen/runtime"
)

// conn is one client connection: a reader goroutine that parses packets and
// never blocks on handlers, and a writer goroutine that coalesces everything
// queued into one write.
type conn struct {
	g       *Gate
	nc      net.Conn
	network string
	remote  string

	sessionID string
	clientID  string
	keepAlive time.Duration

	smu  sync.Mutex // serialises updates of sess
	sess atomic.Pointer[runtime.SessionData]

	// Outgoing queue: encoded packets waiting for the writer.
	wmu      sync.Mutex
	pending  []byte
	npending int
	spare    []byte
	wclosed  bool
	writing  bool // a goroutine is in flush's write
	writer   bool // writeLoop is running
	wake     chan struct{}
	closed   chan struct{}
	once     sync.Once

	// Calls in flight, one queue per module type so that a connection's
	// requests to one module run one at a time, in order.
	qmu      sync.Mutex
	queues   map[string]*callQueue
	inflight int
	calls    sync.WaitGroup // dispatched calls not yet finished

	qos2 map[uint16]struct{} // QoS 2 ids received, awaiting PUBREL (reader only)
}

type call struct {
	typ, fn, msgid, topic string
	payload               []byte
}

type callQueue struct {
	calls   []call
	running bool
}

func newConn(g *Gate, nc net.Conn, network string) *conn {
	c := &conn{g: g, nc: nc, network: network, remote: nc.RemoteAddr().String(),
		wake: make(chan struct{}, 1), closed: make(chan struct{})}
	return c
}

// session returns the current immutable snapshot.
func (c *conn) session() *runtime.SessionData { return c.sess.Load() }

// update applies f to a copy of the session and publishes the copy.
func (c *conn) update(f func(*runtime.SessionData)) *runtime.SessionData {
	c.smu.Lock()
	defer c.smu.Unlock()
	d := c.sess.Load().Clone()
	f(d)
	c.sess.Store(d)
	return d
}

func (c *conn) serve() {
	defer c.nc.Close()
	br := bufio.NewReaderSize(c.nc, 2048)
	rd := packets.NewReader(br)
	rd.SetMaxSize(min(DefaultConnectMsgLen, c.g.cfg.maxMsgLen))
	_ = c.nc.SetReadDeadline(time.Now().Add(c.g.cfg.connectTimeout))
	p, err := rd.ReadPacket()
	if err != nil {
		c.readFailed(err, true)
		return
	}
	cp, ok := p.(*packets.Connect)
	if !ok {
		c.g.stats.malformed.Add(1)
		c.g.log.Warn("closing connection: first packet must be CONNECT", "remote", c.remote, "got", packets.TypeName(p.Type()))
		return
	}
	if !c.connect(cp) {
		return
	}
	defer func() {
		// The session outlives the calls already read: a handler still
		// running after the client left (a login sent just before
		// DISCONNECT) can Bind, and modules hear of the close only after
		// the connection's last call (no member joins a room after leaving).
		c.calls.Wait()
		c.g.unregister(c)
	}()
	rd.SetMaxSize(c.g.cfg.maxMsgLen)
	_ = c.nc.SetReadDeadline(time.Time{}) // the CONNECT deadline is over
	for {
		// A client silent for 1.5 x its keep-alive is closed. The deadline
		// matters only for reads that reach the socket, so it is renewed
		// only when the buffer is empty, not for every packet of a burst.
		if c.keepAlive > 0 && br.Buffered() == 0 {
			_ = c.nc.SetReadDeadline(time.Now().Add(c.keepAlive * 3 / 2))
		}
		p, err := rd.ReadPacket()
		if err != nil {
			c.readFailed(err, false)
			return
		}
		if !c.handle(p) {
			return
		}
	}
}

// readFailed logs why reading stopped and closes the connection.
func (c *conn) readFailed(err error, beforeConnect bool) {
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		c.close("connection closed by peer")
	case errors.As(err, &ne) && ne.Timeout():
		if beforeConnect {
			c.g.log.Info("closing connection: no CONNECT in time", "remote", c.remote)
		} else {
			c.g.stats.keepAliveLost.Add(1)
			c.g.log.Info("closing connection: keep-alive expired", "remote", c.remote, "clientId", c.clientID, "keepAlive", c.keepAlive)
		}
		c.close("keep-alive expired")
	case errors.Is(err, packets.ErrMalformed), errors.Is(err, packets.ErrPacketTooLarge),
		errors.Is(err, packets.ErrProtocolViolation), errors.Is(err, wsconn.ErrTextFrame):
		c.g.stats.malformed.Add(1)
		c.g.log.Warn("closing connection: bad packet", "remote", c.remote, "clientId", c.clientID, "err", err)
		c.close(err.Error())
	case beforeConnect:
		if code, ok := packets.ConnackCode(err); ok {
			c.g.stats.refused.Add(1)
			c.g.log.Warn("refusing CONNECT", "remote", c.remote, "err", err, "returnCode", code)
			c.writeNow((&packets.Connack{ReturnCode: code}).AppendTo(nil))
		} else {
			c.g.stats.malformed.Add(1)
			c.g.log.Warn("closing connection: bad CONNECT", "remote", c.remote, "err", err)
		}
		c.close(err.Error())
	default:
		c.close(err.Error())
	}
}

// writeNow writes directly, before the writer goroutine exists.
func (c *conn) writeNow(b []byte) {
	_ = c.nc.SetWriteDeadline(time.Now().Add(DefaultWriteTimeout))
	_, _ = c.nc.Write(b)
}

// connect handles an accepted CONNECT: limits, auth, client id, CONNACK.
func (c *conn) connect(p *packets.Connect) bool {
	refuse := func(code byte, why string) bool {
		c.g.stats.refused.Add(1)
		c.g.log.Warn("refusing CONNECT", "remote", c.remote, "clientId", p.ClientID, "reason", why, "returnCode", code)
		c.writeNow((&packets.Connack{ReturnCode: code}).AppendTo(nil))
		return false
	}
	if c.g.stats.connections.Load() >= int64(c.g.cfg.maxConnections) {
		return refuse(packets.ServerUnavailable, "MaxConnections reached")
	}
	if c.g.auth != nil {
		info := AuthInfo{ClientID: p.ClientID, Username: p.Username, Password: p.Password, RemoteAddr: c.remote}
		ctx, cancel := context.WithTimeout(context.Background(), DefaultConnectTimeout)
		code := c.g.auth(ctx, info)
		cancel()
		if code != packets.Accepted {
			return refuse(code, "auth hook")
		}
	}
	c.sessionID = c.g.newSessionID()
	c.clientID = p.ClientID
	if c.clientID == "" {
		c.clientID = "auto-" + c.sessionID // clean session with an empty id [MQTT-3.1.3-6]
	}
	c.keepAlive = time.Duration(p.KeepAlive) * time.Second
	host := c.remote
	if h, _, err := net.SplitHostPort(c.remote); err == nil {
		host = h
	}
	c.sess.Store(&runtime.SessionData{SessionID: c.sessionID, ServerID: c.g.Settings.ID, ClientID: c.clientID,
		Network: c.network, RemoteAddr: host, Settings: map[string]string{}})
	if !c.g.register(c) {
		return refuse(packets.ServerUnavailable, "gate shutting down")
	}
	// Nothing persists, so the session is never present [MQTT-3.2.2-1].
	// Written by the reader itself: nothing else can be queued yet, and an
	// idle connection then never starts a writer goroutine.
	c.writeNow((&packets.Connack{ReturnCode: packets.Accepted}).AppendTo(nil))
	c.g.log.Debug("client connected", "remote", c.remote, "clientId", c.clientID, "session", c.sessionID, "network", c.network)
	return true
}

// handle processes one packet after CONNECT; false closes the connection.
func (c *conn) handle(p packets.Packet) bool {
	switch p := p.(type) {
	case *packets.Publish:
		switch p.QoS {
		case 0:
			c.route(p)
		case 1:
			c.route(p)
			id := p.PacketID
			c.enqueue(func(b []byte) []byte { return (&packets.Puback{PacketID: id}).AppendTo(b) })
		case 2:
			// Handled once; a retransmission before PUBREL only gets PUBREC again.
			if _, seen := c.qos2[p.PacketID]; !seen {
				if c.qos2 == nil {
					c.qos2 = map[uint16]struct{}{}
				}
				c.qos2[p.PacketID] = struct{}{}
				c.route(p)
			}
			id := p.PacketID
			c.enqueue(func(b []byte) []byte { return (&packets.Pubrec{PacketID: id}).AppendTo(b) })
		}
	case *packets.Pubrel:
		delete(c.qos2, p.PacketID)
		id := p.PacketID
		c.enqueue(func(b []byte) []byte { return (&packets.Pubcomp{PacketID: id}).AppendTo(b) })
	case *packets.Subscribe:
		// Replies and pushes reach the client whether it subscribes or not;
		// every filter is granted QoS 0, the QoS the gate delivers at.
		codes := make([]byte, len(p.Topics))
		ack := &packets.Suback{PacketID: p.PacketID, ReturnCodes: codes}
		c.enqueue(ack.AppendTo)
	case *packets.Unsubscribe:
		id := p.PacketID
		c.enqueue(func(b []byte) []byte { return (&packets.Unsuback{PacketID: id}).AppendTo(b) })
	case *packets.Pingreq:
		c.enqueue(func(b []byte) []byte { return (&packets.Pingresp{}).AppendTo(b) })
	case *packets.Disconnect:
		c.close("client sent DISCONNECT")
		return false
	case *packets.Puback, *packets.Pubrec, *packets.Pubcomp:
		// The gate publishes at QoS 0; stray acknowledgements are harmless.
	default:
		c.g.stats.malformed.Add(1)
		c.g.log.Warn("closing connection: unexpected packet", "remote", c.remote, "clientId", c.clientID, "type", packets.TypeName(p.Type()))
		c.close("unexpected " + packets.TypeName(p.Type()))
		return false
	}
	return true
}

// enqueue queues an encoded packet for the writer. A client whose queue is
// full is not reading: it is disconnected, never waited for.
func (c *conn) enqueue(appendPacket func([]byte) []byte) bool {
	return c.enqueueWake(appendPacket, true)
}

// enqueueWake is enqueue; wake false leaves the writing to the caller,
// which flushes later (the dispatcher, once its burst of replies is queued).
func (c *conn) enqueueWake(appendPacket func([]byte) []byte, wake bool) bool {
	c.wmu.Lock()
	if c.wclosed {
		c.wmu.Unlock()
		return false
	}
	if c.npending >= c.g.cfg.maxQueue || len(c.pending) >= DefaultOverflowBytes {
		n := c.npending
		c.wmu.Unlock()
		c.g.stats.slowClosed.Add(1)
		c.g.log.Warn("closing connection: outgoing queue full, client not reading", "remote", c.remote, "clientId", c.clientID, "queued", n)
		c.close("outgoing queue full")
		return false
	}
	c.pending = appendPacket(c.pending)
	c.npending++
	start := wake && !c.writer
	if start {
		c.writer = true
	}
	c.wmu.Unlock()
	if start {
		go c.writeLoop()
	} else if wake {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	return true
}

// publish queues an outbound QoS 0 PUBLISH (no packet id).
func (c *conn) publish(topic string, body []byte) bool {
	ok := c.enqueue(func(b []byte) []byte { return packets.AppendPublish(b, topic, body, 0, 0) })
	if ok {
		c.g.stats.sends.Add(1)
	}
	return ok
}

// flush writes what is queued, unless another goroutine is writing (it
// writes this too before it stops). The dispatcher calls it once a burst of
// replies is queued; a client slow to read then holds up only its own
// dispatcher, never the reader.
func (c *conn) flush() {
	for {
		c.wmu.Lock()
		if c.writing || len(c.pending) == 0 || c.wclosed {
			c.wmu.Unlock()
			return
		}
		c.writing = true
		buf := c.pending
		c.pending = c.spare[:0]
		c.spare = nil
		c.npending = 0
		c.wmu.Unlock()
		_ = c.nc.SetWriteDeadline(time.Now().Add(DefaultWriteTimeout))
		_, err := c.nc.Write(buf)
		c.wmu.Lock()
		c.writing = false
		if cap(buf) <= 64<<10 {
			c.spare = buf[:0]
		}
		c.wmu.Unlock()
		if err != nil {
			c.close("write: " + err.Error())
			return
		}
	}
}

// writerIdle is how long a connection's writer goroutine waits for more to
// write before it ends; an idle connection holds no writer.
const writerIdle = 5 * time.Second

// writeLoop writes what other goroutines queue (acknowledgements from the
// reader, pushes from modules): everything queued by the time it runs goes
// out in one write. It ends after writerIdle without work; enqueue starts it
// again.
func (c *conn) writeLoop() {
	idle := time.NewTimer(writerIdle)
	defer idle.Stop()
	for {
		c.flush()
		select {
		case <-c.wake:
			idle.Reset(writerIdle)
		case <-c.closed:
			c.wmu.Lock()
			c.writer = false
			c.wmu.Unlock()
			return
		case <-idle.C:
			c.wmu.Lock()
			if len(c.pending) > 0 && !c.wclosed {
				c.wmu.Unlock()
				idle.Reset(writerIdle)
				continue
			}
			c.writer = false
			c.wmu.Unlock()
			return
		}
	}
}

// close closes the connection once; the reader then unregisters it.
func (c *conn) close(reason string) {
	c.once.Do(func() {
		c.wmu.Lock()
		c.wclosed = true
		c.pending = nil
		c.wmu.Unlock()
		close(c.closed)
		_ = c.nc.Close()
		c.g.log.Debug("connection closed", "remote", c.remote, "clientId", c.clientID, "session", c.sessionID, "reason", reason)
	})
}

// Publish implements Publisher for a PublishHandler.
func (c *conn) Publish(topic string, body []byte) bool { return c.publish(topic, body) }

// route checks a PUBLISH's topic and payload and queues the call.
func (c *conn) route(p *packets.Publish) {
	c.g.stats.requests.Add(1)
	if c.g.onPublish != nil {
		c.g.onPublish(c, p)
		return
	}
	topic := p.Topic
	typ, rest, ok1 := strings.Cut(topic, "/")
	fn, msgid, _ := strings.Cut(rest, "/")
	if !ok1 || typ == "" || fn == "" || strings.Contains(msgid, "/") {
		c.g.stats.dropped.Add(1)
		c.g.log.Warn("dropping message: topic must be Module/Handler_X[/msgid]", "remote", c.remote, "clientId", c.clientID, "topic", topic)
		return
	}
	if !strings.HasPrefix(fn, "Handler_") {
		c.replyError(topic, msgid, "Method("+fn+") must begin with 'Handler_'")
		return
	}
	if !validJSON(p.Payload) {
		c.replyError(topic, msgid, "body must be JSON format")
		return
	}
	payload := append([]byte(nil), p.Payload...) // the reader reuses its buffer
	c.dispatch(call{typ: typ, fn: fn, msgid: msgid, topic: topic, payload: payload})
}

func (c *conn) replyError(topic, msgid, text string) {
	c.g.log.Debug("request refused", "remote", c.remote, "topic", topic, "err", text)
	if msgid == "" {
		return
	}
	c.enqueueReply(topic, nil, text, true)
}

// dispatch queues a call behind the connection's earlier calls to the same
// module, never blocking the reader.
func (c *conn) dispatch(cl call) {
	c.qmu.Lock()
	if c.inflight >= c.g.cfg.maxInflight {
		c.qmu.Unlock()
		c.g.stats.dropped.Add(1)
		c.g.log.Warn("request refused: too many in flight", "remote", c.remote, "clientId", c.clientID, "topic", cl.topic, "limit", c.g.cfg.maxInflight)
		if cl.msgid != "" {
			c.enqueueReply(cl.topic, nil, "too many requests in flight", true)
		}
		return
	}
	c.inflight++
	c.calls.Add(1)
	q := c.queues[cl.typ]
	if q == nil {
		if c.queues == nil {
			c.queues = map[string]*callQueue{}
		}
		q = &callQueue{}
		c.queues[cl.typ] = q
	}
	q.calls = append(q.calls, cl)
	if q.running {
		c.qmu.Unlock()
		return
	}
	q.running = true
	c.qmu.Unlock()
	c.g.drains.Submit(drainJob{c, q})
}

// drainJob is one activation of a connection's queue of calls to a module.
type drainJob struct {
	c *conn
	q *callQueue
}

func runDrain(j drainJob) { j.c.drain(j.q) }

func (c *conn) drain(q *callQueue) {
	for {
		c.qmu.Lock()
		if len(q.calls) == 0 {
			q.running = false
			q.calls = q.calls[:0]
			c.qmu.Unlock()
			// The replies of a burst go out together, in one write.
			c.flush()
			return
		}
		cl := q.calls[0]
		q.calls[0] = call{}
		q.calls = q.calls[1:]
		c.qmu.Unlock()
		c.invoke(cl)
		c.qmu.Lock()
		c.inflight--
		c.qmu.Unlock()
		c.calls.Done()
	}
}

func (c *conn) invoke(cl call) {
	// Without a msgid the client gets no reply, but the gate still waits for
	// the call to finish: the next call of this connection to this module
	// runs only after it, and sees the session it left (a Bind).
	req := &runtime.Request{Fn: cl.fn, Session: c.session(), Raw: cl.payload}
	rep, err := c.g.App.InvokeInline(context.Background(), runtime.Target{Type: cl.typ}, req)
	if cl.msgid == "" {
		if err != nil {
			c.g.log.Debug("no-reply request failed", "remote", c.remote, "topic", cl.topic, "err", err)
		}
		return
	}
	// The result is encoded into a pooled scratch buffer and the reply
	// assembled straight into the connection's write queue: no allocation
	// for the encoded result or the reply body.
	scratch := scratchPool.Get().(*[]byte)
	var result []byte
	if err == nil {
		if rep.Raw != nil {
			result = rep.Raw
		} else if result, err = runtime.AppendJSON((*scratch)[:0], rep.Result); err != nil {
			c.g.log.Error("cannot encode handler result", "topic", cl.topic, "err", err)
			err = errors.New("internal error: result cannot be encoded as JSON")
		} else {
			*scratch = result
		}
	}
	text := ""
	if err != nil {
		result, text = nil, err.Error()
	}
	// Queued without waking the writer: drain writes it once the burst of
	// calls it belongs to is done.
	c.enqueueReply(cl.topic, result, text, false)
	if cap(*scratch) <= 64<<10 {
		scratchPool.Put(scratch)
	}
}

var scratchPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// enqueueReply queues the reply {"Error": text, "Result": result} on topic;
// Result is null on error.
func (c *conn) enqueueReply(topic string, result []byte, errText string, wake bool) {
	if errText != "" || len(result) == 0 {
		result = nullJSON
	}
	quoted := emptyJSONString
	if errText != "" {
		quoted, _ = runtime.AppendJSON(nil, errText)
	}
	n := len(`{"Error":`) + len(quoted) + len(`,"Result":`) + len(result) + 1
	ok := c.enqueueWake(func(b []byte) []byte {
		b = packets.AppendPublishHeader(b, topic, n)
		b = append(b, `{"Error":`...)
		b = append(b, quoted...)
		b = append(b, `,"Result":`...)
		b = append(b, result...)
		return append(b, '}')
	}, wake)
	if ok {
		c.g.stats.sends.Add(1)
	}
}

var (
	nullJSON        = []byte("null")
	emptyJSONString = []byte(`""`)
)
