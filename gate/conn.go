package gate

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/gate/packets"
	"github.com/mqantgen/mqantgen/internal/wsconn"
)

// conn is one client connection and its MQTT state machine. Its reader
// goroutine (serve) parses packets and never blocks on handlers; the calls
// it routes run in its dispatcher, and everything sent to the client goes
// through its outbox.
type conn struct {
	g        *Gate
	nc       net.Conn
	network  string
	listener int    // index into listenerNames
	remote   string // host:port
	host     string // remote host, the key of the per-IP limit

	sessionID string
	clientID  string
	username  string        // as the auth hook accepted it
	anon      bool          // CONNECT had no username and no password
	keepAlive time.Duration // as the client asked; 0: none
	idleLimit time.Duration // silence after which the gate closes it

	smu  sync.Mutex // serialises updates of sess
	sess atomic.Pointer[core.SessionData]

	out    *outbox
	calls  dispatcher
	warns  warnLimiter // rate-limits this connection's warnings
	bucket tokenBucket // requests per second, when limited

	once   sync.Once
	closed atomic.Bool // closed: no longer live, may not take a user over
	inRaw  atomic.Bool // serveRaw's reader is inside its socket's RawConn.Read

	qos2 map[uint16]struct{} // QoS 2 ids received, awaiting PUBREL (reader only)

	// ps is set for a clean-session-0 connection before it is registered,
	// never changed after: pushes then go through it, at QoS 1.
	ps       *psession
	detached bool      // registered as an away persistent session (under g.mu)
	awayAt   time.Time // when it went away (under g.mu)
}

func newConn(g *Gate, nc net.Conn, network string) *conn {
	c := &conn{g: g, nc: nc, network: network, remote: nc.RemoteAddr().String(),
		listener: listenerIndex(network, g.cfg.tlsConfig != nil)}
	c.host = c.remote
	if h, _, err := net.SplitHostPort(c.remote); err == nil {
		c.host = h
	}
	c.out = newOutbox(nc, g.cfg.maxQueue, g.cfg.maxQueueBytes, DefaultWriteTimeout, c.close)
	c.out.stats = &g.stats
	c.calls.c = c
	c.bucket.init(float64(g.cfg.rate), float64(g.cfg.burst))
	return c
}

// session returns the current immutable snapshot.
func (c *conn) session() *core.SessionData { return c.sess.Load() }

// update applies f to a copy of the session and publishes the copy. The
// copy shares the current snapshot's Settings map (one allocation per
// update, not two): snapshots are immutable, so f replaces the map (Push)
// and never writes into it, and every holder of a snapshot that changes
// settings copies first (Session.Set, Session.Data).
func (c *conn) update(f func(*core.SessionData)) *core.SessionData {
	c.smu.Lock()
	defer c.smu.Unlock()
	d := new(core.SessionData)
	*d = *c.sess.Load()
	f(d)
	c.sess.Store(d)
	return d
}

// deadlineReader is the socket as the packet reader sees it. Before every
// read that reaches the socket it sets the read deadline to the time the
// last complete packet arrived plus the connection's limit, so a packet
// sent in pieces never extends it (slowloris) and a client whose packets
// straddle reads is not closed while it keeps sending them
// [MQTT-3.1.2-24].
type deadlineReader struct {
	nc      net.Conn
	limit   time.Duration
	last    time.Time // end of the last complete packet (or accept)
	set     time.Time // deadline currently set
	readAt  time.Time // when the last socket read returned data: the arrival of what it read
	stats   *gateStats
	packets int // read since the last socket read, counted then: one atomic add per read, not per packet
}

func (r *deadlineReader) Read(p []byte) (int, error) {
	if d := r.last.Add(r.limit); !d.Equal(r.set) {
		_ = r.nc.SetReadDeadline(d)
		r.set = d
	}
	r.countPackets()
	n, err := r.nc.Read(p)
	if n > 0 {
		// One clock read per socket read, not per packet: the packets a
		// read brought arrived then.
		r.readAt = time.Now()
	}
	r.stats.bytesIn.Add(int64(n))
	r.stats.socketReads.Add(1)
	return n, err
}

func (r *deadlineReader) countPackets() {
	if r.packets > 0 {
		r.stats.packetsIn.Add(int64(r.packets))
		r.packets = 0
	}
}

func (c *conn) serve() {
	defer c.nc.Close()
	dr := &deadlineReader{nc: c.nc, limit: c.g.cfg.connectTimeout, last: time.Now(), stats: &c.g.stats}
	defer dr.countPackets()
	br := bufio.NewReaderSize(dr, 2048)
	rd := packets.NewReader(br)
	rd.RawTopics(true) // route copies the topic into its call's allocation
	rd.SetMaxSize(min(DefaultConnectMsgLen, c.g.cfg.maxMsgLen))
	p, err := rd.ReadPacket()
	if err != nil {
		c.readFailed(err, true)
		return
	}
	cp, ok := p.(*packets.Connect)
	if !ok {
		c.g.stats.malformed.Add(1)
		c.logClose("closing connection: first packet must be CONNECT", "got", packets.TypeName(p.Type()))
		return
	}
	if !c.connect(cp) {
		return
	}
	defer func() {
		// The session outlives the calls already read: a handler still
		// running after the client left (a login sent just before
		// DISCONNECT) finishes, and modules hear of the close only after
		// the connection's last call (no member joins a room after
		// leaving). The wait is bounded: calls past their deadline are
		// abandoned by the dispatcher.
		c.calls.wait()
		c.g.unregister(c)
	}()
	rd.SetMaxSize(c.g.cfg.maxMsgLen)
	dr.limit = c.idleLimit
	dr.packets++         // the CONNECT
	dr.last = time.Now() // once accepted (authentication may have taken a while)
	if rc := rawSocket(c.nc); rc != nil {
		c.serveRaw(rc, dr, rd, br)
		return
	}
	for {
		p, err := rd.ReadPacket()
		if err != nil {
			c.readFailed(err, false)
			return
		}
		dr.packets++
		dr.last = dr.readAt // the read that completed p
		if !c.handle(p, dr.last) {
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
			c.g.stats.connectTimeouts.Add(1)
			c.g.log.Info("closing connection: no CONNECT in time", "remote", c.remote)
		} else {
			c.g.stats.keepAliveLost.Add(1)
			c.g.log.Info("closing connection: keep-alive expired", "remote", c.remote, "clientId", clip(c.clientID),
				"keepAlive", c.keepAlive, "limit", c.idleLimit)
		}
		c.close("keep-alive expired")
	case errors.Is(err, packets.ErrMalformed), errors.Is(err, packets.ErrPacketTooLarge),
		errors.Is(err, packets.ErrProtocolViolation), errors.Is(err, wsconn.ErrTextFrame):
		c.g.stats.malformed.Add(1)
		c.logClose("closing connection: bad packet", "err", clip(err.Error()))
		c.close("bad packet")
	case beforeConnect:
		if code, ok := packets.ConnackCode(err); ok {
			c.g.stats.refused[refusedBadConnect].Add(1)
			c.logClose("refusing CONNECT", "err", clip(err.Error()), "returnCode", code)
			c.out.writeNow((&packets.Connack{ReturnCode: code}).AppendTo(nil))
		} else {
			c.g.stats.malformed.Add(1)
			c.logClose("closing connection: bad CONNECT", "err", clip(err.Error()))
		}
		c.close("bad CONNECT")
	default:
		c.close(err.Error())
	}
}

// connect handles an accepted CONNECT: auth, client id, limits, CONNACK.
func (c *conn) connect(p *packets.Connect) bool {
	refuse := func(code byte, reason int, why string) bool {
		c.g.stats.refused[reason].Add(1)
		c.logClose("refusing CONNECT", "clientId", clip(p.ClientID), "reason", why, "returnCode", code)
		c.out.writeNow((&packets.Connack{ReturnCode: code}).AppendTo(nil))
		return false
	}
	if c.g.auth != nil {
		info := AuthInfo{ClientID: p.ClientID, Username: p.Username, Password: p.Password, RemoteAddr: c.remote}
		ctx, cancel := context.WithTimeout(c.g.ctx, DefaultConnectTimeout) // cancelled at shutdown too
		code := c.g.auth(ctx, info)
		cancel()
		if code != packets.Accepted {
			return refuse(code, refusedAuth, "auth hook")
		}
	}
	c.sessionID = c.g.newSessionID()
	c.clientID = p.ClientID
	c.username = p.Username
	c.anon = p.Username == "" && len(p.Password) == 0
	if c.clientID == "" {
		// Clean session with an empty id [MQTT-3.1.3-6]: an id nobody can
		// guess, so no other client can take the connection over.
		c.clientID = "auto-" + randomHex(16)
	}
	c.keepAlive = time.Duration(p.KeepAlive) * time.Second
	c.idleLimit = c.g.cfg.idleLimit(c.keepAlive)
	c.sess.Store(&core.SessionData{SessionID: c.sessionID, ServerID: c.g.Settings.ID, ClientID: c.clientID,
		Network: c.network, RemoteAddr: c.host, Settings: map[string]string{}})
	cred := credHash(c.clientID, p.Username, p.Password)
	var h *Handoff
	if !p.CleanSession {
		var err error
		if h, err = c.g.fetchSession(c.clientID, p.Username, cred); err != nil {
			return refuse(packets.IdentifierRejected, refusedClientID, err.Error())
		}
	}
	code, resumed := c.g.register(c, p.CleanSession, cred, h)
	switch code {
	case packets.Accepted:
	case packets.IdentifierRejected:
		return refuse(code, refusedClientID, "client id in use by another user, or its session by other credentials")
	default:
		return refuse(code, refusedShuttingDown, "gate shutting down")
	}
	// Session present only when a stored session was resumed
	// [MQTT-3.2.2-1, MQTT-3.2.2-2]. Written by the reader itself before
	// the session is attached: nothing else can be queued yet, and an idle
	// connection then never starts a writer goroutine.
	c.out.writeNow((&packets.Connack{SessionPresent: resumed, ReturnCode: packets.Accepted}).AppendTo(nil))
	if c.ps != nil {
		c.ps.attach(c)
	}
	c.g.log.Debug("client connected", "remote", c.remote, "clientId", clip(c.clientID), "session", c.sessionID,
		"network", c.network, "persistent", c.ps != nil, "resumed", resumed)
	return true
}

// handle processes one packet after CONNECT; false closes the connection.
// now is when it arrived.
func (c *conn) handle(p packets.Packet, now time.Time) bool {
	switch p := p.(type) {
	case *packets.Publish:
		switch p.QoS {
		case 0:
			c.route(p, now)
		case 1:
			c.route(p, now)
			id := p.PacketID
			c.enqueue(func(b []byte) []byte { return (&packets.Puback{PacketID: id}).AppendTo(b) })
		case 2:
			// Handled once; a retransmission before PUBREL only gets PUBREC
			// again. Packet ids are 16 bits, so the set is bounded.
			if c.firstQoS2(p.PacketID) {
				c.route(p, now)
			}
			id := p.PacketID
			c.enqueue(func(b []byte) []byte { return (&packets.Pubrec{PacketID: id}).AppendTo(b) })
		}
	case *packets.Pubrel:
		if c.ps != nil {
			c.ps.releaseQoS2(p.PacketID)
		} else {
			delete(c.qos2, p.PacketID)
		}
		id := p.PacketID
		c.enqueue(func(b []byte) []byte { return (&packets.Pubcomp{PacketID: id}).AppendTo(b) })
	case *packets.Subscribe:
		// Replies and pushes reach the client whether it subscribes or not;
		// every filter ('#' included) is granted QoS 0, the QoS the gate
		// delivers at, and subscribing reaches nothing of other clients.
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
	case *packets.Puback:
		if c.ps != nil {
			c.ps.ack(c, p.PacketID)
		}
	case *packets.Pubrec, *packets.Pubcomp:
		// The gate publishes at QoS 0 or 1; stray acknowledgements are harmless.
	default:
		c.g.stats.malformed.Add(1)
		c.logClose("closing connection: unexpected packet", "type", packets.TypeName(p.Type()))
		c.close("unexpected " + packets.TypeName(p.Type()))
		return false
	}
	return true
}

// firstQoS2 records the id of a QoS 2 PUBLISH until its PUBREL and
// reports whether it is new. A persistent session keeps the ids across
// its connections, so a PUBLISH the client sends again after reconnecting
// (its PUBREC lost with the connection) is still handled once.
func (c *conn) firstQoS2(id uint16) bool {
	if c.ps != nil {
		return c.ps.firstQoS2(id)
	}
	if _, seen := c.qos2[id]; seen {
		return false
	}
	if c.qos2 == nil {
		c.qos2 = map[uint16]struct{}{}
	}
	c.qos2[id] = struct{}{}
	return true
}

// enqueue queues an encoded packet and wakes the writer.
func (c *conn) enqueue(appendPacket func([]byte) []byte) bool {
	return c.queue(appendPacket, true)
}

// queue is enqueue; wake false leaves the writing to the caller, which
// flushes later (the dispatcher, once its burst of replies is queued). A
// client whose queue is full is not reading: it is disconnected.
func (c *conn) queue(appendPacket func([]byte) []byte, wake bool) bool {
	switch c.out.queue(appendPacket, wake) {
	case queued:
		return true
	case queueFull:
		c.g.stats.outDropped.Add(1) // this packet; close counts those queued before it
		c.queueFull()
	}
	return false
}

// queueFull closes a connection whose client is not reading. A persistent
// session keeps what it has not written and goes away.
func (c *conn) queueFull() {
	c.g.stats.slowClosed.Add(1)
	c.logClose("closing connection: outgoing queue full, client not reading", "queued", c.out.queued())
	c.close("outgoing queue full")
}

// publish queues an outbound QoS 0 PUBLISH (no packet id); to a
// persistent session, a QoS 1 one kept until acknowledged, whether the
// client is connected or not (body is then the session's). The topic must
// be valid (checkPushTopic); callers outside the routing path check it.
func (c *conn) publish(topic string, body []byte) bool {
	if c.ps != nil {
		c.ps.push(topic, body)
		return true
	}
	ok := c.enqueue(func(b []byte) []byte { return packets.AppendPublish(b, topic, body, 0, 0) })
	if ok {
		c.g.stats.sends.Add(1)
	}
	return ok
}

// Publish implements Publisher for a PublishHandler.
func (c *conn) Publish(topic string, body []byte) bool {
	if checkPushTopic(topic) != nil {
		return false
	}
	if c.ps != nil {
		// Kept for redelivery, while body may be the reader's buffer
		// (an echo of the request's payload).
		body = append([]byte(nil), body...)
	}
	return c.publish(topic, body)
}

// close closes the connection once; the reader then unregisters it once
// its calls are done. From here on the connection is not live: its late
// calls can no longer take a user over.
func (c *conn) close(reason string) {
	c.once.Do(func() {
		c.closed.Store(true)
		c.calls.connClosed()
		c.out.close()
		if c.inRaw.Load() {
			// Closing waits for the socket's reads to end, and the raw
			// reader may be the caller (a packet it handles closes the
			// connection): closed on the side, the reader stops at once.
			go c.nc.Close()
		} else {
			_ = c.nc.Close()
		}
		c.g.log.Debug("connection closed", "remote", c.remote, "clientId", clip(c.clientID), "session", c.sessionID, "reason", reason)
	})
}

// warn logs a warning about this connection, at most a few in a burst and
// then one every warnInterval with the number suppressed, so one client
// cannot flood the log.
func (c *conn) warn(msg string, args ...any) {
	n, ok := c.warns.allow(time.Now())
	if !ok {
		c.g.stats.logsSuppressed.Add(1)
		return
	}
	c.logWarn(msg, n, args)
}

// logClose logs why the connection is being closed. That happens once per
// connection, so it is never suppressed, and it carries the count of the
// warnings that were.
func (c *conn) logClose(msg string, args ...any) {
	c.logWarn(msg, c.warns.takeSuppressed(), args)
}

func (c *conn) logWarn(msg string, suppressed int64, args []any) {
	head := []any{"remote", c.remote}
	if c.clientID != "" {
		head = append(head, "clientId", clip(c.clientID))
	}
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	c.g.log.Warn(msg, append(head, args...)...)
}
