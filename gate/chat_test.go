package gate_test

import (
	"strings"
	"testing"

	"github.com/mqantgen/mqantgen/demo/demotest"
	"github.com/mqantgen/mqantgen/internal/testkit/leakcheck"
)

// TestChatOverTCPAndWebSocket runs the demo's protocol with real Paho Go
// clients, one over TCP and one over WebSocket, in one room, and a third in
// another room.
func TestChatOverTCPAndWebSocket(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, nil)
	alice := newPaho(t, "tcp://"+d.TCPAddr, "alice-client")
	bob := newPaho(t, "ws://"+d.WSAddr+"/mqtt", "bob-client")
	carol := newPaho(t, "tcp://"+d.TCPAddr, "carol-client")

	loginJoin(alice, "alice", "room1")
	loginJoin(bob, "bob", "room1")
	loginJoin(carol, "carol", "room2")
	alice.WaitOne(func(m msg) bool {
		return m.Topic == "Chat/OnJoin" && m.Payload == `{"roomName":"room1","userName":"bob"}`
	}, "alice hears bob join")

	if got := alice.Must("Chat/Handler_Say", `{"roomName":"room1","say":"hello from tcp"}`); got != `"say success"` {
		t.Fatalf("say result %s", got)
	}
	bob.WaitOne(func(m msg) bool {
		return m.Topic == "Chat/OnSay" && m.Payload == `{"roomName":"room1","say":"hello from tcp","userName":"alice"}`
	}, "bob (ws) gets alice's say")
	bob.Must("Chat/Handler_Say", `{"roomName":"room1","say":"hello from ws"}`)
	alice.WaitOne(func(m msg) bool { return m.Topic == "Chat/OnSay" && strings.Contains(m.Payload, "hello from ws") }, "alice gets bob's say")

	// Room isolation: carol hears her own room, never room1.
	carol.Must("Chat/Handler_Say", `{"roomName":"room2","say":"only room2"}`)
	carol.WaitOne(func(m msg) bool { return m.Topic == "Chat/OnSay" && strings.Contains(m.Payload, "only room2") }, "carol's own say")
	if n := len(carol.Find(func(m msg) bool { return strings.Contains(m.Payload, "room1") })); n != 0 {
		t.Errorf("carol received %d room1 messages", n)
	}
	if n := alice.Count("Chat/OnSay", "only room2"); n != 0 {
		t.Errorf("alice received room2's say")
	}

	// Errors from the chat protocol.
	for _, tc := range []struct{ route, body, want string }{
		{"Chat/Handler_Say", `{"roomName":"room2","say":"x"}`, "You haven't been in the room yet"},
		{"Chat/Handler_Say", `{"roomName":"nowhere","say":"x"}`, "No room"},
		{"Chat/Handler_Say", `{"roomName":"room1"}`, "roomName or say cannot be nil"},
		{"Chat/Handler_JoinChat", `{}`, "roomName cannot be nil"},
		{"Login/Handler_Login", `{"userName":"x"}`, "userName or passWord cannot be nil"},
	} {
		r := alice.Request(tc.route, 0, tc.body)
		if r.Error != tc.want || string(r.Result) != "null" {
			t.Errorf("%s %s: got %+v, want error %q and null result", tc.route, tc.body, r, tc.want)
		}
	}
	dave := newPaho(t, "tcp://"+d.TCPAddr, "dave-client")
	if r := dave.Request("Chat/Handler_JoinChat", 1, `{"roomName":"room1"}`); r.Error != "Not Logined" {
		t.Errorf("join before login: %+v", r)
	}

	// Bob disconnects: alice hears OnLeave; bob can log in again and rejoin.
	bob.C.Disconnect(0)
	alice.WaitOne(func(m msg) bool {
		return m.Topic == "Chat/OnLeave" && m.Payload == `{"roomName":"room1","userName":"bob"}`
	}, "OnLeave for bob")
	bob2 := newPaho(t, "ws://"+d.WSAddr+"/anything", "bob-client")
	loginJoin(bob2, "bob", "room1")
	alice.Must("Chat/Handler_Say", `{"roomName":"room1","say":"welcome back"}`)
	bob2.WaitOne(func(m msg) bool { return m.Topic == "Chat/OnSay" && strings.Contains(m.Payload, "welcome back") }, "bob back in the room")
}

// TestQoSHandledOnce publishes a say at QoS 0, 1 and 2 and checks each is
// handled exactly once: one reply, one OnSay per member.
func TestQoSHandledOnce(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, nil)
	alice := newPaho(t, "tcp://"+d.TCPAddr, "a")
	bob := newPaho(t, "tcp://"+d.TCPAddr, "b")
	loginJoin(alice, "alice", "q")
	loginJoin(bob, "bob", "q")
	for _, qos := range []byte{0, 1, 2} {
		text := "qos" + string(rune('0'+qos))
		r := alice.Request("Chat/Handler_Say", qos, `{"roomName":"q","say":"`+text+`"}`)
		if r.Error != "" {
			t.Fatalf("qos %d: %s", qos, r.Error)
		}
	}
	// A final marker: once it arrived, any duplicate of the earlier ones would have too.
	alice.Must("Chat/Handler_Say", `{"roomName":"q","say":"final"}`)
	bob.WaitOne(func(m msg) bool { return strings.Contains(m.Payload, `"say":"final"`) }, "final marker")
	for _, text := range []string{"qos0", "qos1", "qos2"} {
		if n := bob.Count("Chat/OnSay", `"say":"`+text+`"`); n != 1 {
			t.Errorf("%s delivered %d times, want 1", text, n)
		}
	}
	replies := alice.Find(func(m msg) bool { return strings.HasPrefix(m.Topic, "Chat/Handler_Say/") })
	if len(replies) != 4 {
		t.Errorf("%d replies for 4 says", len(replies))
	}
}

// TestOneSessionPerUser: logging in as the same user elsewhere closes the
// older connection.
func TestOneSessionPerUser(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, nil)
	first := newPaho(t, "tcp://"+d.TCPAddr, "first")
	first.Must("Login/Handler_Login", `{"userName":"sam","passWord":"x"}`)
	second := newPaho(t, "tcp://"+d.TCPAddr, "second")
	second.Must("Login/Handler_Login", `{"userName":"sam","passWord":"x"}`)
	poll(t, "first connection closed", func() bool { return !first.C.IsConnectionOpen() })
	if s, err := d.Gate.Lookup(t.Context(), "sam"); err != nil || s == nil || s.ClientID != "second" {
		t.Errorf("sam is on %+v (%v), want the second connection", s, err)
	}
}
