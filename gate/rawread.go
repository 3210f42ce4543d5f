package gate

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/mqantgen/mqantgen/gate/packets"
)

// Reading a plain TCP socket without the empty read. Go's net.Conn.Read
// asks the socket once more after every read that emptied it: the client
// is waiting for replies, so that read says "would block" (EAGAIN) and the
// goroutine then waits on the poller. On these machines a system call
// costs a microsecond and that empty read almost two, for every burst of
// requests: an eighth of a reply's CPU at 100 connections x 8 in flight.
//
// serveRaw runs the connection's packet loop inside one
// syscall.RawConn.Read, which lets the function it calls say "wait for the
// socket to be readable" (return false) without a read: a read that
// returned less than it asked for emptied the socket, so the next one can
// wait first. Within one RawConn.Read the poller keeps what it saw since
// the wait began, so bytes that arrived meanwhile wake it at once. The
// packets are parsed from the bytes read (packets.Reader.Parse) and handled
// right there, as serve's loop does with ReadPacket's.
//
// One thing the empty read also finds is the end of the stream (or a
// reset) that came in right behind the bytes a read returned: the poller
// reported both at once, so no new wake-up comes for it. A wait without
// that read is therefore bounded (blindWait, by the read deadline) and
// used only while the client keeps the connection busy (its reads come
// less than busyGap apart): a client that sends its last request and
// closes is noticed within blindWait, and a connection that goes quiet
// costs one timer and the empty read after it. A quiet connection (fewer
// than ten requests a second) reads as serve's loop does.
//
// TLS and WebSocket connections keep serve's loop: their bytes pass through
// a decoder that reads the socket itself.

// busyGap: reads of a busy connection come less than this apart. A game
// client sending ten or more messages a second is busy.
const busyGap = 100 * time.Millisecond

// blindWait bounds a wait that did not first read the socket empty: a
// busy client's next message comes well within it.
const blindWait = 250 * time.Millisecond

// rawBufSize is the read buffer of a busy connection, as serve's
// bufio.Reader. Pooled: an idle connection holds none.
const rawBufSize = 2048

var rawBufs = sync.Pool{New: func() any { b := make([]byte, rawBufSize); return &b }}

// rawSocket returns the raw socket of a plain TCP connection; nil for
// others (TLS, WebSocket).
func rawSocket(nc net.Conn) syscall.RawConn {
	if cc, ok := nc.(*countedConn); ok {
		nc = cc.Conn
	}
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// rawReader is serveRaw's state between the calls RawConn.Read makes.
type rawReader struct {
	c  *conn
	dr *deadlineReader // the deadline and counters, as serve's loop keeps them
	rd *packets.Reader // for Parse only

	buf        *[]byte // nil when nothing is held (the socket was emptied, every packet handled)
	start, end int     // the bytes of buf read and not yet parsed
	drained    bool    // the last read emptied the socket
	busy       bool    // the last two reads came less than busyGap apart
	blind      bool    // waiting without having read the socket empty

	stop bool  // a handler closed the connection
	err  error // why reading ended, when it was not the socket's wait
}

// serveRaw is serve's packet loop for a plain TCP connection, once its
// CONNECT is accepted; br holds what was read after the CONNECT.
func (c *conn) serveRaw(rc syscall.RawConn, dr *deadlineReader, rd *packets.Reader, br *bufio.Reader) {
	r := &rawReader{c: c, dr: dr, rd: rd}
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		r.room(n)
		r.end = copy(*r.buf, b)
	}
	rd.Reset(nil) // drops br and the CONNECT's body buffer
	defer r.release()
	for {
		err := rc.Read(r.step)
		if r.stop {
			return
		}
		if r.err == nil && r.blind && errors.Is(err, os.ErrDeadlineExceeded) && time.Now().Before(r.deadline()) {
			// The bounded wait ran out, not the connection's limit:
			// read the socket (empty, or its end) and wait for real. The
			// deadline that passed is moved first, or the poller would
			// refuse the next wait at once.
			r.blind = false
			r.dr.set = r.deadline()
			_ = c.nc.SetReadDeadline(r.dr.set)
			continue
		}
		if r.err == nil {
			r.err = err
		}
		c.readFailed(r.err, false)
		return
	}
}

// step is the function RawConn.Read calls, first and then each time the
// socket is readable (a wait that runs out ends RawConn.Read instead): it
// handles what was read and reads until the socket is empty. It returns
// false to wait, true when reading is over.
func (r *rawReader) step(fd uintptr) bool {
	r.c.inRaw.Store(true) // a close now must not wait for this read (conn.close)
	defer r.c.inRaw.Store(false)
	for {
		if !r.parse() {
			return true
		}
		if r.c.closed.Load() {
			r.stop = true
			return true
		}
		if r.drained && r.busy {
			r.drained = false
			r.wait(true)
			return false
		}
		r.drained = false
		if err := r.makeRoom(); err != nil {
			r.err = err
			return true
		}
		r.dr.countPackets()
		b := *r.buf
		n, err := syscall.Read(int(fd), b[r.end:])
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			r.wait(false)
			return false
		case err != nil:
			r.err = &net.OpError{Op: "read", Net: "tcp", Source: r.c.nc.LocalAddr(), Addr: r.c.nc.RemoteAddr(),
				Err: os.NewSyscallError("read", err)}
			return true
		case n == 0:
			r.err = io.EOF
			if r.start < r.end {
				r.err = io.ErrUnexpectedEOF
			}
			return true
		}
		now := time.Now() // the arrival of what this read brought
		r.busy = now.Sub(r.dr.readAt) < busyGap
		r.dr.readAt = now
		r.dr.stats.bytesIn.Add(int64(n))
		r.dr.stats.socketReads.Add(1)
		r.drained = n < len(b)-r.end
		r.end += n
	}
}

// deadline is the connection's read deadline: the last complete packet
// plus its limit, as serve's reader sets it (deadlineReader.Read).
func (r *rawReader) deadline() time.Time { return r.dr.last.Add(r.dr.limit) }

// wait readies the wait for the socket: the buffer goes back when it holds
// nothing, the packets read are counted, and the read deadline is the
// connection's, or blindWait from the last read when blind is set.
func (r *rawReader) wait(blind bool) {
	if r.start == r.end {
		r.release()
	}
	r.dr.countPackets()
	r.blind = blind
	d := r.deadline()
	if blind {
		if b := r.dr.readAt.Add(blindWait); b.Before(d) {
			d = b
			// A deadline an earlier wait set that is still half a
			// blindWait or more after this read bounds this wait as
			// well: a busy connection moves its deadline (a clock read
			// and a poller timer) every blindWait/2, not every burst.
			if s := r.dr.set; !s.After(b) && s.Sub(r.dr.readAt) >= blindWait/2 {
				d = s
			}
		}
	}
	if !d.Equal(r.dr.set) {
		_ = r.c.nc.SetReadDeadline(d)
		r.dr.set = d
	}
}

// parse handles the complete packets read; false when reading must end.
func (r *rawReader) parse() bool {
	for r.start < r.end {
		p, n, err := r.rd.Parse((*r.buf)[r.start:r.end])
		if err != nil {
			r.err = err
			return false
		}
		if n == 0 {
			return true
		}
		r.start += n
		r.dr.packets++
		r.dr.last = r.dr.readAt // the read that completed p
		if !r.c.handle(p, r.dr.last) {
			r.stop = true
			return false
		}
	}
	return true
}

// makeRoom makes room in buf for the next read: the unparsed bytes (the
// start of a packet) moved to its start, into a buffer as large as that
// packet when it is larger than the usual one (bounded by the packet size
// limit, which Need enforces from the header).
func (r *rawReader) makeRoom() error {
	need := rawBufSize
	if r.start < r.end {
		n, err := r.rd.Need((*r.buf)[r.start:r.end])
		if err != nil {
			return err
		}
		need = max(need, n)
	}
	if r.buf == nil || need > cap(*r.buf) {
		old := r.buf
		r.room(need)
		if old != nil {
			r.end = copy(*r.buf, (*old)[r.start:r.end])
			r.start = 0
			putRawBuf(old)
		}
		return nil
	}
	if r.start > 0 { // the start of a packet (or nothing): moved, so the packet fits
		r.end = copy(*r.buf, (*r.buf)[r.start:r.end])
		r.start = 0
	}
	return nil
}

// room sets buf to a buffer of at least n bytes, pooled when it is the
// usual size.
func (r *rawReader) room(n int) {
	if n <= rawBufSize {
		r.buf = rawBufs.Get().(*[]byte)
		return
	}
	b := make([]byte, n)
	r.buf = &b
}

func (r *rawReader) release() {
	if r.buf != nil {
		putRawBuf(r.buf)
		r.buf, r.start, r.end = nil, 0, 0
	}
}

func putRawBuf(b *[]byte) {
	if cap(*b) == rawBufSize {
		*b = (*b)[:rawBufSize]
		rawBufs.Put(b)
	}
}
