package gate_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/mqantgen/mqantgen/demo/demotest"
	"github.com/mqantgen/mqantgen/gate/packets"
	"github.com/mqantgen/mqantgen/internal/testkit/leakcheck"
	"github.com/mqantgen/mqantgen/internal/testkit/mqtttest"
)

// connackOK reads the next packet and fails unless it is an accepting CONNACK.
func connackOK(t *testing.T, c *mqtttest.Client, what string) {
	t.Helper()
	p := c.Next(5 * time.Second)
	if ack, ok := p.(*packets.Connack); !ok || ack.ReturnCode != packets.Accepted {
		t.Fatalf("%s: want CONNACK accepted, got %#v", what, p)
	}
}

// TestWebSocketSubprotocols dials the WebSocket listener the way the
// original web client (Paho JS mqttws31.js) does: subprotocol mqttv3.1 and
// MQTT 3.1 (MQIsdp, level 3); and the way MQTT 3.1.1 clients do:
// subprotocol mqtt, on any path.
func TestWebSocketSubprotocols(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, nil)
	for _, tc := range []struct {
		name, path, subprotocol, protoName string
		level                              byte
	}{
		{"mqttws31.js", "/mqtt", "mqttv3.1", "MQIsdp", 3},
		{"3.1.1 any path", "/any/path", "mqtt", "MQTT", 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ws := mqtttest.DialWS(t, "ws://"+d.WSAddr+tc.path, tc.subprotocol)
			if got := ws.Subprotocol(); got != tc.subprotocol {
				t.Fatalf("negotiated subprotocol %q, want %q", got, tc.subprotocol)
			}
			c.Send(&packets.Connect{ProtocolName: tc.protoName, ProtocolLevel: tc.level, CleanSession: true,
				KeepAlive: 30, ClientID: "ws-" + tc.subprotocol})
			connackOK(t, c, tc.name)
			user := "u" + strings.ReplaceAll(tc.subprotocol, ".", "")
			if got := c.Request("Login/Handler_Login/1", `{"userName":"`+user+`","passWord":"x"}`); got != `{"Error":"","Result":"login success `+user+`"}` {
				t.Fatalf("login: %s", got)
			}
			s, err := d.Gate.Lookup(t.Context(), user)
			if err != nil || s == nil || s.Network != "ws" {
				t.Fatalf("session of %s: %+v, %v; want one on network ws", user, s, err)
			}
		})
	}
}

// TestWebSocketTextFrameClosesConnection: MQTT over WebSocket is binary
// frames only; a text frame closes that connection, and the log says why.
func TestWebSocketTextFrameClosesConnection(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, nil)
	c, ws := mqtttest.DialWS(t, "ws://"+d.WSAddr+"/mqtt", "mqtt")
	c.Send(&packets.Connect{ProtocolName: "MQTT", ProtocolLevel: 4, CleanSession: true, KeepAlive: 30, ClientID: "texter"})
	connackOK(t, c, "CONNECT")
	req := (&packets.Publish{Topic: "Login/Handler_Login/1", Payload: []byte(`{"userName":"t","passWord":"x"}`)}).AppendTo(nil)
	if err := ws.WriteMessage(websocket.TextMessage, req); err != nil {
		t.Fatal(err)
	}
	if !c.WaitClosed(5 * time.Second) {
		t.Fatal("connection not closed after a text frame")
	}
	d.Logs.WaitFor(t, `clientId=texter err="websocket: text frame; MQTT needs binary frames"`, 5*time.Second)
	if s, _ := d.Gate.Lookup(t.Context(), "t"); s != nil {
		t.Errorf("the text frame's request was handled: %+v", s)
	}
	healthy(t, d)
}

// TestWebSocketFraming: MQTT packets and WebSocket frames are independent;
// a packet may span frames and a frame may carry several packets.
func TestWebSocketFraming(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, nil)

	// A CONNECT split across two frames, in the middle of its client id.
	c, _ := mqtttest.DialWS(t, "ws://"+d.WSAddr+"/mqtt", "mqtt")
	connect := (&packets.Connect{ProtocolName: "MQTT", ProtocolLevel: 4, CleanSession: true, KeepAlive: 30, ClientID: "split-client"}).AppendTo(nil)
	c.Write(connect[:len(connect)-5])
	c.Write(connect[len(connect)-5:])
	connackOK(t, c, "split CONNECT")
	if got := c.Request("Login/Handler_Login/1", `{"userName":"split","passWord":"x"}`); got != `{"Error":"","Result":"login success split"}` {
		t.Fatalf("login after split CONNECT: %s", got)
	}
	// A PUBLISH split after its first byte (inside the fixed header).
	pub := (&packets.Publish{Topic: "Chat/Handler_JoinChat/2", Payload: []byte(`{"roomName":"frames"}`)}).AppendTo(nil)
	c.Write(pub[:1])
	c.Write(pub[1:])
	if got := string(c.WaitPublish("Chat/Handler_JoinChat/2", 5*time.Second).Payload); got != `{"Error":"","Result":"join success"}` {
		t.Fatalf("join from a split PUBLISH: %s", got)
	}

	// Two packets in one frame: CONNECT and a login request together, then
	// two requests together.
	c2, _ := mqtttest.DialWS(t, "ws://"+d.WSAddr+"/mqtt", "mqtt")
	both := (&packets.Connect{ProtocolName: "MQTT", ProtocolLevel: 4, CleanSession: true, KeepAlive: 30, ClientID: "packed-client"}).AppendTo(nil)
	both = (&packets.Publish{Topic: "Login/Handler_Login/1", Payload: []byte(`{"userName":"packed","passWord":"x"}`)}).AppendTo(both)
	c2.Write(both)
	connackOK(t, c2, "CONNECT packed with a PUBLISH")
	if got := string(c2.WaitPublish("Login/Handler_Login/1", 5*time.Second).Payload); got != `{"Error":"","Result":"login success packed"}` {
		t.Fatalf("login packed with CONNECT: %s", got)
	}
	two := (&packets.Publish{Topic: "Chat/Handler_JoinChat/2", Payload: []byte(`{"roomName":"frames"}`)}).AppendTo(nil)
	two = (&packets.Publish{Topic: "Chat/Handler_Say/3", Payload: []byte(`{"roomName":"frames","say":"packed"}`)}).AppendTo(two)
	c2.Write(two)
	if got := string(c2.WaitPublish("Chat/Handler_JoinChat/2", 5*time.Second).Payload); got != `{"Error":"","Result":"join success"}` {
		t.Fatalf("join: %s", got)
	}
	if got := string(c2.WaitPublish("Chat/Handler_Say/3", 5*time.Second).Payload); got != `{"Error":"","Result":"say success"}` {
		t.Fatalf("say: %s", got)
	}
	// The first client, in the same room, hears the say.
	if got := string(c.WaitPublish("Chat/OnSay", 5*time.Second).Payload); got != `{"roomName":"frames","say":"packed","userName":"packed"}` {
		t.Fatalf("OnSay: %s", got)
	}
}
