package gate_test

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/demo/chat"
	"github.com/mqantgen/mqantgen/demo/login"
	"github.com/mqantgen/mqantgen/gate"
	"github.com/mqantgen/mqantgen/internal/testkit/leakcheck"
	"github.com/mqantgen/mqantgen/internal/testkit/mqtttest"
	"github.com/mqantgen/mqantgen/internal/testkit/syncbuf"
)

// startTwoGates runs the chat demo with two gate instances in one process
// (in-process RPC): the gates find each other as they would across
// processes, by asking every instance of type Gate.
func startTwoGates(t *testing.T, extra map[string]any) (g1, g2 *gate.Gate) {
	t.Helper()
	logs := &syncbuf.Buffer{}
	gs := func() map[string]any {
		m := map[string]any{"TCPAddr": "127.0.0.1:0", "SessionCloseListeners": []any{"Chat"}}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	cfg := &core.Config{RPC: core.RPCConfig{Timeout: 10 * time.Second}, Modules: []*core.ModuleSettings{
		{Type: "Gate", ID: "Gate1", Host: "127.0.0.1", ProcessID: "dev", Settings: gs()},
		{Type: "Gate", ID: "Gate2", Host: "127.0.0.1", ProcessID: "dev", Settings: gs()},
		{Type: "Login", ID: "Login1", Host: "127.0.0.1", ProcessID: "dev"},
		{Type: "Chat", ID: "Chat1", Host: "127.0.0.1", ProcessID: "dev"},
	}}
	app := core.NewApp(cfg, core.Options{ProcessID: "dev", DrainTimeout: 3 * time.Second,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	var gates []*gate.Gate
	newGate := gate.New()
	app.Register(gate.Gate_Type, func() core.Module {
		m := newGate()
		gates = append(gates, m.(*gate.Gate))
		return m
	})
	login.Register(app)
	chat.Register(app)
	if err := app.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		app.Stop("test finished")
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	if len(gates) != 2 {
		t.Fatalf("%d gates started", len(gates))
	}
	if gates[0].Settings.ID != "Gate1" {
		gates[0], gates[1] = gates[1], gates[0]
	}
	return gates[0], gates[1]
}

// TestPersistentSessionMovesToOtherGate: a player cut off on one gate
// comes back on the other: the session (user, rooms) and the pushes kept
// for it move there, the old gate forgets it and forwards what modules
// still send it there; nobody saw the player leave.
func TestPersistentSessionMovesToOtherGate(t *testing.T) {
	leakcheck.Check(t)
	g1, g2 := startTwoGates(t, nil)
	on1, on2 := "tcp://"+g1.TCPAddr().String(), "tcp://"+g2.TCPAddr().String()
	bob := newPaho(t, on2, "bob-client")
	cc := &cutter{}
	alice := newPaho(t, on1, "alice-phone", persistent("alice", "pw", cc))
	loginJoin(alice, "alice", "room")
	loginJoin(bob, "bob", "room")
	alice.WaitOne(func(m msg) bool { return m.Topic == "Chat/OnJoin" && strings.Contains(m.Payload, "bob") }, "alice hears bob join")
	cc.Cut()
	poll(t, "alice away on gate1", func() bool { return g1.Stats().SessionsAway == 1 })
	var want []string
	for i := range 3 {
		bob.Must("Chat/Handler_Say", fmt.Sprintf(`{"roomName":"room","say":"m%d"}`, i))
		want = append(want, sayBody("room", fmt.Sprintf("m%d", i), "bob"))
	}
	// The wrong password on the other gate takes nothing.
	if _, err := mqtttest.DialPaho(t, on2, "alice-phone", persistent("alice", "guess", nil)); err == nil ||
		!strings.Contains(err.Error(), "identifier rejected") {
		t.Fatalf("wrong password on gate2: %v, want identifier rejected", err)
	}
	back := newPaho(t, on2, "alice-phone", persistent("alice", "pw", nil))
	if !back.SessionPresent {
		t.Fatal("resume on gate2: session present 0")
	}
	poll(t, "the kept pushes on gate2", func() bool { return len(says(back)) >= len(want) })
	// Chat still has alice at Gate1: gate1 forwards.
	bob.Must("Chat/Handler_Say", `{"roomName":"room","say":"m3"}`)
	want = append(want, sayBody("room", "m3", "bob"))
	poll(t, "a live push through the old gate", func() bool { return len(says(back)) >= len(want) })
	if got := back.Must("Chat/Handler_Say", `{"roomName":"room","say":"back"}`); got != `"say success"` {
		t.Fatalf("say on gate2: %s", got)
	}
	want = append(want, sayBody("room", "back", "alice"))
	poll(t, "alice's own say", func() bool { return len(says(back)) >= len(want) })
	if got := says(back); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("alice got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := bob.Count("Chat/OnLeave", "alice"); n != 0 {
		t.Errorf("bob saw alice leave %d times", n)
	}
	s1, s2 := g1.Stats(), g2.Stats()
	if s1.SessionsAway != 0 || s1.SessionsMoved != 1 || len(g1.Sessions()) != 0 {
		t.Errorf("gate1 keeps a copy: away %d moved %d sessions %d", s1.SessionsAway, s1.SessionsMoved, len(g1.Sessions()))
	}
	if s2.SessionsResumed != 1 {
		t.Errorf("gate2 resumed %d", s2.SessionsResumed)
	}
	d, err := gate.Online(t.Context(), g1.App, "alice")
	if err != nil || d == nil || d.ServerID != "Gate2" {
		t.Errorf("alice online: %+v %v, want on Gate2", d, err)
	}
}

// TestMovedSessionKeepsDropsAndExpires: what an away session dropped is
// told on the other gate too, and a moved session expires there like any
// other: the room hears the player leave.
func TestMovedSessionKeepsDropsAndExpires(t *testing.T) {
	leakcheck.Check(t)
	g1, g2 := startTwoGates(t, map[string]any{"SessionQueueMax": 2, "SessionExpiry": "500ms"})
	on1, on2 := "tcp://"+g1.TCPAddr().String(), "tcp://"+g2.TCPAddr().String()
	bob := newPaho(t, on2, "bob-client")
	cc := &cutter{}
	alice := newPaho(t, on1, "alice-phone", persistent("alice", "pw", cc))
	loginJoin(alice, "alice", "room")
	loginJoin(bob, "bob", "room")
	alice.WaitOne(func(m msg) bool { return m.Topic == "Chat/OnJoin" && strings.Contains(m.Payload, "bob") }, "alice hears bob join")
	// Her PUBACK of that push must reach gate1 first: a push still
	// unacknowledged stays in the queue and would be dropped in m0's place.
	poll(t, "alice acked every push", func() bool { n, ok := g1.KeptPushes("alice-phone"); return ok && n == 0 })
	cc.Cut()
	poll(t, "alice away on gate1", func() bool { return g1.Stats().SessionsAway == 1 })
	for i := range 3 {
		bob.Must("Chat/Handler_Say", fmt.Sprintf(`{"roomName":"room","say":"m%d"}`, i))
	}
	poll(t, "one push dropped on gate1", func() bool { return g1.Stats().SessionDropped == 1 })
	cc2 := &cutter{}
	back := newPaho(t, on2, "alice-phone", persistent("alice", "pw", cc2))
	if !back.SessionPresent {
		t.Fatal("resume on gate2: session present 0")
	}
	poll(t, "the notice and the kept pushes", func() bool { return len(back.Find(func(msg) bool { return true })) >= 3 })
	got := back.Find(func(msg) bool { return true })
	if got[0].Topic != gate.MissedTopic || got[0].Payload != `{"dropped":1}` ||
		got[1].Payload != sayBody("room", "m1", "bob") || got[2].Payload != sayBody("room", "m2", "bob") {
		t.Errorf("on gate2: %v", got)
	}
	cc2.Cut()
	bob.WaitOne(func(m msg) bool { return m.Topic == "Chat/OnLeave" && strings.Contains(m.Payload, "alice") },
		"alice's session expires on gate2")
	if st := g2.Stats(); st.SessionsExpired != 1 || st.SessionsAway != 0 {
		t.Errorf("gate2: expired %d away %d", st.SessionsExpired, st.SessionsAway)
	}
}
