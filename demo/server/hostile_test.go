package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/mqantgen/mqantgen/gate/packets"
	"github.com/mqantgen/mqantgen/internal/wsconn"
)

// The gate's limits in the attacked process. Short timeouts keep the suite
// fast; the attacks are the same at production values.
const (
	hConnectTimeout = time.Second
	hIdleTimeout    = 2 * time.Second
	hMaxQueue       = 64
	hMaxTopicLen    = 512
)

// TestHostileClients attacks a real demo server process, built from this
// command without -race (realistic memory), with raw TCP and WebSocket
// clients, and checks for each attack the exact answer (a reply, a
// CONNACK code, or the socket closed, and when), that a bystander keeps
// being served throughout, and that the process's memory stays bounded.
// HOSTILE_REPORT=path writes the figures as markdown (bench/hostile.md).
func TestHostileClients(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and attacks a server process; skipped with -short")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "server")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	rep := &hreport{}
	suiteStart := time.Now()

	// Server A: generous connection limits, small queues, short timeouts.
	a := startHProc(t, bin, dir, "a", "info", map[string]any{
		"ConnectTimeout": hConnectTimeout.String(), "IdleTimeout": hIdleTimeout.String(), "MaxKeepAlive": "20s",
		"MaxQueue": hMaxQueue, "MaxTopicLen": hMaxTopicLen, "MaxConnections": 10000,
		"WSOrigins": []string{"http://game.example"},
	})
	by := startHBystander(t, a.tcp, "bystander")
	t.Run("A", func(t *testing.T) {
		for _, c := range []struct {
			name string
			f    func(*testing.T, *hproc, *hreport)
		}{
			{"Malformed", hostileMalformed},
			{"CloseReasonLoggedAfterWarnings", hostileCloseReasonLogged},
			{"Oversized", hostileOversized},
			{"Partial", hostilePartial},
			{"Slow", hostileSlow},
			{"Flood", hostileFlood},
			{"Spoofing", hostileSpoofing},
			{"JSONBombs", hostileJSONBombs},
			{"NonReading", hostileNonReading},
			{"WebSocketPort", hostileWebSocketPort},
			{"IdleThousands", hostileIdleThousands},
		} {
			t.Run(c.name, func(t *testing.T) {
				c.f(t, a, rep)
				if !a.alive() {
					t.Fatal("server A died")
				}
				by.check(t)
			})
		}
	})
	by.end()
	by.check(t)
	rep.fact("bystander on A: %d requests during the attacks, none failed, slowest reply %v", by.count, by.slowest.Round(time.Millisecond))

	// Server B: tight socket and request limits, debug log (it shows the
	// client ids the gate generates).
	b := startHProc(t, bin, dir, "b", "debug", map[string]any{
		"ConnectTimeout": hConnectTimeout.String(), "IdleTimeout": hIdleTimeout.String(),
		"MaxConnections": 11, "MaxConnectionsPerIP": 5, "MaxRequestsPerSecond": 5, "RequestBurst": 10,
	})
	byB := startHBystander(t, b.tcp, "bystander-b")
	t.Run("B", func(t *testing.T) {
		for _, c := range []struct {
			name string
			f    func(*testing.T, *hproc, *hreport)
		}{
			{"RateLimit", hostileRateLimit},
			{"MaxConnectionsFromAccept", hostileMaxConnections},
			{"MaxConnectionsPerIP", hostilePerIP},
			{"GuessedClientID", hostileGuessedID},
		} {
			t.Run(c.name, func(t *testing.T) {
				c.f(t, b, rep)
				if !b.alive() {
					t.Fatal("server B died")
				}
				byB.check(t)
			})
		}
	})
	byB.end()
	byB.check(t)
	// Server C: a one-second MaxKeepAlive, then Ctrl+C with a client in a room.
	t.Run("C", func(t *testing.T) {
		c := startHProc(t, bin, dir, "c", "info", map[string]any{"ConnectTimeout": "1s", "MaxKeepAlive": "1s"})
		t.Run("MaxKeepAlive", func(t *testing.T) { hostileMaxKeepAlive(t, c, rep) })
		t.Run("ShutdownWithClientsConnected", func(t *testing.T) { hostileShutdown(t, c, rep) })
	})
	rep.fact("whole suite (build included): %v", time.Since(suiteStart).Round(100*time.Millisecond))
	if path := os.Getenv("HOSTILE_REPORT"); path != "" {
		rep.write(t, path, hostileHeader)
	}
}

const hostileHeader = `# Hostile clients against the demo server process

Written by ` + "`HOSTILE_REPORT=bench/hostile.md go test -race -count=1 -run Hostile -v ./demo/server/`" + `
(demo/server/hostile_test.go). The server is the demo binary built without -race, one process, in-process RPC,
attacked over loopback by raw TCP and WebSocket clients while a Paho bystander logs in every 100 ms.
The collector's heap floor is off (GC.HeapFloorMB 0): the memory figures are what the clients cost, not
the room of up to 32 MiB the default floor gives garbage.
Server A: ConnectTimeout 1s, IdleTimeout 2s, MaxKeepAlive 20s, MaxQueue 64, MaxTopicLen 512,
WSOrigins [http://game.example]. Server B: MaxConnections 11, MaxConnectionsPerIP 5,
MaxRequestsPerSecond 5, RequestBurst 10. One shared, loaded 2-core machine: read the figures as orders of
magnitude.
`

// hostileMalformed: each malformed packet closes its connection at once,
// before and after CONNECT, over TCP and WebSocket.
func hostileMalformed(t *testing.T, p *hproc, rep *hreport) {
	badUTF8 := packets.AppendPublish(nil, "Login/Handler_Login/1", nil, 0, 0)
	badUTF8[4] = 0xff // first byte of the topic: not UTF-8 [MQTT-1.5.3-1]
	cases := []struct {
		name      string
		raw       []byte
		afterConn bool
	}{
		{"reserved type 0", []byte{0x00, 0x00}, true},
		{"reserved type 15", []byte{0xf0, 0x00}, true},
		{"PUBREL without its flags", []byte{0x60, 0x02, 0x00, 0x01}, true},
		{"SUBSCRIBE without its flags", []byte{0x80, 0x06, 0x00, 0x01, 0x00, 0x01, '#', 0x00}, true},
		{"PUBLISH QoS 3", []byte{0x36, 0x05, 0x00, 0x01, 'a', 0x00, 0x01}, true},
		{"PINGREQ with a body", []byte{0xc0, 0x01, 0x00}, true},
		{"varint over 4 bytes", []byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}, true},
		{"topic not UTF-8", badUTF8, true},
		{"second CONNECT", hConnectPacket("again", 60), true},
		{"first packet not CONNECT", []byte{0xc0, 0x00}, false},
		{"CONNECT reserved flag", []byte{0x10, 0x0d, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x03, 0, 60, 0, 1, 'x'}, false},
		{"varint over 4 bytes before CONNECT", []byte{0x10, 0x80, 0x80, 0x80, 0x80, 0x01}, false},
	}
	var worst time.Duration
	for _, ws := range []bool{false, true} {
		for _, tc := range cases {
			name := tc.name
			if ws {
				name = "ws/" + name
			}
			t.Run(name, func(t *testing.T) {
				var c *hclient
				if ws {
					c = hWSDial(t, p.ws, nil)
				} else {
					c = hDial(t, p.tcp, "")
				}
				if tc.afterConn {
					if err := c.connect("", 60); err != nil {
						t.Fatal(err)
					}
				}
				start := time.Now()
				if err := c.write(tc.raw); err != nil {
					t.Fatal(err)
				}
				d, closed := hClosedWithin(c.nc, start, 5*time.Second)
				if !closed {
					t.Fatal("connection not closed")
				}
				worst = max(worst, d)
			})
		}
	}
	if lines := p.logLines("bad packet"); len(lines) == 0 {
		t.Error(`no "bad packet" warning in the log`)
	}
	rep.fact("malformed packets (%d kinds, TCP and WebSocket): each connection closed, slowest %v after the packet", len(cases), worst.Round(10*time.Microsecond))
}

// hWSDial opens an MQTT-over-WebSocket connection (not yet CONNECTed).
func hWSDial(t testing.TB, addr string, h http.Header) *hclient {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Subprotocols: []string{"mqtt"}}
	ws, resp, err := d.Dial("ws://"+addr+"/mqtt", h)
	if err != nil {
		t.Fatalf("websocket dial: %v", err)
	}
	resp.Body.Close()
	t.Cleanup(func() { ws.Close() })
	return newHClient(wsconn.New(ws))
}

// hostileOversized: a header announcing 100 MB is refused on the header,
// without the body being waited for or memory taken for it.
func hostileOversized(t *testing.T, p *hproc, rep *hreport) {
	s := p.sampleRSS(t)
	hdr100MB := []byte{0x30, 0x80, 0x80, 0x80, 0x32} // PUBLISH, remaining length 104,857,600
	var worst time.Duration
	for i, tc := range []struct {
		name      string
		afterConn bool
		raw       []byte
	}{
		{"PUBLISH of 100 MB after CONNECT", true, hdr100MB},
		{"CONNECT of 100 MB", false, []byte{0x10, 0x80, 0x80, 0x80, 0x32}},
		{"CONNECT over the pre-CONNECT cap (17 KB)", false, []byte{0x10, 0x80, 0x88, 0x01}},
		{"PUBLISH just over MaxMsgLen", true, packets.AppendPublish(nil, "Chat/Handler_Say/1", make([]byte, 64<<10), 0, 0)},
	} {
		c := hDial(t, p.tcp, "")
		if tc.afterConn {
			if err := c.connect(fmt.Sprintf("big%d", i), 60); err != nil {
				t.Fatal(err)
			}
		}
		start := time.Now()
		_ = c.write(tc.raw) // the gate may close while a large write is under way
		d, closed := hClosedWithin(c.nc, start, 5*time.Second)
		if !closed {
			t.Fatalf("%s: not closed", tc.name)
		}
		worst = max(worst, d)
	}
	s.finish(p, t)
	if grown := s.peak - s.base; grown > 16<<10 {
		t.Errorf("RSS grew %d KB on oversized headers", grown)
	}
	if !strings.Contains(p.log(), "remaining length 104857600") {
		t.Error("the 100 MB header is not named in the log")
	}
	rep.rss("oversized headers (100 MB announced)", s, fmt.Sprintf("closed on the header, slowest %v", worst.Round(10*time.Microsecond)))
}

// hostilePartial: a packet split over writes is served once complete; a
// packet left incomplete is closed at the keep-alive limit.
func hostilePartial(t *testing.T, p *hproc, rep *hreport) {
	c := hConnect(t, p.tcp, "", "partial", 1)
	pub := packets.AppendPublish(nil, "Login/Handler_Login/1", []byte(`{"userName":"split","passWord":"x"}`), 0, 0)
	for _, piece := range [][]byte{pub[:1], pub[1:7], pub[7:]} {
		if err := c.write(piece); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // the client's own pacing
	}
	got, err := c.waitPublish(func(*packets.Publish) bool { return true }, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if want := hreply("", `"login success split"`); string(got.Payload) != want {
		t.Fatalf("split request: %s, want %s", got.Payload, want)
	}
	// Half a packet, then silence: keep-alive 1 s allows 1.5 s.
	start := time.Now()
	if err := c.write(pub[:10]); err != nil {
		t.Fatal(err)
	}
	d, closed := hClosedWithin(c.nc, start, 5*time.Second)
	if !closed || d > 2500*time.Millisecond {
		t.Fatalf("half a packet then silence: closed=%v after %v, want about 1.5 s", closed, d)
	}
	rep.fact("half a packet then silence (keep-alive 1 s): closed after %v", d.Round(time.Millisecond))
}

// hostileFlood: thousands of requests to module types that do not exist,
// each first topic level new, some with 30 KB topics: each is answered
// (or dropped) without the gate keeping anything for it, memory stays
// flat, and the log gets a handful of short lines.
func hostileFlood(t *testing.T, p *hproc, rep *hreport) {
	const n = 4000
	c := hConnect(t, p.tcp, "", "flooder", 60)
	me := "remote=" + c.nc.LocalAddr().String()
	logBefore := len(p.log())
	s := p.sampleRSS(t)

	var got, bad atomic.Int64
	var firstBad atomic.Value
	done := make(chan error, 1)
	go func() {
		for got.Load() < n {
			pk, err := c.read(20 * time.Second)
			if err != nil {
				done <- err
				return
			}
			pub, ok := pk.(*packets.Publish)
			if !ok {
				continue
			}
			typ, _, _ := strings.Cut(pub.Topic, "/")
			want := hfail("Service(type:"+typ+") not found", "not_found")
			if len(typ) > 128 {
				want = hfail(fmt.Sprintf("Service(type:%s...(%d bytes)) not found", typ[:128], len(typ)), "not_found")
			}
			if string(pub.Payload) != want {
				bad.Add(1)
				firstBad.CompareAndSwap(nil, string(pub.Payload))
			}
			got.Add(1)
		}
		done <- nil
	}()
	long := strings.Repeat("L", 30<<10)
	var buf []byte
	sent, dropped := 0, 0
	for sent < n {
		// The client keeps fewer replies outstanding than MaxQueue, as a
		// client that reads does; what it sends is all attack.
		var readErr error
		if !hPoll(20*time.Second, func() bool {
			select {
			case readErr = <-done:
				return true
			default:
			}
			return int64(sent)-got.Load() <= 16
		}) {
			t.Fatalf("replies stalled: %d of %d sent answered", got.Load(), sent)
		}
		if readErr != nil {
			t.Fatalf("flooder after %d requests, %d replies: %v", sent, got.Load(), readErr)
		}
		buf = buf[:0]
		for i := 0; i < 32 && sent < n; i++ {
			typ := fmt.Sprintf("T%05d", sent)
			if sent%10 == 0 {
				typ += strings.Repeat("x", 300) // clipped in the reply
			}
			buf = packets.AppendPublish(buf, typ+"/Handler_X/"+fmt.Sprint(sent), []byte("{}"), 0, 0)
			sent++
			if sent%20 == 0 {
				buf = packets.AppendPublish(buf, fmt.Sprintf("N%05d%s/Handler_X/1", sent, long), []byte("{}"), 0, 0)
				dropped++
			}
		}
		if err := c.write(buf); err != nil {
			t.Fatalf("after %d requests: %v", sent, err)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("flooder after %d replies: %v", got.Load(), err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("only %d of %d replies", got.Load(), n)
	}
	if bad.Load() > 0 {
		t.Errorf("%d replies not the exact Service(type:X) not found; first: %.300s", bad.Load(), firstBad.Load())
	}
	// Nothing more comes: the 30 KB topics were dropped, not answered.
	if err := c.ping(); err != nil {
		t.Fatal(err)
	}
	if len(c.pending) != 0 {
		t.Errorf("%d unexpected PUBLISHes, first on %.100s", len(c.pending), c.pending[0].Topic)
	}
	s.finish(p, t)
	if grown := s.peak - s.base; grown > 40<<10 {
		t.Errorf("RSS grew %d KB during the flood, want < 40 MB (before the fix: 120-200 MB)", grown)
	}
	logged := p.log()[logBefore:]
	var mine []string
	longest := 0
	for _, l := range strings.Split(logged, "\n") {
		if strings.Contains(l, me) {
			mine = append(mine, l)
			longest = max(longest, len(l))
		}
	}
	if len(mine) == 0 || len(mine) > 8 {
		t.Errorf("%d log lines about the flooder, want 1..8 (rate-limited):\n%s", len(mine), strings.Join(mine, "\n"))
	}
	if longest > 600 {
		t.Errorf("a log line about the flooder is %d bytes, want client data clipped to ~128", longest)
	}
	rep.rss(fmt.Sprintf("flood: %d unknown module types + %d 30 KB topics", n, dropped), s,
		fmt.Sprintf("every request answered exactly; %d log lines about the flooder, longest %d bytes; %d bytes of log in all",
			len(mine), longest, len(logged)))
}

// hostileSpoofing: topics aimed at non-handler methods, session fields in
// payloads, wildcard subscriptions.
func hostileSpoofing(t *testing.T, p *hproc, rep *hreport) {
	m := hConnect(t, p.tcp, "", "mallory", 60)
	for i, fn := range []string{"Gate/Bind", "Gate/Push", "Gate/Close", "Chat/OnSessionClosed", "Login/GetUser"} {
		topic := fmt.Sprintf("%s/%d", fn, i+1)
		got, err := m.request(topic, `["s1","alice"]`)
		if err != nil {
			t.Fatal(err)
		}
		_, method, _ := strings.Cut(fn, "/")
		if want := hfail("Method("+method+") must begin with 'Handler_'", "bad_route"); got != want {
			t.Errorf("%s: %s, want %s", topic, got, want)
		}
	}
	// Session fields in a payload are just fields of the request.
	spoof := `"Sessionid":"Gate1#x.1","Userid":"alice","Serverid":"Gate1","Session":{"UserID":"alice"},"Settings":{"uid":"alice"}`
	if got, _ := m.request("Chat/Handler_JoinChat/10", `{"roomName":"vip",`+spoof+`}`); got != hfail("Not Logined", "error") {
		t.Errorf("join with spoofed session fields before login: %s", got)
	}
	alice := hConnect(t, p.tcp, "", "alice", 60)
	if got, _ := alice.request("Login/Handler_Login/1", `{"userName":"alice","passWord":"x"}`); got != hreply("", `"login success alice"`) {
		t.Fatalf("alice login: %s", got)
	}
	if got, _ := alice.request("Chat/Handler_JoinChat/2", `{"roomName":"vip"}`); got != hreply("", `"join success"`) {
		t.Fatalf("alice join: %s", got)
	}
	if got, _ := m.request("Login/Handler_Login/11", `{"userName":"mallory","passWord":"x",`+spoof+`}`); got != hreply("", `"login success mallory"`) {
		t.Fatalf("mallory login: %s", got)
	}
	if got, _ := m.request("Chat/Handler_JoinChat/12", `{"roomName":"vip",`+spoof+`}`); got != hreply("", `"join success"`) {
		t.Fatalf("mallory join: %s", got)
	}
	if got, _ := m.request("Chat/Handler_Say/13", `{"roomName":"vip","say":"i am alice",`+spoof+`}`); got != hreply("", `"say success"`) {
		t.Fatalf("mallory say: %s", got)
	}
	heard, err := alice.waitPublish(func(p *packets.Publish) bool { return p.Topic == "Chat/OnSay" }, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"roomName":"vip","say":"i am alice","userName":"mallory"}`; string(heard.Payload) != want {
		t.Errorf("alice heard %s, want %s: session fields in the payload changed who mallory is", heard.Payload, want)
	}

	// Wildcard subscriptions are granted and receive nothing of others.
	sniff := hConnect(t, p.tcp, "", "sniffer", 60)
	filters := []string{"#", "+/+", "+/+/+", "Chat/#", "$SYS/#", "Chat/OnSay"}
	sub := &packets.Subscribe{PacketID: 7}
	for _, f := range filters {
		sub.Topics = append(sub.Topics, packets.Subscription{Filter: f, QoS: 1})
	}
	if err := sniff.write(sub.AppendTo(nil)); err != nil {
		t.Fatal(err)
	}
	pk, err := sniff.read(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ack, ok := pk.(*packets.Suback); !ok || ack.PacketID != 7 || string(ack.ReturnCodes) != string(make([]byte, len(filters))) {
		t.Fatalf("SUBACK: %#v, want id 7 granting QoS 0 to each of %d filters", pk, len(filters))
	}
	if got, _ := alice.request("Chat/Handler_Say/3", `{"roomName":"vip","say":"secret"}`); got != hreply("", `"say success"`) {
		t.Fatalf("alice say: %s", got)
	}
	if _, err := m.waitPublish(func(p *packets.Publish) bool { return strings.Contains(string(p.Payload), "secret") }, 5*time.Second); err != nil {
		t.Fatalf("mallory, a member, did not hear alice: %v", err)
	}
	if err := sniff.ping(); err != nil {
		t.Fatal(err)
	}
	if len(sniff.pending) != 0 {
		t.Errorf("the wildcard subscriber received %s", sniff.pending[0].Payload)
	}
	rep.fact("spoofing: non-Handler_ methods refused with the exact error; session fields in payloads ignored; %d wildcard filters granted QoS 0 and received nothing", len(filters))
}

// hostileJSONBombs: payloads built to cost the parser: each is answered,
// the server stays up and small.
func hostileJSONBombs(t *testing.T, p *hproc, rep *hreport) {
	c := hConnect(t, p.tcp, "", "bomber", 60)
	s := p.sampleRSS(t)
	bigNum := "1" + strings.Repeat("0", 60000)
	for i, tc := range []struct {
		name, payload string
		want          func(string) bool
	}{
		{"nested arrays 60 KB", strings.Repeat("[", 30000) + strings.Repeat("]", 30000),
			func(s string) bool { return s == hfail("body must be JSON format", "bad_json") }},
		{"nested objects 60 KB (depth 10000, json.Valid's limit)", strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000),
			func(s string) bool { return s == hfail("userName or passWord cannot be nil", "error") }},
		{"nested objects depth 10001", strings.Repeat(`{"a":`, 10001) + "1" + strings.Repeat("}", 10001),
			func(s string) bool { return s == hfail("body must be JSON format", "bad_json") }},
		{"unclosed nesting", strings.Repeat("[", 60000),
			func(s string) bool { return s == hfail("body must be JSON format", "bad_json") }},
		{"huge number as a string field", `{"userName":` + bigNum + `,"passWord":"x"}`,
			func(s string) bool { return strings.HasPrefix(s, `{"Error":"`) && !strings.HasPrefix(s, `{"Error":""`) }},
		{"huge number", bigNum, func(s string) bool { return strings.HasPrefix(s, `{"Error":"`) && !strings.HasPrefix(s, `{"Error":""`) }},
		{"exponent 1e999999999", `{"userName":"n","passWord":"x","n":1e999999999}`,
			func(s string) bool {
				return strings.HasPrefix(s, `{"Error":"body must be JSON format`) && len(s) < 1024
			}},
		{"long string 60 KB", `{"userName":"` + strings.Repeat("u", 60000) + `","passWord":"x"}`,
			func(s string) bool { return s == hreply("", `"login success `+strings.Repeat("u", 60000)+`"`) }},
		{"many keys", `{` + strings.Repeat(`"k":1,`, 9000) + `"userName":"k","passWord":"x"}`,
			func(s string) bool { return s == hreply("", `"login success k"`) }},
	} {
		got, err := c.request(fmt.Sprintf("Login/Handler_Login/%d", i+1), tc.payload)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !tc.want(got) {
			t.Errorf("%s: reply %.200s", tc.name, got)
		}
		t.Logf("%s: %.120s", tc.name, got)
	}
	s.finish(p, t)
	if grown := s.peak - s.base; grown > 32<<10 {
		t.Errorf("RSS grew %d KB on JSON bombs", grown)
	}
	rep.rss("JSON bombs (8 kinds, ~60 KB each)", s, "each answered: nesting refused as not JSON, the others handled")
}

// hostileNonReading: a room member that never reads is disconnected when
// its outgoing queue is full; the speaker and the bystander are not.
func hostileNonReading(t *testing.T, p *hproc, rep *hreport) {
	victim := hConnect(t, p.tcp, "", "sleeper", 60)
	speaker := hConnect(t, p.tcp, "", "speaker", 60)
	for _, c := range []struct {
		c    *hclient
		user string
	}{{victim, "sleeper"}, {speaker, "speaker"}} {
		if got, _ := c.c.request("Login/Handler_Login/1", `{"userName":"`+c.user+`","passWord":"x"}`); got != hreply("", `"login success `+c.user+`"`) {
			t.Fatalf("login %s: %s", c.user, got)
		}
		if got, _ := c.c.request("Chat/Handler_JoinChat/2", `{"roomName":"loud"}`); got != hreply("", `"join success"`) {
			t.Fatalf("join %s: %s", c.user, got)
		}
	}
	s := p.sampleRSS(t)
	// The speaker reads its own copy of every OnSay and keeps at most 16
	// outstanding; the victim reads nothing.
	var heard atomic.Int64
	speakerErr := make(chan error, 1)
	go func() {
		for {
			pk, err := speaker.read(20 * time.Second)
			if err != nil {
				speakerErr <- err
				return
			}
			if pub, ok := pk.(*packets.Publish); ok && pub.Topic == "Chat/OnSay" {
				heard.Add(1)
			}
		}
	}()
	const says = 700
	say := packets.AppendPublish(nil, "Chat/Handler_Say", []byte(`{"roomName":"loud","say":"`+strings.Repeat("z", 30<<10)+`"}`), 0, 0)
	start := time.Now()
	for i := 0; i < says; i++ {
		if !hPoll(20*time.Second, func() bool { return int64(i)-heard.Load() < 16 }) {
			t.Fatalf("speaker heard %d of %d", heard.Load(), i)
		}
		select {
		case err := <-speakerErr:
			t.Fatalf("speaker after %d says: %v", i, err)
		default:
		}
		if err := speaker.write(say); err != nil {
			t.Fatalf("speaker write %d: %v", i, err)
		}
	}
	sendTime := time.Since(start)
	// Now the victim reads: what the kernel buffered, then the close.
	n := 0
	for {
		pk, err := victim.read(10 * time.Second)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the non-reading client was not disconnected (read %d pushes)", n)
			}
			break
		}
		if _, ok := pk.(*packets.Publish); ok {
			n++
		}
	}
	if n >= says {
		t.Fatalf("the non-reading client got all %d pushes", n)
	}
	// The speaker, reading, is still served.
	if err := speaker.write(say); err != nil {
		t.Fatal(err)
	}
	if !hPoll(10*time.Second, func() bool { return heard.Load() == says+1 }) {
		t.Fatalf("speaker heard %d of %d", heard.Load(), says+1)
	}
	s.finish(p, t)
	if grown := s.peak - s.base; grown > 64<<10 {
		t.Errorf("RSS grew %d KB while a client did not read", grown)
	}
	rep.rss(fmt.Sprintf("non-reading room member, %d pushes of 30 KB", says), s,
		fmt.Sprintf("disconnected after %d pushes (kernel buffers + MaxQueue %d); speaker served, %v to send", n, hMaxQueue, sendTime.Round(time.Millisecond)))
}

// hostileWebSocketPort: HTTP without Upgrade, silent sockets, origins.
func hostileWebSocketPort(t *testing.T, p *hproc, rep *hreport) {
	nc, err := hDialFrom(p.ws, "")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	start := time.Now()
	fmt.Fprintf(nc, "GET /mqtt HTTP/1.1\r\nHost: game.example\r\n\r\n")
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("HTTP without Upgrade: %s, want 400", resp.Status)
	}
	d, closed := hClosedWithin(nc, start, 5*time.Second)
	if !closed || d > hConnectTimeout+time.Second {
		t.Fatalf("after the 400 the socket: closed=%v after %v, want within ConnectTimeout %v", closed, d, hConnectTimeout)
	}
	rep.fact("HTTP without Upgrade on the WebSocket port: 400, socket closed %v after connecting", d.Round(time.Millisecond))

	silent, err := hDialFrom(p.ws, "")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	d2, closed := hClosedWithin(silent, time.Now(), 5*time.Second)
	if !closed || d2 > hConnectTimeout+time.Second {
		t.Fatalf("silent socket on the WebSocket port: closed=%v after %v", closed, d2)
	}
	rep.fact("silent socket on the WebSocket port: closed after %v", d2.Round(time.Millisecond))

	dl := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Subprotocols: []string{"mqtt"}}
	_, resp, err = dl.Dial("ws://"+p.ws+"/mqtt", http.Header{"Origin": {"http://evil.example"}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("Origin http://evil.example: err %v, status %d, want 403", err, status)
	}
	for _, h := range []http.Header{{"Origin": {"http://game.example"}}, nil} {
		c := hWSDial(t, p.ws, h)
		if err := c.connect("", 60); err != nil {
			t.Fatalf("origin %v: %v", h, err)
		}
		if got, _ := c.request("Login/Handler_Login/1", `{"userName":"web","passWord":"x"}`); got != hreply("", `"login success web"`) {
			t.Fatalf("origin %v: %s", h, got)
		}
	}
	rep.fact("WSOrigins: Origin http://evil.example refused 403; http://game.example and no Origin served")
}

// hostileIdleThousands: thousands of connected, silent clients cost a
// bounded amount each and all go away cleanly.
func hostileIdleThousands(t *testing.T, p *hproc, rep *hreport) {
	const n = 3000
	fdBase := p.fds(t)
	s := p.sampleRSS(t)
	conns := make([]net.Conn, n)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	next := atomic.Int64{}
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				from := fmt.Sprintf("127.0.0.%d", 2+i%4)
				nc, err := hDialFrom(p.tcp, from)
				if err == nil {
					c := newHClient(nc)
					conns[i] = nc
					err = c.connect(fmt.Sprintf("idle-%d", i), 60)
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("client %d from %s: %w", i, from, err)
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	defer func() {
		for _, nc := range conns {
			if nc != nil {
				nc.Close()
			}
		}
	}()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	connectTime := time.Since(start)
	// Every client has its CONNACK, so the server holds them all; a few
	// sockets of earlier cases may still have been closing at the baseline.
	if !hPoll(10*time.Second, func() bool { return p.fds(t) >= fdBase+n-5 }) {
		t.Fatalf("server holds %d descriptors, want about %d", p.fds(t), fdBase+n)
	}
	held := p.rssKB(t)
	perConn := float64(held-s.base) / n
	for _, nc := range conns {
		nc.Close()
	}
	closeStart := time.Now()
	if !hPoll(15*time.Second, func() bool { return p.fds(t) <= fdBase }) {
		t.Fatalf("server still holds %d descriptors, baseline %d", p.fds(t), fdBase)
	}
	closeTime := time.Since(closeStart)
	s.finish(p, t)
	if perConn > 32 {
		t.Errorf("%.1f KB of RSS per idle connection, want < 32", perConn)
	}
	rep.rss(fmt.Sprintf("%d idle MQTT connections", n), s,
		fmt.Sprintf("%.1f KB per connection; connected in %v; all closed, descriptors back to baseline in %v",
			perConn, connectTime.Round(time.Millisecond), closeTime.Round(time.Millisecond)))
	rep.fact("idle connections: %d from 127.0.0.2-5, %.1f KB RSS each, descriptors back to baseline %v after closing", n, perConn, closeTime.Round(time.Millisecond))
}
