package gate

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server, client *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close(); sc.Close() })
	return sc.(*net.TCPConn), cc.(*net.TCPConn)
}

// TestOutboxWriteTimesOut: a burst the socket does not take at once (the
// client does not read) is written under the write timeout, and the
// connection fails with it.
func TestOutboxWriteTimesOut(t *testing.T) {
	sc, cc := tcpPair(t)
	_ = sc.SetWriteBuffer(4096)
	_ = cc.SetReadBuffer(4096)
	failed := make(chan string, 1)
	o := newOutbox(sc, 10, 64<<20, 200*time.Millisecond, func(r string) { failed <- r })
	if o.raw == nil {
		t.Fatal("a plain TCP connection's outbox has no raw socket")
	}
	big := make([]byte, 8<<20)
	o.queue(func(b []byte) []byte { return append(b, big...) }, false)
	start := time.Now()
	go o.flush()
	select {
	case r := <-failed:
		if !strings.Contains(r, "write") || !strings.Contains(r, "timeout") {
			t.Errorf("failure %q, want the write's timeout", r)
		}
		if took := time.Since(start); took < 150*time.Millisecond {
			t.Errorf("failed after %v, before the 200 ms timeout", took)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a write the client never reads did not time out within 10 s")
	}
}

// TestOutboxWritesPastAStaleDeadline: a write deadline that has passed (the
// CONNACK's, a slow write's) does not fail the next write: it is tried
// without one, then written under a fresh one.
func TestOutboxWritesPastAStaleDeadline(t *testing.T) {
	sc, cc := tcpPair(t)
	failed := make(chan string, 1)
	o := newOutbox(sc, 10, 1<<20, 5*time.Second, func(r string) { failed <- r })
	_ = sc.SetWriteDeadline(time.Now().Add(-time.Second))
	o.queue(func(b []byte) []byte { return append(b, "hello"...) }, false)
	o.flush()
	// A burst larger than the socket takes at once, read while it is
	// written: the short first write goes on under the deadline.
	_ = sc.SetWriteBuffer(4096)
	big := bytes.Repeat([]byte("x"), 4<<20)
	o.queue(func(b []byte) []byte { return append(b, big...) }, false)
	done := make(chan struct{})
	go func() { o.flush(); close(done) }()
	_ = cc.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, 5+len(big))
	if _, err := io.ReadFull(cc, got); err != nil {
		t.Fatalf("client read: %v", err)
	}
	<-done
	if string(got[:5]) != "hello" || !bytes.Equal(got[5:], big) {
		t.Error("the client did not get both bursts intact")
	}
	select {
	case r := <-failed:
		t.Fatalf("outbox failed: %s", r)
	default:
	}
}
