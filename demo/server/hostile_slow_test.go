package main

import (
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/gate/packets"
)

// The hostile suite's slow clients: slowloris before and after CONNECT,
// straddled and dribbled packets, keep-alive limits.

// hostileSlow: slowloris before and after CONNECT, straddled packets,
// keep-alive 0. These wait on timers, so they run in parallel.
func hostileSlow(t *testing.T, p *hproc, rep *hreport) {
	t.Run("before CONNECT one byte per 300ms", func(t *testing.T) {
		t.Parallel()
		c := hDial(t, p.tcp, "")
		start := time.Now()
		closedAt := hDribble(c.nc, hConnectPacket("slow", 60), 300*time.Millisecond, start)
		if closedAt == 0 {
			t.Fatal("dribbled CONNECT was never closed")
		}
		if closedAt < hConnectTimeout-100*time.Millisecond || closedAt > hConnectTimeout+time.Second {
			t.Fatalf("closed %v after accept, want about ConnectTimeout %v", closedAt, hConnectTimeout)
		}
		rep.fact("slowloris before CONNECT (1 byte / 300 ms): closed %v after connecting (ConnectTimeout %v)", closedAt.Round(time.Millisecond), hConnectTimeout)
	})
	t.Run("websocket without CONNECT", func(t *testing.T) {
		t.Parallel()
		c := hWSDial(t, p.ws, nil)
		d, closed := hClosedWithin(c.nc, time.Now(), 5*time.Second)
		if !closed || d > hConnectTimeout+time.Second {
			t.Fatalf("silent WebSocket: closed=%v after %v, want about %v", closed, d, hConnectTimeout)
		}
		rep.fact("WebSocket upgraded but no CONNECT: closed after %v", d.Round(time.Millisecond))
	})
	t.Run("after CONNECT a PUBLISH dribbled with keep-alive 1", func(t *testing.T) {
		t.Parallel()
		c := hConnect(t, p.tcp, "", "dribbler", 1)
		start := time.Now() // the CONNECT was the last complete packet
		pub := packets.AppendPublish(nil, "Login/Handler_Login/1", []byte(`{"userName":"slow","passWord":"x"}`), 0, 0)
		closedAt := hDribble(c.nc, pub, 300*time.Millisecond, start)
		if closedAt == 0 {
			t.Fatal("dribbled PUBLISH was never closed")
		}
		if closedAt < 1400*time.Millisecond || closedAt > 2500*time.Millisecond {
			t.Fatalf("closed %v after the last complete packet, want about 1.5 s (not extended by the hDribble)", closedAt)
		}
		rep.fact("slowloris after CONNECT (PUBLISH 1 byte / 300 ms, keep-alive 1 s): closed %v after the CONNECT", closedAt.Round(time.Millisecond))
	})
	t.Run("CONNECT keep-alive 1 and 0xC0 in one write", func(t *testing.T) {
		t.Parallel()
		c := hDial(t, p.tcp, "")
		start := time.Now()
		if err := c.write(append(hConnectPacket("straddle1", 1), 0xc0)); err != nil {
			t.Fatal(err)
		}
		if code, err := c.connack(); err != nil || code != 0 {
			t.Fatalf("CONNACK %d, %v", code, err)
		}
		d, closed := hClosedWithin(c.nc, start, 5*time.Second)
		if !closed || d > 2500*time.Millisecond {
			t.Fatalf("closed=%v after %v, want about 1.5 s", closed, d)
		}
		rep.fact("CONNECT (keep-alive 1 s) + 0xC0 in one write, then silence: closed after %v", d.Round(time.Millisecond))
	})
	t.Run("PINGREQs straddling writes every 300ms", func(t *testing.T) {
		t.Parallel()
		c := hConnect(t, p.tcp, "", "straddler", 1)
		var pongs atomic.Int64
		readErr := make(chan error, 1)
		go func() {
			buf := make([]byte, 2)
			for {
				_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.ReadFull(c.nc, buf); err != nil {
					readErr <- err
					return
				}
				if buf[0] != 0xd0 || buf[1] != 0 {
					readErr <- fmt.Errorf("got % x, want PINGRESP d0 00", buf)
					return
				}
				pongs.Add(1)
			}
		}()
		if err := c.write([]byte{0xc0}); err != nil {
			t.Fatal(err)
		}
		for start := time.Now(); time.Since(start) < 4*time.Second; {
			time.Sleep(300 * time.Millisecond) // the client's pacing
			select {
			case err := <-readErr:
				t.Fatalf("after %v: %v (PINGRESPs: %d)", time.Since(start), err, pongs.Load())
			default:
			}
			if err := c.write([]byte{0x00, 0xc0}); err != nil {
				t.Fatalf("write after %v: %v", time.Since(start), err)
			}
		}
		if n := pongs.Load(); n < 8 {
			t.Fatalf("%d PINGRESPs in 4 s, want about 13", n)
		}
		rep.fact("PINGREQs straddling writes every 300 ms (keep-alive 1 s): connected 4 s, %d PINGRESPs", pongs.Load())
	})
	t.Run("keep-alive 0 closed after IdleTimeout", func(t *testing.T) {
		t.Parallel()
		c := hConnect(t, p.tcp, "", "forever", 0)
		start := time.Now()
		d, closed := hClosedWithin(c.nc, start, 3*hIdleTimeout)
		if !closed || d < hIdleTimeout-100*time.Millisecond || d > hIdleTimeout+time.Second {
			t.Fatalf("closed=%v after %v, want about IdleTimeout %v", closed, d, hIdleTimeout)
		}
		rep.fact("keep-alive 0, silent: closed after %v (IdleTimeout %v)", d.Round(time.Millisecond), hIdleTimeout)
	})
}

// hDribble writes b one byte per interval until written or the connection
// closes; it returns when the server closed it (since start), or 0 when
// it never did (all written and 3 s more).
func hDribble(nc net.Conn, b []byte, interval time.Duration, start time.Time) time.Duration {
	closed := make(chan time.Duration, 1)
	go func() {
		d, ok := hClosedWithin(nc, start, time.Duration(len(b))*interval+3*time.Second)
		if !ok {
			d = 0
		}
		closed <- d
	}()
	for _, x := range b {
		select {
		case d := <-closed:
			return d
		case <-time.After(interval): // the client's pacing
		}
		_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := nc.Write([]byte{x}); err != nil {
			break
		}
	}
	return <-closed
}
