package gate_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqantgen/mqantgen/demo/demotest"
	"github.com/mqantgen/mqantgen/gate"
	"github.com/mqantgen/mqantgen/gate/packets"
	"github.com/mqantgen/mqantgen/internal/leakcheck"
	"github.com/mqantgen/mqantgen/internal/mqtttest"
)

type cutter = mqtttest.Cutter

var persistent = mqtttest.Persistent

func says(p *pahoClient) []string {
	var out []string
	for _, m := range p.Find(func(m msg) bool { return m.Topic == "Chat/OnSay" }) {
		out = append(out, m.Payload)
	}
	return out
}

func sayBody(room, text, user string) string {
	return fmt.Sprintf(`{"roomName":%q,"say":%q,"userName":%q}`, room, text, user)
}

// TestPersistentSessionResumesMidChat cuts a player's TCP mid-chat: the
// others keep talking, the player comes back with the same client id and
// gets what was said meanwhile, once each and in order, still logged in
// and still in the room; nobody saw it leave.
func TestPersistentSessionResumesMidChat(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, nil)
	addr := "tcp://" + d.TCPAddr
	bob := newPaho(t, addr, "bob-client")
	cc := &cutter{}
	alice := newPaho(t, addr, "alice-phone", persistent("alice", "pw", cc))
	if alice.SessionPresent {
		t.Fatal("first CONNECT: session present")
	}
	loginJoin(alice, "alice", "room")
	loginJoin(bob, "bob", "room")
	alice.WaitOne(func(m msg) bool { return m.Topic == "Chat/OnJoin" && strings.Contains(m.Payload, "bob") }, "alice hears bob join")

	cc.Cut()
	poll(t, "the gate keeps alice's session, away", func() bool { return d.Gate.Stats().SessionsAway == 1 })
	var want []string
	for i := range 5 {
		text := fmt.Sprintf("while you were away %d", i)
		bob.Must("Chat/Handler_Say", fmt.Sprintf(`{"roomName":"room","say":%q}`, text))
		want = append(want, sayBody("room", text, "bob"))
	}

	back := newPaho(t, addr, "alice-phone", persistent("alice", "pw", nil))
	if !back.SessionPresent {
		t.Fatal("resume: CONNACK session present 0")
	}
	poll(t, "the missed messages", func() bool { return len(says(back)) >= len(want) })
	// Still logged in and in the room: her own say comes back to her after
	// the missed ones.
	if got := back.Must("Chat/Handler_Say", `{"roomName":"room","say":"back"}`); got != `"say success"` {
		t.Fatalf("say after resume: %s", got)
	}
	want = append(want, sayBody("room", "back", "alice"))
	bob.WaitOne(func(m msg) bool { return m.Payload == sayBody("room", "back", "alice") }, "bob hears alice again")
	poll(t, "alice's own say", func() bool { return len(says(back)) >= len(want) })
	if got := says(back); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("alice got\n%s\nwant, once each and in order\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := bob.Count("Chat/OnLeave", "alice"); n != 0 {
		t.Errorf("bob saw alice leave %d times; a dropped connection is not a leave", n)
	}
	st := d.Gate.Stats()
	if st.SessionsAway != 0 || st.SessionsResumed != 1 || st.SessionDropped != 0 {
		t.Errorf("stats: away %d resumed %d dropped %d, want 0 1 0", st.SessionsAway, st.SessionsResumed, st.SessionDropped)
	}
}

// TestPersistentSessionExpires: a player who does not come back within
// SessionExpiry leaves the rooms (the others see OnLeave), and coming back
// later starts a new session.
func TestPersistentSessionExpires(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, map[string]any{"SessionExpiry": "300ms"})
	addr := "tcp://" + d.TCPAddr
	bob := newPaho(t, addr, "bob-client")
	cc := &cutter{}
	alice := newPaho(t, addr, "alice-phone", persistent("alice", "pw", cc))
	loginJoin(alice, "alice", "room")
	loginJoin(bob, "bob", "room")
	cc.Cut()
	bob.WaitOne(func(m msg) bool {
		return m.Topic == "Chat/OnLeave" && m.Payload == `{"roomName":"room","userName":"alice"}`
	}, "bob sees alice leave once her session expired")
	if st := d.Gate.Stats(); st.SessionsExpired != 1 || st.SessionsAway != 0 {
		t.Errorf("stats: expired %d away %d, want 1 0", st.SessionsExpired, st.SessionsAway)
	}
	back := newPaho(t, addr, "alice-phone", persistent("alice", "pw", nil))
	if back.SessionPresent {
		t.Error("CONNECT after expiry: session present")
	}
	if r := back.Request("Chat/Handler_Say", 1, `{"roomName":"room","say":"x"}`); r.Error != "Not Logined" {
		t.Errorf("say on the new session: %+v, want Not Logined", r)
	}
}

// TestPersistentSessionOverflow: pushes to an away session are bounded;
// the oldest go, and the client first hears how many it missed.
func TestPersistentSessionOverflow(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, map[string]any{"SessionQueueMax": 3})
	addr := "tcp://" + d.TCPAddr
	bob := newPaho(t, addr, "bob-client")
	cc := &cutter{}
	alice := newPaho(t, addr, "alice-phone", persistent("alice", "pw", cc))
	loginJoin(alice, "alice", "room")
	loginJoin(bob, "bob", "room")
	alice.WaitOne(func(m msg) bool { return m.Topic == "Chat/OnJoin" && strings.Contains(m.Payload, "bob") }, "alice hears bob join")
	cc.Cut()
	poll(t, "alice away", func() bool { return d.Gate.Stats().SessionsAway == 1 })
	for i := range 5 {
		bob.Must("Chat/Handler_Say", fmt.Sprintf(`{"roomName":"room","say":"m%d"}`, i))
	}
	poll(t, "two pushes dropped", func() bool { return d.Gate.Stats().SessionDropped == 2 })

	var order []string
	var mu sync.Mutex
	back := newPaho(t, addr, "alice-phone", persistent("alice", "pw", nil), func(o *mqtt.ClientOptions) {
		o.SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			mu.Lock()
			order = append(order, m.Topic()+" "+string(m.Payload()))
			mu.Unlock()
		})
	})
	if !back.SessionPresent {
		t.Fatal("resume: session present 0")
	}
	want := []string{gate.MissedTopic + ` {"dropped":2}`,
		"Chat/OnSay " + sayBody("room", "m2", "bob"), "Chat/OnSay " + sayBody("room", "m3", "bob"),
		"Chat/OnSay " + sayBody("room", "m4", "bob")}
	poll(t, "the kept pushes", func() bool { mu.Lock(); defer mu.Unlock(); return len(order) >= len(want) })
	mu.Lock()
	got := strings.Join(order, "\n")
	mu.Unlock()
	if got != strings.Join(want, "\n") {
		t.Errorf("after resume got\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
	if n := strings.Count(d.Logs.String(), "persistent session dropping pushes"); n != 1 {
		t.Errorf("overflow logged %d times, want once per absence", n)
	}
}

// TestPersistentSessionCredentials: without an auth hook a session is
// resumed (or discarded) only with the username and password that created
// it; a client id alone takes nothing over.
func TestPersistentSessionCredentials(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, nil)
	addr := "tcp://" + d.TCPAddr
	bob := newPaho(t, addr, "bob-client")
	cc := &cutter{}
	alice := newPaho(t, addr, "alice-phone", persistent("alice", "pw", cc))
	loginJoin(alice, "alice", "room")
	loginJoin(bob, "bob", "room")
	cc.Cut()
	poll(t, "alice away", func() bool { return d.Gate.Stats().SessionsAway == 1 })
	for _, tc := range []struct {
		name       string
		user, pass string
		clean      bool
	}{
		{"wrong password", "alice", "guess", false},
		{"other user", "mallory", "pw", false},
		{"no credentials", "", "", false},
		{"clean session with the wrong password", "alice", "guess", true},
	} {
		_, err := mqtttest.DialPaho(t, addr, "alice-phone", func(o *mqtt.ClientOptions) {
			o.SetCleanSession(tc.clean).SetUsername(tc.user).SetPassword(tc.pass)
		})
		if err == nil || !strings.Contains(err.Error(), "identifier rejected") {
			t.Errorf("%s: connect error %v, want identifier rejected", tc.name, err)
		}
	}
	bob.Must("Chat/Handler_Say", `{"roomName":"room","say":"still there?"}`)
	back := newPaho(t, addr, "alice-phone", persistent("alice", "pw", nil))
	if !back.SessionPresent {
		t.Fatal("the right credentials: session present 0")
	}
	back.WaitOne(func(m msg) bool { return m.Payload == sayBody("room", "still there?", "bob") }, "the kept push")
	if n := bob.Count("Chat/OnLeave", "alice"); n != 0 {
		t.Errorf("bob saw alice leave: the refused CONNECTs ended her session")
	}
}

// TestPersistentSessionAuthHook: with an auth hook, the hook vouches for
// the username: the same user resumes with a new password (a refreshed
// token), another user the hook accepts cannot take the session.
func TestPersistentSessionAuthHook(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.StartWith(t, demotest.Options{GateOpts: []gate.Option{gate.WithAuth(acceptAll)}})
	addr := "tcp://" + d.TCPAddr
	cc := &cutter{}
	alice := newPaho(t, addr, "alice-phone", persistent("alice", "token-1", cc))
	loginJoin(alice, "alice", "room")
	cc.Cut()
	poll(t, "alice away", func() bool { return d.Gate.Stats().SessionsAway == 1 })
	if _, err := mqtttest.DialPaho(t, addr, "alice-phone", persistent("mallory", "token-m", nil)); err == nil ||
		!strings.Contains(err.Error(), "identifier rejected") {
		t.Errorf("another user took alice's session: %v", err)
	}
	back := newPaho(t, addr, "alice-phone", persistent("alice", "token-2", nil))
	if !back.SessionPresent {
		t.Fatal("same user, new token: session present 0")
	}
	if got := back.Must("Chat/Handler_Say", `{"roomName":"room","say":"hi"}`); got != `"say success"` {
		t.Errorf("say after resume: %s", got)
	}
}

// TestCleanSessionDiscardsStored: clean session 1 with the right
// credentials ends the stored session (the others see the leave) and
// starts afresh.
func TestCleanSessionDiscardsStored(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, nil)
	addr := "tcp://" + d.TCPAddr
	bob := newPaho(t, addr, "bob-client")
	cc := &cutter{}
	alice := newPaho(t, addr, "alice-phone", persistent("alice", "pw", cc))
	loginJoin(alice, "alice", "room")
	loginJoin(bob, "bob", "room")
	cc.Cut()
	poll(t, "alice away", func() bool { return d.Gate.Stats().SessionsAway == 1 })
	fresh := newPaho(t, addr, "alice-phone", func(o *mqtt.ClientOptions) { o.SetUsername("alice").SetPassword("pw") })
	if fresh.SessionPresent {
		t.Error("clean session: session present")
	}
	bob.WaitOne(func(m msg) bool { return m.Topic == "Chat/OnLeave" && strings.Contains(m.Payload, "alice") }, "bob sees alice leave")
	if st := d.Gate.Stats(); st.SessionsAway != 0 {
		t.Errorf("away sessions %d after the discard", st.SessionsAway)
	}
}

func acceptAll(_ context.Context, _ gate.AuthInfo) byte { return 0 }

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

// TestPersistentGuestSession: without an auth hook, a persistent session
// created with no credentials resumes by its client id while nobody is
// logged in on it; once a handler bound a user, the client id alone
// resumes nothing (a clean session may still end it, as it may take a
// clean connection over).
func TestPersistentGuestSession(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, nil)
	addr := "tcp://" + d.TCPAddr
	cc := &cutter{}
	newPaho(t, addr, "guest-phone", persistent("", "", cc))
	cc.Cut()
	poll(t, "guest away", func() bool { return d.Gate.Stats().SessionsAway == 1 })
	cc2 := &cutter{}
	guest := newPaho(t, addr, "guest-phone", persistent("", "", cc2))
	if !guest.SessionPresent {
		t.Fatal("guest session without a user: not resumed")
	}
	loginJoin(guest, "guest", "room")
	cc2.Cut()
	poll(t, "logged-in guest away", func() bool { return d.Gate.Stats().SessionsAway == 1 })
	if _, err := mqtttest.DialPaho(t, addr, "guest-phone", persistent("", "", nil)); err == nil ||
		!strings.Contains(err.Error(), "identifier rejected") {
		t.Fatalf("a client id alone resumed a logged-in session: %v", err)
	}
	fresh := newPaho(t, addr, "guest-phone")
	if fresh.SessionPresent {
		t.Error("clean session: session present")
	}
	poll(t, "the discarded session gone", func() bool { return d.Gate.Stats().SessionsAway == 0 })
}
