package gate_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqantgen/mqantgen/demo/demotest"
	"github.com/mqantgen/mqantgen/gate"
	"github.com/mqantgen/mqantgen/internal/testkit/leakcheck"
	"github.com/mqantgen/mqantgen/internal/testkit/mqtttest"
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

// TestMaxAwaySessions: the gate keeps at most MaxAwaySessions away
// sessions, however many clients drop: over it, the one away longest ends
// (its room hears it leave) and the newer stays resumable.
func TestMaxAwaySessions(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, map[string]any{"MaxAwaySessions": 1})
	addr := "tcp://" + d.TCPAddr
	bob := newPaho(t, addr, "bob-client")
	ca, cc := &cutter{}, &cutter{}
	ann := newPaho(t, addr, "ann-phone", persistent("ann", "pw", ca))
	cat := newPaho(t, addr, "cat-phone", persistent("cat", "pw", cc))
	loginJoin(ann, "ann", "room")
	loginJoin(cat, "cat", "room")
	loginJoin(bob, "bob", "room")
	ca.Cut()
	poll(t, "ann away", func() bool { return d.Gate.Stats().SessionsAway == 1 })
	cc.Cut()
	bob.WaitOne(func(m msg) bool {
		return m.Topic == "Chat/OnLeave" && m.Payload == `{"roomName":"room","userName":"ann"}`
	}, "bob sees ann, away longest, leave when cat's session is one too many")
	if st := d.Gate.Stats(); st.SessionsEvicted != 1 || st.SessionsAway != 1 || st.SessionsExpired != 0 {
		t.Errorf("stats: evicted %d away %d expired %d, want 1 1 0", st.SessionsEvicted, st.SessionsAway, st.SessionsExpired)
	}
	if back := newPaho(t, addr, "cat-phone", persistent("cat", "pw", nil)); !back.SessionPresent {
		t.Error("cat's session, the newer, was not kept")
	}
	if back := newPaho(t, addr, "ann-phone", persistent("ann", "pw", nil)); back.SessionPresent {
		t.Error("ann's evicted session resumed")
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
	// Her PUBACK of that push must reach the gate first: a push still
	// unacknowledged stays in the queue and would be dropped in m0's place.
	poll(t, "alice acked every push", func() bool { n, ok := d.Gate.KeptPushes("alice-phone"); return ok && n == 0 })
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

// TestPersistentGuestSession: without an auth hook, a persistent session
// created with no credentials resumes by its client id while nobody is
// logged in on it; once a handler bound a user, the client id alone
// resumes nothing (a clean session may still end it, as it may take a
// clean connection over).
func TestPersistentGuestSession(t *testing.T) {
	// Also with an auth hook that lets CONNECTs without credentials in: it
	// vouched for nobody, so the logged-in guest's session is no more
	// resumable by its client id than without a hook.
	for _, tc := range []struct {
		name string
		opts []gate.Option
	}{{"no auth hook", nil}, {"auth hook accepting guests", []gate.Option{gate.WithAuth(acceptAll)}}} {
		t.Run(tc.name, func(t *testing.T) {
			leakcheck.Check(t)
			d := demotest.StartWith(t, demotest.Options{GateOpts: tc.opts})
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

		})
	}
}

// TestPersistentSessionLiveTakeover: a phone switching networks connects
// again before the gate noticed the old connection died: the new
// connection resumes the session and the old one is closed, with no leave.
func TestPersistentSessionLiveTakeover(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, nil)
	addr := "tcp://" + d.TCPAddr
	bob := newPaho(t, addr, "bob-client")
	alice := newPaho(t, addr, "alice-phone", persistent("alice", "pw", nil))
	loginJoin(alice, "alice", "room")
	loginJoin(bob, "bob", "room")
	again := newPaho(t, addr, "alice-phone", persistent("alice", "pw", nil))
	if !again.SessionPresent {
		t.Fatal("second connection: session present 0")
	}
	poll(t, "the old connection closed", func() bool { return !alice.C.IsConnectionOpen() })
	if got := again.Must("Chat/Handler_Say", `{"roomName":"room","say":"on 4G"}`); got != `"say success"` {
		t.Fatalf("say: %s", got)
	}
	bob.WaitOne(func(m msg) bool { return strings.Contains(m.Payload, "on 4G") }, "bob hears alice")
	if n := bob.Count("Chat/OnLeave", "alice"); n != 0 {
		t.Errorf("bob saw alice leave")
	}
}

// TestAwaySessionEndsOnLoginElsewhere: with SingleSession, logging the
// same user in on another connection ends the away session for good: the
// rooms hear it leave, and nothing is kept for it.
func TestAwaySessionEndsOnLoginElsewhere(t *testing.T) {
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
	laptop := newPaho(t, addr, "alice-laptop")
	laptop.Must("Login/Handler_Login", `{"userName":"alice","passWord":"x"}`)
	bob.WaitOne(func(m msg) bool { return m.Topic == "Chat/OnLeave" && strings.Contains(m.Payload, "alice") },
		"the away session leaves")
	if st := d.Gate.Stats(); st.SessionsAway != 0 {
		t.Errorf("away sessions %d after the login elsewhere", st.SessionsAway)
	}
	back := newPaho(t, addr, "alice-phone", persistent("alice", "pw", nil))
	if back.SessionPresent {
		t.Error("the ended session was resumed")
	}
}
