package rabbitmq

import (
	"fmt"
	"net"
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
}

// maxHeld bounds the bytes held: a write that would pass it goes out at
// once with what was held before it.
const maxHeld = 256 << 10

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
	if err := c.Conn.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
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
	err := c.Conn.SetWriteDeadline(time.Now().Add(writeTimeout))
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
