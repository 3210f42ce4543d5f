package rabbitmq

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// wireConn is the socket under a session's AMQP connection. Every write
// to it has a deadline (writeTimeout), and the writes made while a batch
// is published are held and leave in one write.
//
// amqp091-go writes frames through a 4 KiB bufio.Writer and flushes at
// the end of each method: a message larger than the buffer leaves in two
// or three writes (the full buffer, the rest of the body, the frame end),
// each a system call here and a socket read, often a wake-up, for the
// broker. A batch of calls or replies is often larger (BenchmarkRabbit
// Framework at 64 callers: a third of the framework process's write
// calls were these partial ones). hold makes the writes that follow
// wait in a buffer; release writes what waits at once. Writes of other
// goroutines made meanwhile (another channel's publish, an ack, a
// heartbeat) wait with them, in order, for the few microseconds a
// publish takes to copy its frames. The session holds around what it
// publishes (batch.go), and around a reply's afters too: the delivery's
// acknowledgement an idle consumer sends then leaves with its reply.
// Release always writes out: holds that overlap never keep a byte back
// beyond the end of the publish that held it, and maxHeld bounds what
// one hold may gather.
type wireConn struct {
	net.Conn

	mu    sync.Mutex
	holds int
	held  []byte
	err   error // a write of held bytes failed: so does every later one

	writes atomic.Int64 // writes to the socket, for tests

	// With ownReads: how long a read may wait for a frame (0 while the
	// handshake's deadline holds), and when the read deadline was last
	// moved (unix nanoseconds).
	readLimit atomic.Int64
	readSet   atomic.Int64
	// closeBy is the deadline amqp091-go set for the whole connection
	// (unix nanoseconds; 0: none), as CloseDeadline does: no read or write
	// deadline of ours goes past it.
	closeBy atomic.Int64
}

// SetDeadline is amqp091-go's deadline for the connection: the handshake's
// (cleared once open) and CloseDeadline's. Later writes and own reads keep
// their deadlines within it.
func (c *wireConn) SetDeadline(t time.Time) error {
	if t.IsZero() {
		c.closeBy.Store(0)
	} else {
		c.closeBy.Store(t.UnixNano())
	}
	return c.Conn.SetDeadline(t)
}

// within returns d, or the connection's deadline when that comes first.
func (c *wireConn) within(d time.Time) time.Time {
	if by := c.closeBy.Load(); by != 0 && by < d.UnixNano() {
		return time.Unix(0, by)
	}
	return d
}

// maxHeld bounds the bytes held: a write that would pass it goes out at
// once with what was held before it.
const maxHeld = 256 << 10

// dialBroker opens a connection to the broker at url over a wireConn.
//
// For a plain amqp:// URL without options it opens the AMQP connection
// itself (amqp.Open) over ownReads, which keeps the read deadline that
// amqp091-go's heartbeater would otherwise keep. amqp091-go's reader hands
// the socket to that goroutine after every frame it reads when the socket
// can set a read deadline: one goroutine wake-up per frame, often the
// wake-up of an idle thread as well, for a deadline that moves by
// microseconds. ownReads has no SetReadDeadline: its reads move the
// deadline themselves, at most every quarter of its span. The heartbeater
// still sends the heartbeats of an idle connection. Any other URL (amqps,
// query options) goes through amqp.DialConfig as given, and the
// heartbeater keeps the deadline there.
func dialBroker(url string, cfg amqp.Config) (*amqp.Connection, *wireConn, error) {
	var wire *wireConn
	cfg.Dial = dialWire(&wire)
	uri, err := amqp.ParseURI(url)
	if err != nil || uri.Scheme != "amqp" || strings.Contains(url, "?") {
		conn, err := amqp.DialConfig(url, cfg)
		return conn, wire, err
	}
	// What amqp.DialConfig sets up from such a URL.
	cfg.SASL = []amqp.Authentication{uri.PlainAuth()}
	cfg.Vhost = uri.Vhost
	cfg.FrameSize = 131072 // amqp091-go's default, RabbitMQ's frame_max
	nc, err := cfg.Dial("tcp", net.JoinHostPort(uri.Host, strconv.Itoa(uri.Port)))
	if err != nil {
		return nil, nil, err
	}
	conn, err := amqp.Open(ownReads{wire}, cfg)
	if err != nil {
		_ = nc.Close()
		return nil, nil, err
	}
	wire.keepReadDeadline(conn.Config.Heartbeat)
	return conn, wire, nil
}

// ownReads is a wireConn as amqp.Open sees it: without SetReadDeadline,
// its reads keep the read deadline (dialBroker).
type ownReads struct{ c *wireConn }

// keepReadDeadline starts the read deadline of a connection whose
// negotiated heartbeat is hb: a read fails once nothing came from the
// broker for between 1.5 and 2 heartbeats (amqp091-go's heartbeater allows
// 1.5). Set now as well, for the read already waiting.
func (c *wireConn) keepReadDeadline(hb time.Duration) {
	if hb <= 0 {
		return
	}
	limit := 2 * hb
	now := time.Now()
	c.readSet.Store(now.UnixNano())
	c.readLimit.Store(int64(limit))
	_ = c.Conn.SetReadDeadline(now.Add(limit))
}

func (o ownReads) Read(p []byte) (int, error) {
	c := o.c
	limit := time.Duration(c.readLimit.Load())
	if limit > 0 && c.closeBy.Load() == 0 { // closing: CloseDeadline's deadline stands
		now := time.Now()
		if now.UnixNano()-c.readSet.Load() >= int64(limit/4) {
			c.readSet.Store(now.UnixNano())
			if err := c.Conn.SetReadDeadline(now.Add(limit)); err != nil {
				return 0, err
			}
		}
	}
	n, err := c.Read(p)
	if ne, ok := err.(net.Error); ok && ne.Timeout() && limit > 0 && c.closeBy.Load() == 0 {
		err = fmt.Errorf("nothing from the broker in %v (heartbeat %v): %w", limit*3/4, limit/2, err)
	}
	return n, err
}

func (o ownReads) Write(p []byte) (int, error) { return o.c.Write(p) }
func (o ownReads) Close() error                { return o.c.Close() }

func (o ownReads) SetDeadline(t time.Time) error { return o.c.SetDeadline(t) }
func (o ownReads) LocalAddr() net.Addr           { return o.c.LocalAddr() }
func (o ownReads) RemoteAddr() net.Addr          { return o.c.RemoteAddr() }

// dialWire returns a dialer for amqp.Config: amqp.DefaultDial with a
// wireConn around the socket, which it also stores in *wire.
func dialWire(wire **wireConn) func(network, addr string) (net.Conn, error) {
	return func(network, addr string) (net.Conn, error) {
		c, err := amqp.DefaultDial(30*time.Second)(network, addr)
		if err != nil {
			return nil, err
		}
		*wire = &wireConn{Conn: c}
		return *wire, nil
	}
}

func (c *wireConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if c.holds > 0 && len(c.held)+len(b) <= maxHeld {
		c.held = append(c.held, b...)
		return len(b), nil
	}
	if len(c.held) > 0 {
		c.held = append(c.held, b...)
		if err := c.writeHeld(); err != nil {
			return 0, err
		}
		return len(b), nil
	}
	if err := c.Conn.SetWriteDeadline(c.within(time.Now().Add(writeTimeout))); err != nil {
		return 0, err
	}
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// Read reads the socket. Once a write of held bytes failed and closed it,
// the read error says so: amqp091-go ends the connection with its
// reader's error, which the session logs as the reason it was lost, and
// "use of closed network connection" would hide the cause.
func (c *wireConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.mu.Lock()
		werr := c.err
		c.mu.Unlock()
		if werr != nil {
			return n, fmt.Errorf("a write to the broker failed: %w", werr)
		}
	}
	return n, err
}

// writeHeld writes the held bytes. The writers of those bytes were told
// they were written, so a failure cannot go back to them: it closes the
// socket, which ends amqp091-go's reader and with it the connection (the
// session fails its calls and reconnects), and fails every later write;
// later reads give its error (Read).
// c.mu is held.
func (c *wireConn) writeHeld() error {
	err := c.Conn.SetWriteDeadline(c.within(time.Now().Add(writeTimeout)))
	if err == nil {
		c.writes.Add(1)
		_, err = c.Conn.Write(c.held)
	}
	if cap(c.held) > 64<<10 {
		c.held = nil // a rare large batch does not keep its buffer
	} else {
		c.held = c.held[:0]
	}
	if err != nil {
		c.err = err
		_ = c.Conn.Close()
	}
	return err
}

// hold makes writes wait until the matching release. Nil-safe: a
// session a test builds without a connection has no wire.
func (c *wireConn) hold() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.holds++
	c.mu.Unlock()
}

// release ends a hold and writes what is held.
func (c *wireConn) release() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.holds--
	if len(c.held) > 0 && c.err == nil {
		_ = c.writeHeld()
	}
	c.mu.Unlock()
}
