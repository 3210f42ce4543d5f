package gate_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/demo/demotest"
	"github.com/mqantgen/mqantgen/gate/packets"
	"github.com/mqantgen/mqantgen/internal/testkit/leakcheck"
	"github.com/mqantgen/mqantgen/internal/testkit/mqtttest"
)

// rawPersistent connects a raw client with clean session 0 and returns it
// with the CONNACK's session-present flag.
func rawPersistent(t *testing.T, addr, clientID string) (*mqtttest.Client, bool) {
	t.Helper()
	c := mqtttest.Dial(t, addr)
	c.Send(&packets.Connect{ProtocolName: "MQTT", ProtocolLevel: 4, KeepAlive: 30, ClientID: clientID,
		Username: "u", Password: []byte("p"), UsernameFlag: true, PasswordFlag: true})
	ack, ok := c.Next(5 * time.Second).(*packets.Connack)
	if !ok || ack.ReturnCode != packets.Accepted {
		t.Fatalf("CONNECT %s: %#v", clientID, ack)
	}
	return c, ack.SessionPresent
}

// nextPacket reads the next packet, PUBLISH or not.
func nextPacket(t *testing.T, c *mqtttest.Client) packets.Packet {
	t.Helper()
	if p := c.Pending(); len(p) > 0 {
		t.Fatalf("unclaimed PUBLISHes: %v", p)
	}
	return c.Next(5 * time.Second)
}

// TestPersistentQoS1Redelivery, on the wire: a push to a persistent
// session is a QoS 1 PUBLISH with a packet id; unacknowledged, it comes
// again with DUP after a reconnect, same id and payload; acknowledged, it
// never comes again.
func TestPersistentQoS1Redelivery(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, nil)
	bob := newPaho(t, "tcp://"+d.TCPAddr, "bob-client")
	raw, present := rawPersistent(t, d.TCPAddr, "raw-1")
	if present {
		t.Fatal("new session: session present")
	}
	raw.Request("Login/Handler_Login/1", `{"userName":"raw","passWord":"x"}`)
	raw.Request("Chat/Handler_JoinChat/2", `{"roomName":"room"}`)
	own := raw.WaitPublish("Chat/OnJoin", 5*time.Second)
	if own.QoS != 1 || own.PacketID == 0 || own.Dup {
		t.Fatalf("push to a persistent session: QoS %d id %d dup %v, want QoS 1 with an id, no DUP", own.QoS, own.PacketID, own.Dup)
	}
	raw.Send(&packets.Puback{PacketID: own.PacketID})
	loginJoin(bob, "bob", "room")
	bobJoin := raw.WaitPublish("Chat/OnJoin", 5*time.Second)
	raw.Send(&packets.Puback{PacketID: bobJoin.PacketID})
	bob.Must("Chat/Handler_Say", `{"roomName":"room","say":"ack me"}`)
	say := raw.WaitPublish("Chat/OnSay", 5*time.Second)
	if say.QoS != 1 || say.Dup {
		t.Fatalf("say: QoS %d dup %v", say.QoS, say.Dup)
	}
	raw.Conn.Close() // no PUBACK, no DISCONNECT
	poll(t, "raw away", func() bool { return d.Gate.Stats().SessionsAway == 1 })

	raw2, present := rawPersistent(t, d.TCPAddr, "raw-1")
	if !present {
		t.Fatal("resume: session present 0")
	}
	again, ok := nextPacket(t, raw2).(*packets.Publish)
	if !ok || !again.Dup || again.QoS != 1 || again.PacketID != say.PacketID || string(again.Payload) != string(say.Payload) {
		t.Fatalf("resent: %#v, want the say again with DUP, id %d", again, say.PacketID)
	}
	raw2.Send(&packets.Puback{PacketID: again.PacketID})
	// Pushes queued at the resume are written before anything the client
	// asks for: a PINGRESP next means nothing else was resent.
	raw2.Send(&packets.Pingreq{})
	if p := nextPacket(t, raw2); p.Type() != packets.TypePingresp {
		t.Fatalf("after the PUBACK: %#v, want PINGRESP (the acknowledged joins resent?)", p)
	}
	raw2.Conn.Close()
	poll(t, "raw away again", func() bool { return d.Gate.Stats().SessionsAway == 1 })
	raw3, present := rawPersistent(t, d.TCPAddr, "raw-1")
	if !present {
		t.Fatal("second resume: session present 0")
	}
	raw3.Send(&packets.Pingreq{})
	if p := nextPacket(t, raw3); p.Type() != packets.TypePingresp {
		t.Fatalf("after everything was acknowledged: %#v, want PINGRESP", p)
	}
}

// TestPersistentInflightWindow: at most SessionInflight pushes await their
// PUBACK; each PUBACK lets the next one out.
func TestPersistentInflightWindow(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, map[string]any{"SessionInflight": 2})
	bob := newPaho(t, "tcp://"+d.TCPAddr, "bob-client")
	raw, _ := rawPersistent(t, d.TCPAddr, "raw-w")
	raw.Request("Login/Handler_Login/1", `{"userName":"raw","passWord":"x"}`)
	raw.Request("Chat/Handler_JoinChat/2", `{"roomName":"room"}`)
	raw.Send(&packets.Puback{PacketID: raw.WaitPublish("Chat/OnJoin", 5*time.Second).PacketID})
	loginJoin(bob, "bob", "room")
	raw.Send(&packets.Puback{PacketID: raw.WaitPublish("Chat/OnJoin", 5*time.Second).PacketID})
	for i := range 4 {
		bob.Must("Chat/Handler_Say", fmt.Sprintf(`{"roomName":"room","say":"w%d"}`, i))
	}
	bob.WaitOne(func(m msg) bool { return strings.Contains(m.Payload, `"w3"`) }, "bob's last say")
	first := raw.WaitPublish("Chat/OnSay", 5*time.Second)
	second := raw.WaitPublish("Chat/OnSay", 5*time.Second)
	raw.Send(&packets.Pingreq{})
	if p := nextPacket(t, raw); p.Type() != packets.TypePingresp {
		t.Fatalf("a third push with two unacknowledged: %#v", p)
	}
	raw.Send(&packets.Puback{PacketID: first.PacketID})
	third := raw.WaitPublish("Chat/OnSay", 5*time.Second)
	if !strings.Contains(string(second.Payload), `"w1"`) || !strings.Contains(string(third.Payload), `"w2"`) {
		t.Errorf("order: %s then %s", second.Payload, third.Payload)
	}
}

// TestPersistentQoS2AcrossReconnect: a QoS 2 request whose PUBREC was lost
// with the connection comes again with DUP on the next one; the session
// remembers its id, so it is handled once [MQTT-4.3.3].
func TestPersistentQoS2AcrossReconnect(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, nil)
	bob := newPaho(t, "tcp://"+d.TCPAddr, "bob-client")
	raw, _ := rawPersistent(t, d.TCPAddr, "raw-q2")
	raw.Request("Login/Handler_Login/1", `{"userName":"raw","passWord":"x"}`)
	raw.Request("Chat/Handler_JoinChat/2", `{"roomName":"room"}`)
	loginJoin(bob, "bob", "room")
	say := &packets.Publish{Topic: "Chat/Handler_Say/3", QoS: 2, PacketID: 77, Payload: []byte(`{"roomName":"room","say":"once"}`)}
	raw.Send(say)
	if p, ok := raw.WaitAny(5 * time.Second).(*packets.Pubrec); !ok || p.PacketID != 77 {
		t.Fatalf("got %#v, want PUBREC 77", p)
	}
	bob.WaitOne(func(m msg) bool { return strings.Contains(m.Payload, `"once"`) }, "bob hears the say")
	raw.Conn.Close() // as if the PUBREC never arrived
	poll(t, "raw away", func() bool { return d.Gate.Stats().SessionsAway == 1 })

	raw2, present := rawPersistent(t, d.TCPAddr, "raw-q2")
	if !present {
		t.Fatal("resume: session present 0")
	}
	say.Dup = true
	raw2.Send(say)
	if p, ok := raw2.WaitAny(5 * time.Second).(*packets.Pubrec); !ok || p.PacketID != 77 {
		t.Fatalf("got %#v, want PUBREC 77 again", p)
	}
	raw2.Send(&packets.Pubrel{PacketID: 77})
	if p, ok := raw2.WaitAny(5 * time.Second).(*packets.Pubcomp); !ok || p.PacketID != 77 {
		t.Fatalf("got %#v, want PUBCOMP 77", p)
	}
	bob.Must("Chat/Handler_Say", `{"roomName":"room","say":"after"}`)
	bob.WaitOne(func(m msg) bool { return strings.Contains(m.Payload, `"after"`) }, "bob's own say")
	if n := bob.Count("Chat/OnSay", `"once"`); n != 1 {
		t.Errorf("the QoS 2 say was handled %d times, want once", n)
	}
}
