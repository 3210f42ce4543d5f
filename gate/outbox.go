package gate

import (
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// outbox is a connection's outgoing side: encoded packets are appended to
// one buffer and written together, so a burst of replies costs one write
// system call. A writer goroutine runs only while there is work (an idle
// connection holds none); the dispatcher may write a burst itself (flush).
//
// It is bounded: a client that stops reading fills it and is disconnected
// (queue reports queueFull), never waited for.
type outbox struct {
	nc     net.Conn
	raw    syscall.RawConn       // nc's socket when it is plain TCP: writes try it first, without a deadline
	tryRaw func(fd uintptr) bool // o.tryWrite, made once
	// wmu makes each write whole: a burst's part the socket took at once
	// and its rest under the deadline go out with no other write between
	// them (flush's writing flag orders flushes, not writeNow's CONNACK,
	// which a Send to the just-registered connection can race). It also
	// guards the write in progress through raw (wbuf, wn, werr).
	wmu       sync.Mutex
	wbuf      []byte
	wn        int
	werr      error
	maxCount  int // packets waiting
	maxBytes  int // bytes waiting
	timeout   time.Duration
	onFailure func(reason string) // closes the connection; called without mu held
	stats     *gateStats          // bytes and packets out; nil in tests of the outbox alone

	mu      sync.Mutex
	pending []byte
	count   int
	spare   []byte
	closed  bool
	writing bool // a goroutine is in flush's write
	writer  bool // writeLoop is running
	wake    chan struct{}
	done    chan struct{}
}

// queueResult says whether a packet was queued, and why not.
type queueResult int

const (
	queued queueResult = iota
	queueClosed
	queueFull
)

func newOutbox(nc net.Conn, maxCount, maxBytes int, timeout time.Duration, onFailure func(string)) *outbox {
	o := &outbox{nc: nc, raw: rawSocket(nc), maxCount: maxCount, maxBytes: maxBytes, timeout: timeout, onFailure: onFailure,
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	o.tryRaw = o.tryWrite
	return o
}

// queue appends one encoded packet. wake false leaves the writing to the
// caller, which calls flush once its burst is queued. appendPacket runs
// under the outbox's lock: it must only append.
func (o *outbox) queue(appendPacket func([]byte) []byte, wake bool) queueResult {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return queueClosed
	}
	if o.count >= o.maxCount || len(o.pending) >= o.maxBytes {
		o.mu.Unlock()
		return queueFull
	}
	o.pending = appendPacket(o.pending)
	o.count++
	start := wake && !o.writer
	if start {
		o.writer = true
	}
	o.mu.Unlock()
	if start {
		go o.writeLoop()
	} else if wake {
		select {
		case o.wake <- struct{}{}:
		default:
		}
	}
	return queued
}

// queued reports how many packets wait.
func (o *outbox) queued() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.count
}

// writeNow writes b directly, before the reader queues anything (the
// CONNACK: a Send to the just-registered connection may still race it,
// which write's lock keeps whole).
func (o *outbox) writeNow(b []byte) {
	n, _ := o.write(b)
	o.counted(n, 1)
}

func (o *outbox) counted(bytes, packets int) {
	if o.stats != nil {
		o.stats.bytesOut.Add(int64(bytes))
		o.stats.packetsOut.Add(int64(packets))
		o.stats.socketWrites.Add(1)
	}
}

// flush writes what is queued, unless another goroutine is writing (it
// writes this too before it stops). A client slow to read holds up only
// the goroutine that flushes, never the connection's reader.
func (o *outbox) flush() {
	for {
		o.mu.Lock()
		if o.writing || len(o.pending) == 0 || o.closed {
			o.mu.Unlock()
			return
		}
		o.writing = true
		buf := o.pending
		packets := o.count
		o.pending = o.spare[:0]
		o.spare = nil
		o.count = 0
		o.mu.Unlock()
		n, err := o.write(buf)
		o.counted(n, packets)
		o.mu.Lock()
		o.writing = false
		if cap(buf) <= 64<<10 {
			o.spare = buf[:0]
		}
		o.mu.Unlock()
		if err != nil {
			o.onFailure("write: " + err.Error())
			return
		}
	}
}

// write writes buf to the socket. A plain TCP socket is first written
// without a deadline: nearly always the kernel takes the whole burst at
// once, and setting a deadline costs three clock reads and a poller timer
// per write. What the socket does not take at once (its buffer is full:
// the client reads slowly) is written under the deadline, which is
// cleared again once that write is done.
func (o *outbox) write(buf []byte) (int, error) {
	o.wmu.Lock()
	defer o.wmu.Unlock()
	n := 0
	if o.raw != nil {
		o.wbuf, o.wn, o.werr = buf, 0, nil
		err := o.raw.Write(o.tryRaw)
		n, werr := o.wn, o.werr
		o.wbuf, o.werr = nil, nil
		if werr != nil {
			return n, &net.OpError{Op: "write", Net: "tcp", Source: o.nc.LocalAddr(), Addr: o.nc.RemoteAddr(),
				Err: os.NewSyscallError("write", werr)}
		}
		if err == nil && n == len(buf) {
			return n, nil
		}
		// Short, or refused: closed (the write below says so), or past a
		// deadline that an earlier write left (the write below sets a
		// new one).
	}
	_ = o.nc.SetWriteDeadline(time.Now().Add(o.timeout))
	m, err := o.nc.Write(buf[n:])
	if o.raw != nil && err == nil {
		_ = o.nc.SetWriteDeadline(time.Time{})
	}
	return n + m, err
}

// tryWrite is the function write hands RawConn.Write (made once, in
// newOutbox: a closure per write would be an allocation): it writes wbuf
// from wn on until the socket takes no more, and never waits.
func (o *outbox) tryWrite(fd uintptr) bool {
	for o.wn < len(o.wbuf) {
		m, e := syscall.Write(int(fd), o.wbuf[o.wn:])
		if m > 0 {
			o.wn += m
		}
		if e == syscall.EINTR {
			continue
		}
		if e != nil {
			if e != syscall.EAGAIN {
				o.werr = e
			}
			break
		}
	}
	return true // waiting is the deadline's path in write
}

// writerIdle is how long a writer goroutine waits for more to write before
// it ends; queue starts one again.
const writerIdle = 5 * time.Second

// writeLoop writes what other goroutines queue (acknowledgements from the
// reader, pushes from modules): everything queued by the time it runs goes
// out in one write.
func (o *outbox) writeLoop() {
	idle := time.NewTimer(writerIdle)
	defer idle.Stop()
	for {
		o.flush()
		select {
		case <-o.wake:
			idle.Reset(writerIdle)
		case <-o.done:
			o.mu.Lock()
			o.writer = false
			o.mu.Unlock()
			return
		case <-idle.C:
			o.mu.Lock()
			if len(o.pending) > 0 && !o.closed {
				o.mu.Unlock()
				idle.Reset(writerIdle)
				continue
			}
			o.writer = false
			o.mu.Unlock()
			return
		}
	}
}

// close drops what is queued and stops the writer; it reports whether this
// call closed it.
func (o *outbox) close() bool {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return false
	}
	o.closed = true
	if o.stats != nil {
		o.stats.outDropped.Add(int64(o.count))
	}
	o.pending, o.spare = nil, nil
	o.mu.Unlock()
	close(o.done)
	return true
}
