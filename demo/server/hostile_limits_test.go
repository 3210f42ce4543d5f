package main

import (
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/mqantgen/mqantgen/gate/packets"
)

// The hostile suite's cases about limits and lifecycle: request rate,
// sockets from accept, per-IP limits, client ids, keep-alive caps, close
// reasons in the log, shutdown with clients connected.

// hostileRateLimit: over MaxRequestsPerSecond the client gets the exact
// error reply, with its msgid.
func hostileRateLimit(t *testing.T, p *hproc, rep *hreport) {
	c := hConnect(t, p.tcp, "", "greedy", 60)
	const n = 30
	var buf []byte
	for i := 0; i < n; i++ {
		buf = packets.AppendPublish(buf, fmt.Sprintf("Login/Handler_Login/%d", i), []byte(`{"userName":"greedy","passWord":"x"}`), 0, 0)
	}
	if err := c.write(buf); err != nil {
		t.Fatal(err)
	}
	ok, limited := 0, 0
	for i := 0; i < n; i++ {
		pub, err := c.waitPublish(func(*packets.Publish) bool { return true }, 10*time.Second)
		if err != nil {
			t.Fatalf("after %d replies: %v", i, err)
		}
		switch string(pub.Payload) {
		case hreply("", `"login success greedy"`):
			ok++
		case `{"Error":"too many requests","Code":"rate_limited","Result":null}`:
			limited++
		default:
			t.Fatalf("reply on %s: %s", pub.Topic, pub.Payload)
		}
	}
	if ok < 10 || ok > 12 || ok+limited != n {
		t.Fatalf("%d served, %d refused of %d sent at once; want the burst of 10 served", ok, limited, n)
	}
	rep.fact("rate limit (5/s, burst 10): %d requests sent at once: %d served, %d answered {\"Error\":\"too many requests\",\"Result\":null}", n, ok, limited)
}

// hostileMaxConnections: sockets count from accept: MaxConnections idle
// sockets without CONNECT shut out the next client until ConnectTimeout
// closes them.
func hostileMaxConnections(t *testing.T, p *hproc, rep *hreport) {
	// The rate-limit case's client must be gone on the server's side too,
	// or its place frees up in the middle of this case.
	if !hPoll(5*time.Second, func() bool {
		for _, l := range p.logLines("clientId=greedy") {
			if strings.Contains(l, `msg="connection closed"`) {
				return true
			}
		}
		return false
	}) {
		t.Fatal("the rate-limit case's connection never closed on the server")
	}
	// The bystander holds one of the 11 places.
	var idle []net.Conn
	for i := 0; i < 10; i++ {
		nc, err := hDialFrom(p.tcp, fmt.Sprintf("127.0.0.%d", 2+i%2))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		idle = append(idle, nc)
	}
	held := time.Now()
	c := hDial(t, p.tcp, "127.0.0.4")
	_ = c.write(hConnectPacket("late", 60))
	code, err := c.connack()
	if err == nil && code != packets.ServerUnavailable {
		t.Fatalf("CONNECT with MaxConnections open sockets: CONNACK %d, want 3 or closed", code)
	}
	refused := fmt.Sprintf("CONNACK %d", code)
	if err != nil {
		refused = "closed (" + err.Error() + ")"
	}
	// The idle sockets hold their places until ConnectTimeout closes them:
	// a handshake that only got through after that proves nothing.
	if c, _, err := websocket.DefaultDialer.Dial("ws://"+p.ws+"/mqtt", nil); err == nil {
		c.Close()
		if since := time.Since(held); since < hConnectTimeout*3/4 {
			t.Errorf("WebSocket handshake succeeded with MaxConnections open sockets (%v after they opened)", since)
		} else {
			t.Logf("WebSocket handshake %v after the idle sockets opened: too late to tell (machine busy)", since)
		}
	}
	var worst time.Duration
	for _, nc := range idle {
		d, closed := hClosedWithin(nc, held, 5*time.Second)
		if !closed {
			t.Fatal("socket without CONNECT not closed")
		}
		worst = max(worst, d)
	}
	var after time.Duration
	if !hPoll(5*time.Second, func() bool {
		nc, err := hDialFrom(p.tcp, "127.0.0.4")
		if err != nil {
			return false
		}
		defer nc.Close()
		after = time.Since(held)
		return newHClient(nc).connect("late", 60) == nil
	}) {
		t.Fatal("no client gets in after the idle sockets were closed")
	}
	rep.fact("MaxConnections 11 (bystander + 10 sockets without CONNECT): next CONNECT %s, WebSocket refused; idle sockets closed within %v; a new client in %v after", refused, worst.Round(10*time.Microsecond), after.Round(time.Millisecond))
}

// hostilePerIP: one address is held to MaxConnectionsPerIP; another gets in.
func hostilePerIP(t *testing.T, p *hproc, rep *hreport) {
	for i := 0; i < 5; i++ {
		hConnect(t, p.tcp, "127.0.0.2", fmt.Sprintf("ip2-%d", i), 60)
	}
	c := hDial(t, p.tcp, "127.0.0.2")
	_ = c.write(hConnectPacket("ip2-6", 60))
	code, err := c.connack()
	if err == nil && code != packets.ServerUnavailable {
		t.Fatalf("6th connection from 127.0.0.2: CONNACK %d, want 3", code)
	}
	other := hConnect(t, p.tcp, "127.0.0.3", "ip3", 60)
	if err := other.ping(); err != nil {
		t.Fatal(err)
	}
	refused := fmt.Sprintf("CONNACK %d", code)
	if err != nil {
		refused = "closed (" + err.Error() + ")"
	}
	rep.fact("MaxConnectionsPerIP 5: the 6th from 127.0.0.2 refused: %s; 127.0.0.3 gets in", refused)
}

// hostileGuessedID: an empty client id gets an unguessable id; connecting
// with the old sequential form takes nothing over, the real id would.
func hostileGuessedID(t *testing.T, p *hproc, rep *hreport) {
	victim := hConnect(t, p.tcp, "", "", 60)
	me := "remote=" + victim.nc.LocalAddr().String()
	var id string
	re := regexp.MustCompile(`clientId=(\S+)`)
	if !hPoll(5*time.Second, func() bool {
		for _, l := range p.logLines(me) {
			if strings.Contains(l, "client connected") {
				if m := re.FindStringSubmatch(l); m != nil {
					id = m[1]
					return true
				}
			}
		}
		return false
	}) {
		t.Fatal("no client connected line for the victim in the debug log")
	}
	if !regexp.MustCompile(`^auto-[0-9a-f]{32}$`).MatchString(id) {
		t.Fatalf("generated client id %q, want auto-<32 hex>", id)
	}
	for i := 1; i <= 3; i++ {
		a := hConnect(t, p.tcp, "127.0.0.3", fmt.Sprintf("auto-Gate1#%d", i), 60)
		a.nc.Close()
	}
	if err := victim.ping(); err != nil {
		t.Fatalf("victim after guessed ids: %v", err)
	}
	// The takeover rule itself still holds: the real id would take it.
	hConnect(t, p.tcp, "127.0.0.3", id, 60)
	if d, closed := hClosedWithin(victim.nc, time.Now(), 5*time.Second); !closed {
		t.Fatal("the real client id did not take the connection over: the check above proves nothing")
	} else {
		rep.fact("client id: empty id got %s...; auto-Gate1#1..3 took nothing over; the real id took over in %v", id[:9], d.Round(10*time.Microsecond))
	}
}

// hostileCloseReasonLogged: a connection that has used up its warnings
// (five dropped topics) and is then closed for a bad packet still gets
// the line saying why it was closed: a close happens once per connection,
// it is not a repeated warning, and it is the line an operator looks for.
func hostileCloseReasonLogged(t *testing.T, p *hproc, rep *hreport) {
	c := hConnect(t, p.tcp, "", "noisy", 60)
	me := "remote=" + c.nc.LocalAddr().String()
	var buf []byte
	for i := 0; i < 6; i++ {
		buf = packets.AppendPublish(buf, fmt.Sprintf("T%d%s/Handler_X/1", i, strings.Repeat("t", hMaxTopicLen)), []byte("{}"), 0, 0)
	}
	if err := c.write(buf); err != nil {
		t.Fatal(err)
	}
	if err := c.ping(); err != nil { // the six were read
		t.Fatal(err)
	}
	if err := c.write([]byte{0x00, 0x00}); err != nil {
		t.Fatal(err)
	}
	if _, closed := hClosedWithin(c.nc, time.Now(), 5*time.Second); !closed {
		t.Fatal("bad packet did not close the connection")
	}
	logged := hPoll(3*time.Second, func() bool {
		for _, l := range p.logLines(me) {
			if strings.Contains(l, "closing connection") {
				return true
			}
		}
		return false
	})
	rep.fact("connection closed for a bad packet after 6 dropped topics: close reason in the log: %v (want true)", logged)
	if !logged {
		t.Errorf("no log line says why %s was closed; its lines:\n%s", me, strings.Join(p.logLines(me), "\n"))
	}
}

// hostileMaxKeepAlive: a client asking for the longest keep-alive MQTT
// allows (18 h) is held to MaxKeepAlive: silent, it is closed after 1.5 x
// MaxKeepAlive.
func hostileMaxKeepAlive(t *testing.T, p *hproc, rep *hreport) {
	c := hConnect(t, p.tcp, "", "sleepy", 65535)
	d, closed := hClosedWithin(c.nc, time.Now(), 5*time.Second)
	if !closed || d < 1400*time.Millisecond || d > 2500*time.Millisecond {
		t.Fatalf("keep-alive 65535 s with MaxKeepAlive 1s: closed=%v after %v, want about 1.5 s", closed, d)
	}
	rep.fact("keep-alive 65535 s asked, MaxKeepAlive 1 s: silent client closed after %v", d.Round(time.Millisecond))
}

// hostileShutdown: Ctrl+C with a client connected and in a room: the
// server stops promptly, and the client's session-closed event reaches
// Chat (in the same process) rather than being retried against a module
// already stopped and logged as undelivered.
func hostileShutdown(t *testing.T, p *hproc, rep *hreport) {
	c := hConnect(t, p.tcp, "", "last", 60)
	if got, _ := c.request("Login/Handler_Login/1", `{"userName":"last","passWord":"x"}`); got != hreply("", `"login success last"`) {
		t.Fatalf("login: %s", got)
	}
	if got, _ := c.request("Chat/Handler_JoinChat/2", `{"roomName":"end"}`); got != hreply("", `"join success"`) {
		t.Fatalf("join: %s", got)
	}
	took := p.stop(t)
	lines := p.logLines("undelivered")
	rep.fact("Ctrl+C with one client connected: process exited in %v; %d log lines about undelivered session-closed events (want 0)", took.Round(time.Millisecond), len(lines))
	if len(lines) > 0 {
		t.Errorf("shutdown lost the connected client's session-closed event:\n%s", strings.Join(lines, "\n"))
	}
	if took > 1500*time.Millisecond {
		t.Errorf("shutdown with one client connected took %v", took)
	}
}
