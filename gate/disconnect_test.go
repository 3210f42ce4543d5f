package gate_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/demo/demotest"
	"github.com/mqantgen/mqantgen/gate/packets"
	"github.com/mqantgen/mqantgen/generated/logingen"
	"github.com/mqantgen/mqantgen/internal/testkit/leakcheck"
	"github.com/mqantgen/mqantgen/internal/testkit/mqtttest"
)

// TestRequestsBeforeDisconnectAreHandled: requests a client sends just
// before DISCONNECT (in the same TCP segment, as mosquitto_pub does) are
// handled with the session still there, and modules hear of the close only
// after them: a no-reply login binds and counts, and a no-reply join is
// followed by the member's OnLeave, never left behind in the room.
func TestRequestsBeforeDisconnectAreHandled(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, nil)
	const n = 20
	observer := mqtttest.Connect(t, d.TCPAddr, "observer", 0)
	observer.Request("Login/Handler_Login/1", `{"userName":"observer","passWord":"x"}`)
	observer.Request("Chat/Handler_JoinChat/2", `{"roomName":"exit"}`)
	observer.WaitPublish("Chat/OnJoin", 5*time.Second)

	// Login without a msgid, then DISCONNECT, in one write.
	for i := 0; i < n; i++ {
		c := mqtttest.Connect(t, d.TCPAddr, fmt.Sprintf("quick-login-%d", i), 0)
		b := (&packets.Publish{Topic: "Login/Handler_Login", Payload: []byte(fmt.Sprintf(`{"userName":"ql%d","passWord":"x"}`, i))}).AppendTo(nil)
		c.Write((&packets.Disconnect{}).AppendTo(b))
	}
	// Log in, then join without a msgid and DISCONNECT, in one write.
	for i := 0; i < n; i++ {
		c := mqtttest.Connect(t, d.TCPAddr, fmt.Sprintf("quick-join-%d", i), 0)
		c.Request("Login/Handler_Login/1", fmt.Sprintf(`{"userName":"qj%d","passWord":"x"}`, i))
		b := (&packets.Publish{Topic: "Chat/Handler_JoinChat", Payload: []byte(`{"roomName":"exit"}`)}).AppendTo(nil)
		c.Write((&packets.Disconnect{}).AppendTo(b))
	}

	poll(t, "every connection but the observer's gone", func() bool { return d.Gate.Stats().Connections == 1 })
	login := logingen.NewLoginClient(d.App)
	for i := 0; i < n; i++ {
		u, err := login.GetUser(t.Context(), fmt.Sprintf("ql%d", i))
		if err != nil || u.Logins != 1 {
			t.Errorf("ql%d: %+v, %v; want logged in once", i, u, err)
		}
	}
	// Every joiner joined and left again: the observer hears both. (Not
	// necessarily in that order: the gate runs Broadcast calls concurrently,
	// so two pushes to one client may overtake each other.)
	joined, left := map[string]bool{}, map[string]bool{}
	deadline := time.Now().Add(10 * time.Second)
	for (len(joined) < n || len(left) < n) && time.Now().Before(deadline) {
		p, err := observer.Read(time.Until(deadline))
		if err != nil {
			break
		}
		pub, ok := p.(*packets.Publish)
		if !ok {
			continue
		}
		var user string
		if _, err := fmt.Sscanf(string(pub.Payload), `{"roomName":"exit","userName":"%s`, &user); err != nil {
			t.Fatalf("observer got %s %s", pub.Topic, pub.Payload)
		}
		user = user[:len(user)-2] // drop `"}`
		switch pub.Topic {
		case "Chat/OnJoin":
			joined[user] = true
		case "Chat/OnLeave":
			left[user] = true
		}
	}
	for i := 0; i < n; i++ {
		if u := fmt.Sprintf("qj%d", i); !joined[u] || !left[u] {
			t.Errorf("%s: joined %v, left %v; want both (a member that never leaves stays in the room)", u, joined[u], left[u])
		}
	}
}
