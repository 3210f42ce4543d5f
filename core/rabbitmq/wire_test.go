package rabbitmq

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// countingConn is a real TCP connection that counts and records the
// writes made to it, and can be made to fail them.
type countingConn struct {
	net.Conn
	mu     sync.Mutex
	writes [][]byte
	fail   error
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.writes = append(c.writes, bytes.Clone(b))
	fail := c.fail
	c.mu.Unlock()
	if fail != nil {
		return 0, fail
	}
	return c.Conn.Write(b)
}

func (c *countingConn) taken() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.writes
	c.writes = nil
	return w
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// TestWireHoldsWrites: the writes made while held leave in one write, in
// order, when the hold ends; writes without a hold go at once; a held
// write that would pass maxHeld goes at once with what was held.
func TestWireHoldsWrites(t *testing.T) {
	client, server := tcpPair(t)
	cc := &countingConn{Conn: client}
	w := &wireConn{Conn: cc}

	if _, err := w.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if got := cc.taken(); len(got) != 1 {
		t.Fatalf("a write without a hold made %d writes, want 1", len(got))
	}

	// amqp091-go's writes of one message larger than its buffer: the full
	// buffer, the rest of the body, the frame end.
	w.hold()
	for _, part := range []string{strings.Repeat("b", 4096), strings.Repeat("c", 5000), "\xce"} {
		if n, err := w.Write([]byte(part)); err != nil || n != len(part) {
			t.Fatalf("held write: %d, %v", n, err)
		}
	}
	if got := cc.taken(); len(got) != 0 {
		t.Fatalf("%d writes reached the socket during the hold, want none", len(got))
	}
	w.release()
	got := cc.taken()
	want := strings.Repeat("b", 4096) + strings.Repeat("c", 5000) + "\xce"
	if len(got) != 1 || string(got[0]) != want {
		t.Fatalf("release made %d writes (%d bytes), want one of %d bytes", len(got), len(bytes.Join(got, nil)), len(want))
	}

	// Over maxHeld: what was held and the new write go at once.
	w.hold()
	if _, err := w.Write([]byte("d")); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("e"), maxHeld)
	if _, err := w.Write(big); err != nil {
		t.Fatal(err)
	}
	if got := cc.taken(); len(got) != 1 || len(got[0]) != maxHeld+1 || got[0][0] != 'd' {
		t.Fatalf("a write past maxHeld: %d writes, want one of %d bytes", len(got), maxHeld+1)
	}
	w.release()
	if got := cc.taken(); len(got) != 0 {
		t.Fatalf("release with nothing held made %d writes", len(got))
	}

	// Everything arrived, in order.
	total := 1 + len(want) + maxHeld + 1
	buf := make([]byte, total)
	_ = server.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(server, buf); err != nil {
		t.Fatal(err)
	}
	if string(buf[:1+len(want)]) != "a"+want || buf[1+len(want)] != 'd' {
		t.Fatal("bytes arrived out of order")
	}
}

// TestWireHeldWriteFailure: a write of held bytes that fails closes the
// socket (so amqp091-go's reader ends the connection and the session
// reconnects) and fails every later write and read with the write's
// error, loudly.
func TestWireHeldWriteFailure(t *testing.T) {
	client, server := tcpPair(t)
	cc := &countingConn{Conn: client}
	w := &wireConn{Conn: cc}
	w.hold()
	if _, err := w.Write([]byte("frame")); err != nil {
		t.Fatal(err)
	}
	broken := errors.New("write: broken pipe")
	cc.mu.Lock()
	cc.fail = broken
	cc.mu.Unlock()
	w.release()
	if _, err := w.Write([]byte("next")); !errors.Is(err, broken) {
		t.Fatalf("a write after the failure: %v, want %v", err, broken)
	}
	// The socket is closed: the peer reads EOF, and a read on ours fails.
	_ = server.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := server.Read(make([]byte, 16)); err != io.EOF {
		t.Fatalf("peer read %d bytes, %v; want EOF", n, err)
	}
	// amqp091-go's reader sees why: the write's error, not only that
	// the socket is closed.
	if _, err := w.Read(make([]byte, 1)); !errors.Is(err, broken) {
		t.Fatalf("a read of the failed socket: %v, want the write's error %v", err, broken)
	}
}

// TestWireConcurrentHolds: writers on several goroutines, some holding
// around their writes as publishers do, others not (acks, heartbeats):
// every byte arrives once and each writer's records in the order written,
// and no hold keeps bytes back past its release. A record's parts are
// written under one lock, as amqp091-go writes a message's frames under
// its connection's.
func TestWireConcurrentHolds(t *testing.T) {
	client, server := tcpPair(t)
	w := &wireConn{Conn: client}
	const writers, records = 8, 2000
	read := make(chan map[int]int, 1)
	go func() {
		next := map[int]int{}
		sc := bufio.NewScanner(server)
		for sc.Scan() {
			who, seq, _ := strings.Cut(sc.Text(), ":")
			i, _ := strconv.Atoi(who)
			n, _ := strconv.Atoi(seq)
			if n != next[i] {
				next[-1] = 1 // out of order or lost
			}
			next[i] = n + 1
		}
		read <- next
	}()
	var wg sync.WaitGroup
	var sendM sync.Mutex
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range records {
				rec := []byte(fmt.Sprintf("%d:%d\n", i, n))
				if i%2 == 0 {
					w.hold()
					// A publish's frames: written in parts.
					sendM.Lock()
					_, _ = w.Write(rec[:1])
					_, _ = w.Write(rec[1:])
					sendM.Unlock()
					w.release()
					continue
				}
				sendM.Lock()
				_, err := w.Write(rec)
				sendM.Unlock()
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	w.mu.Lock()
	held, holds := len(w.held), w.holds
	w.mu.Unlock()
	if held != 0 || holds != 0 {
		t.Fatalf("after every release: %d bytes held, %d holds", held, holds)
	}
	client.(*net.TCPConn).CloseWrite()
	select {
	case next := <-read:
		if next[-1] != 0 {
			t.Fatal("a writer's records arrived out of order or were lost")
		}
		for i := range writers {
			if next[i] != records {
				t.Errorf("writer %d: %d records arrived, want %d", i, next[i], records)
			}
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the reader did not see the end of the stream")
	}
}

// TestOwnReadsDeadline: ownReads fails a read once nothing came for its
// span, saying so; data that keeps coming keeps it alive; and once
// amqp091-go sets the connection's deadline (CloseDeadline), reads no
// longer move it, however much data comes.
func TestOwnReadsDeadline(t *testing.T) {
	const hb = 40 * time.Millisecond // span 80 ms, moved every 20 ms
	client, server := tcpPair(t)
	w := &wireConn{Conn: client}
	r := ownReads{w}
	if _, ok := any(r).(interface{ SetReadDeadline(time.Time) error }); ok {
		t.Fatal("ownReads has SetReadDeadline: amqp091-go would hand it to its heartbeater after every frame")
	}
	w.keepReadDeadline(hb)

	// A peer that writes every 10 ms for 300 ms: no read times out.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				if _, err := server.Write([]byte{'x'}); err != nil {
					return
				}
			case <-stop:
				return
			}
		}
	}()
	buf := make([]byte, 64)
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
		if _, err := r.Read(buf); err != nil {
			t.Fatalf("a read failed while the peer kept writing: %v", err)
		}
	}

	// The connection's deadline, in 100 ms: reads that keep getting data
	// still fail once it passes.
	if err := r.SetDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var err error
	for err == nil && time.Since(start) < 2*time.Second {
		_, err = r.Read(buf)
	}
	close(stop)
	wg.Wait()
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("reads past the connection's deadline: %v, want a timeout", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("reads went on %v past a deadline 100 ms away", took)
	}

	// A silent peer: the read fails within the span and says why.
	client2, _ := tcpPair(t)
	w2 := &wireConn{Conn: client2}
	w2.keepReadDeadline(hb)
	start = time.Now()
	_, err = ownReads{w2}.Read(buf)
	if err == nil || !strings.Contains(err.Error(), "nothing from the broker") {
		t.Fatalf("a read from a silent peer: %v, want the broker named silent", err)
	}
	if took := time.Since(start); took < 60*time.Millisecond || took > time.Second {
		t.Errorf("a silent peer failed the read after %v, want 60-80 ms", took)
	}
}
