package gate_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/demo/demotest"
	"github.com/mqantgen/mqantgen/gate/packets"
	"github.com/mqantgen/mqantgen/internal/testkit/leakcheck"
	"github.com/mqantgen/mqantgen/internal/testkit/mqtttest"
)

// healthy shows the gate still serves other clients.
func healthy(t *testing.T, d *demotest.Demo) {
	t.Helper()
	c := mqtttest.Connect(t, d.TCPAddr, "healthy-"+t.Name(), 30)
	if got := c.Request("Login/Handler_Login/1", `{"userName":"h","passWord":"x"}`); got != `{"Error":"","Result":"login success h"}` {
		t.Fatalf("gate unhealthy: %s", got)
	}
}

func TestRoutingErrors(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, nil)
	c := mqtttest.Connect(t, d.TCPAddr, "routing", 30)
	for _, tc := range []struct{ topic, body, want string }{
		{"Chat/Handler_Say/1", `not json`, `{"Error":"body must be JSON format","Code":"bad_json","Result":null}`},
		{"Chat/Handler_Say/2", `{"roomName":`, `{"Error":"body must be JSON format","Code":"bad_json","Result":null}`},
		{"Nope/Handler_X/3", `{}`, `{"Error":"Service(type:Nope) not found","Code":"not_found","Result":null}`},
		{"Chat/Handler_Nope/4", `{}`, `{"Error":"Remote function(Handler_Nope) not found","Code":"not_found","Result":null}`},
		{"Chat/OnSessionClosed/5", `{}`, `{"Error":"Method(OnSessionClosed) must begin with 'Handler_'","Code":"bad_route","Result":null}`},
		{"Gate/Bind/6", `["x","y"]`, `{"Error":"Method(Bind) must begin with 'Handler_'","Code":"bad_route","Result":null}`},
		{"Chat/Handler_Say/7", `{"roomName":"r","say":"x"}`, `{"Error":"Not Logined","Code":"error","Result":null}`},
	} {
		if got := c.Request(tc.topic, tc.body); got != tc.want {
			t.Errorf("%s %s:\n got %s\nwant %s", tc.topic, tc.body, got, tc.want)
		}
	}
	// Other than 2 or 3 levels: dropped and logged, the connection lives on.
	c.Send(&packets.Publish{Topic: "Chat", Payload: []byte(`{}`)})
	c.Send(&packets.Publish{Topic: "Chat/Handler_Say/1/extra", Payload: []byte(`{}`)})
	d.Logs.WaitFor(t, `topic=Chat/Handler_Say/1/extra`, 5*time.Second)
	d.Logs.WaitFor(t, `msg="dropping message: topic must be Module/Handler_X[/msgid]"`, 5*time.Second)
	// No msgid: no reply, but the call is made.
	c.Send(&packets.Publish{Topic: "Login/Handler_Login", Payload: []byte(`{"userName":"nr","passWord":"x"}`)})
	poll(t, "no-reply login handled", func() bool {
		s, err := d.Gate.Lookup(t.Context(), "nr")
		return err == nil && s != nil
	})
	if got := c.Request("Chat/Handler_JoinChat/9", `{"roomName":"r"}`); got != `{"Error":"","Result":"join success"}` {
		t.Errorf("after a no-reply login, join: %s", got)
	}
	// The room's OnJoin push may arrive before or after the reply.
	if p := c.WaitPublish("Chat/OnJoin", 5*time.Second); string(p.Payload) != `{"roomName":"r","userName":"nr"}` {
		t.Errorf("OnJoin: %s", p.Payload)
	}
	if len(c.Pending()) != 0 {
		t.Errorf("unexpected extra messages: %v", c.Pending())
	}
}

func TestMalformedPacketClosesOnlyThatConnection(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, nil)
	other := mqtttest.Connect(t, d.TCPAddr, "bystander", 30)
	for _, tc := range []struct {
		name string
		raw  []byte
		log  string
	}{
		{"reserved type 0", []byte{0x00, 0x00}, "bad packet"},
		{"PUBLISH QoS 3", []byte{0x36, 0x05, 0x00, 0x01, 'a', 0x00, 0x01}, "bad packet"},
		{"PUBREL without flags", []byte{0x60, 0x02, 0x00, 0x01}, "bad packet"},
		{"varint over 4 bytes", []byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}, "bad packet"},
		{"second CONNECT", (&packets.Connect{ProtocolName: "MQTT", ProtocolLevel: 4, CleanSession: true, ClientID: "again"}).AppendTo(nil), "unexpected packet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mqtttest.Connect(t, d.TCPAddr, "bad-"+strings.ReplaceAll(tc.name, " ", "-"), 30)
			c.Write(tc.raw)
			if !c.WaitClosed(5 * time.Second) {
				t.Fatal("connection not closed")
			}
			d.Logs.WaitFor(t, tc.log, 5*time.Second)
		})
	}
	// The bystander is unaffected.
	if got := other.Request("Login/Handler_Login/1", `{"userName":"b","passWord":"x"}`); !strings.Contains(got, "login success b") {
		t.Fatalf("bystander: %s", got)
	}
	if s := d.Gate.Stats(); s.Malformed < 5 {
		t.Errorf("malformed counter = %d, want >= 5", s.Malformed)
	}
}

func TestOversizedRefusedBeforeAllocation(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, map[string]any{"MaxMsgLen": 1024})
	// After CONNECT: a PUBLISH header announcing 100 MB. Only the header is
	// sent; the gate must refuse on the header alone, not wait for the body.
	c := mqtttest.Connect(t, d.TCPAddr, "big", 30)
	c.Write([]byte{0x30, 0x80, 0xAD, 0xE2, 0x04}) // remaining length 10,000,000
	if !c.WaitClosed(5 * time.Second) {
		t.Fatal("oversized packet not refused on its header")
	}
	d.Logs.WaitFor(t, "remaining length 10000000, limit 1024", 5*time.Second)
	// Just over the limit with a real body is refused too.
	c2 := mqtttest.Connect(t, d.TCPAddr, "big2", 30)
	c2.Send(&packets.Publish{Topic: "Chat/Handler_Say/1", Payload: []byte(`"` + strings.Repeat("x", 1100) + `"`)})
	if !c2.WaitClosed(5 * time.Second) {
		t.Fatal("packet over MaxMsgLen not refused")
	}
	// Before CONNECT the cap is smaller still.
	c3 := mqtttest.Dial(t, d.TCPAddr)
	c3.Write([]byte{0x10, 0xff, 0xff, 0x03}) // CONNECT claiming 65535+ bytes
	if !c3.WaitClosed(5 * time.Second) {
		t.Fatal("oversized CONNECT not refused")
	}
	healthy(t, d)
}

func TestConnectHandshakeErrors(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, map[string]any{"ConnectTimeoutMs": 300})
	// First packet not CONNECT.
	c := mqtttest.Dial(t, d.TCPAddr)
	c.Send(&packets.Pingreq{})
	if !c.WaitClosed(5 * time.Second) {
		t.Fatal("PINGREQ before CONNECT not refused")
	}
	// Unknown protocol level: CONNACK 1, then closed.
	c = mqtttest.Dial(t, d.TCPAddr)
	c.Write([]byte{0x10, 0x0c, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x09, 0x02, 0x00, 0x1e, 0x00, 0x00})
	if p := c.Next(5 * time.Second); p.(*packets.Connack).ReturnCode != packets.UnacceptableProtocolVersion {
		t.Fatalf("got %#v", p)
	}
	// Empty client id with clean session 0: CONNACK 2.
	c = mqtttest.Dial(t, d.TCPAddr)
	c.Send(&packets.Connect{ProtocolName: "MQTT", ProtocolLevel: 4, CleanSession: false})
	if p := c.Next(5 * time.Second); p.(*packets.Connack).ReturnCode != packets.IdentifierRejected {
		t.Fatalf("got %#v", p)
	}
	// Silent after connecting the socket: closed after the connect timeout.
	c = mqtttest.Dial(t, d.TCPAddr)
	if !c.WaitClosed(5 * time.Second) {
		t.Fatal("silent socket not closed")
	}
	// MQTT 3.1 with a long client id and an empty id with clean session both work.
	c = mqtttest.Dial(t, d.TCPAddr)
	c.Send(&packets.Connect{ProtocolName: "MQIsdp", ProtocolLevel: 3, CleanSession: true, KeepAlive: 30, ClientID: strings.Repeat("long", 20)})
	if p := c.Next(5 * time.Second); p.(*packets.Connack).ReturnCode != packets.Accepted {
		t.Fatalf("3.1 long id: %#v", p)
	}
	c = mqtttest.Dial(t, d.TCPAddr)
	c.Send(&packets.Connect{ProtocolName: "MQTT", ProtocolLevel: 4, CleanSession: true, KeepAlive: 30})
	if p := c.Next(5 * time.Second); p.(*packets.Connack).ReturnCode != packets.Accepted {
		t.Fatalf("empty id: %#v", p)
	}
	healthy(t, d)
}

func TestClientThatNeverReadsIsDisconnected(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, map[string]any{"MaxQueue": 16})
	lazy := mqtttest.Connect(t, d.TCPAddr, "lazy", 0)
	_ = lazy.Conn.(*net.TCPConn).SetReadBuffer(4096)
	lazy.Request("Login/Handler_Login/1", `{"userName":"lazy","passWord":"x"}`)
	lazy.Request("Chat/Handler_JoinChat/2", `{"roomName":"flood"}`)
	// From now on lazy never reads.
	talker := newPaho(t, "tcp://"+d.TCPAddr, "talker")
	loginJoin(talker, "talker", "flood")
	big := strings.Repeat("z", 30000)
	poll(t, "lazy disconnected", func() bool {
		talker.Publish("Chat/Handler_Say", 0, `{"roomName":"flood","say":"`+big+`"}`)
		return d.Gate.Stats().SlowClosed > 0
	})
	d.Logs.WaitFor(t, "outgoing queue full, client not reading", 5*time.Second)
	// The talker and the server carry on.
	if got := talker.Must("Chat/Handler_Say", `{"roomName":"flood","say":"still here"}`); got != `"say success"` {
		t.Fatalf("talker: %s", got)
	}
	healthy(t, d)
}

func TestKeepAlive(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, nil)
	// A client that pings every 400ms with keep-alive 1s stays connected.
	pinger := mqtttest.Connect(t, d.TCPAddr, "pinger", 1)
	// A silent one with keep-alive 1s is closed after 1.5s.
	silent := mqtttest.Connect(t, d.TCPAddr, "silent", 1)
	start := time.Now()
	closed := make(chan time.Duration, 1)
	go func() {
		if silent.WaitClosed(5 * time.Second) {
			closed <- time.Since(start)
		}
		close(closed)
	}()
	for i := 0; i < 6; i++ {
		pinger.Send(&packets.Pingreq{})
		p := pinger.Next(2 * time.Second)
		if r, ok := p.(*packets.Pingresp); !ok || r == nil {
			t.Fatalf("ping %d: got %#v", i, p)
		}
		time.Sleep(400 * time.Millisecond) // the client's ping interval, not synchronisation
	}
	took, ok := <-closed
	if !ok {
		t.Fatal("silent client never closed")
	}
	if took < 1400*time.Millisecond || took > 3*time.Second {
		t.Errorf("silent client closed after %v, want about 1.5s", took)
	}
	d.Logs.WaitFor(t, "keep-alive expired", 5*time.Second)
	if d.Gate.Stats().KeepAliveLost < 1 {
		t.Error("keep-alive counter not incremented")
	}
}

func TestSlowHandlerNeverStallsTheConnection(t *testing.T) {
	leakcheck.Check(t)
	slow := newSlow()
	d := demotest.Start(t, map[string]any{"MaxInflight": 4}, slowExtra(slow))
	c := mqtttest.Connect(t, d.TCPAddr, "slowpoke", 30)
	for _, id := range []string{"1", "2", "3"} {
		c.Send(&packets.Publish{Topic: "Slow/Handler_Wait/" + id, Payload: []byte(id)})
	}
	if got := <-slow.order; got != "1" {
		t.Fatalf("first call ran %s", got)
	}
	// While Wait/1 blocks: pings are answered, and calls to other modules run.
	c.Send(&packets.Pingreq{})
	if _, ok := c.WaitAny(5 * time.Second).(*packets.Pingresp); !ok {
		t.Fatal("no PINGRESP while a handler was slow")
	}
	if got := c.Request("Login/Handler_Login/4", `{"userName":"s","passWord":"x"}`); !strings.Contains(got, "login success") {
		t.Fatalf("login while Slow busy: %s", got)
	}
	// Over the in-flight limit (4: three Slow calls + this one are queued) the
	// gate answers with an error instead of queueing.
	c.Send(&packets.Publish{Topic: "Slow/Handler_Wait/5", Payload: []byte("5")})
	c.Send(&packets.Publish{Topic: "Slow/Handler_Wait/6", Payload: []byte("6")})
	if got := string(c.WaitPublish("Slow/Handler_Wait/6", 5*time.Second).Payload); got != `{"Error":"too many requests in flight","Code":"rate_limited","Result":null}` {
		t.Fatalf("over the limit: %s", got)
	}
	close(slow.release)
	// Replies come in request order; one connection's calls to one module ran one at a time.
	for _, id := range []string{"1", "2", "3", "5"} {
		p := c.WaitPublish("Slow/Handler_Wait/", 5*time.Second)
		if p.Topic != "Slow/Handler_Wait/"+id || string(p.Payload) != `{"Error":"","Result":"waited `+id+`"}` {
			t.Fatalf("want reply %s, got %s %s", id, p.Topic, p.Payload)
		}
	}
	if m := slow.maxRunning.Load(); m != 1 {
		t.Errorf("%d calls of one connection ran at once, want 1", m)
	}
}

func TestClientIDTakeover(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, nil)
	old := mqtttest.Connect(t, d.TCPAddr, "same-id", 30)
	mqtttest.Connect(t, d.TCPAddr, "same-id", 30)
	if !old.WaitClosed(5 * time.Second) {
		t.Fatal("older connection with the same client id not closed [MQTT-3.1.4-2]")
	}
}

func TestQoS2RetransmissionHandledOnce(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, nil)
	c := mqtttest.Connect(t, d.TCPAddr, "q2", 30)
	c.Request("Login/Handler_Login/1", `{"userName":"q2","passWord":"x"}`)
	c.Request("Chat/Handler_JoinChat/2", `{"roomName":"r"}`)
	pub := &packets.Publish{QoS: 2, PacketID: 7, Topic: "Chat/Handler_Say", Payload: []byte(`{"roomName":"r","say":"once"}`)}
	c.Send(pub)
	if r, ok := c.WaitAny(5 * time.Second).(*packets.Pubrec); !ok || r.PacketID != 7 {
		t.Fatalf("want PUBREC 7, got %#v", r)
	}
	pub.Dup = true
	c.Send(pub) // the client did not see PUBREC in time and sends again
	if r, ok := c.WaitAny(5 * time.Second).(*packets.Pubrec); !ok || r.PacketID != 7 {
		t.Fatalf("want PUBREC 7 again, got %#v", r)
	}
	c.Send(&packets.Pubrel{PacketID: 7})
	if r, ok := c.WaitAny(5 * time.Second).(*packets.Pubcomp); !ok || r.PacketID != 7 {
		t.Fatalf("want PUBCOMP 7, got %#v", r)
	}
	c.Request("Chat/Handler_Say/3", `{"roomName":"r","say":"marker"}`)
	c.WaitPublish("Chat/OnSay", 5*time.Second) // the first OnSay
	second := c.WaitPublish("Chat/OnSay", 5*time.Second)
	if !strings.Contains(string(second.Payload), "marker") {
		t.Fatalf("the QoS 2 say was handled twice: %s", second.Payload)
	}
}

// TestTopicLength: a topic past MaxTopicLen is dropped and logged with its
// length, the connection lives on; a long topic within it (too long to
// share the request's buffer with its body) is routed like a short one.
func TestTopicLength(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, map[string]any{"MaxTopicLen": 64})
	c := mqtttest.Connect(t, d.TCPAddr, "topics", 30)
	long := "Login/Handler_Login/" + strings.Repeat("9", 70)
	c.Send(&packets.Publish{Topic: long, Payload: []byte(`{"userName":"a","passWord":"x"}`)})
	d.Logs.WaitFor(t, `msg="dropping message: topic too long"`, 5*time.Second)
	d.Logs.WaitFor(t, `len=90 limit=64`, 5*time.Second)
	within := "Login/Handler_Login/" + strings.Repeat("7", 40)
	body := `{"userName":"` + strings.Repeat("u", 60) + `","passWord":"x"}`
	if got, want := c.Request(within, body), `{"Error":"","Result":"login success `+strings.Repeat("u", 60)+`"}`; got != want {
		t.Errorf("a 60-byte topic with an 80-byte body: %s, want %s", got, want)
	}
	if got := d.Gate.Stats().Dropped; got != 1 {
		t.Errorf("Dropped = %d, want 1", got)
	}
	healthy(t, d)
}
