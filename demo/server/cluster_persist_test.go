package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqantgen/mqantgen/internal/testkit/mqtttest"
	"github.com/mqantgen/mqantgen/internal/testkit/rabbittest"
)

func onSays(p *mqtttest.Paho) []string {
	var out []string
	for _, m := range p.Find(func(m mqtttest.Msg) bool { return m.Topic == "Chat/OnSay" }) {
		out = append(out, m.Payload)
	}
	return out
}

// TestClusterSessionMovesGate: in the cluster demo (real processes, a
// private broker), a player whose TCP is cut on gate1 comes back on gate2
// with the same client id: the session and the pushes kept for it cross
// over, it is still logged in and in the room, pushes Chat still sends to
// gate1 are forwarded, and nobody saw it leave.
func TestClusterSessionMovesGate(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker and four processes; skipped with -short")
	}
	broker := rabbittest.StartT(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "server")
	if out, err := exec.Command("go", "build", "-race", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	confFile, ports := writeClusterConfig(t, dir, broker.URI, 1)
	for _, pid := range []string{"login", "chat", "gate1", "gate2"} {
		startServer(t, dir, pid, bin, "-conf", confFile, "-pid", pid, "-web", "", "-log", "debug")
	}
	gate1 := fmt.Sprintf("127.0.0.1:%d", ports[0])
	gate2 := fmt.Sprintf("127.0.0.1:%d", ports[2])
	waitListening(t, gate1, gate2)

	cc := &mqtttest.Cutter{}
	alice := mqtttest.NewPaho(t, "tcp://"+gate1, "alice-phone", mqtttest.Persistent("alice", "pw", cc))
	mqtttest.Poll(t, "Login reachable across processes", func() bool {
		return alice.Request("Login/Handler_Login", 1, `{"userName":"alice","passWord":"x"}`).Error == ""
	})
	mqtttest.Poll(t, "Chat reachable across processes", func() bool {
		r := alice.Request("Chat/Handler_JoinChat", 1, `{"roomName":"lobby"}`)
		return r.Error == "" || r.Error == "Already in this chat room"
	})
	bob := mqtttest.NewPaho(t, "tcp://"+gate2, "bob")
	bob.LoginJoin("bob", "lobby")
	alice.WaitOne(func(m mqtttest.Msg) bool { return m.Topic == "Chat/OnJoin" && strings.Contains(m.Payload, "bob") },
		"alice hears bob join")

	cc.Cut()
	var want []string
	for i := range 3 {
		text := fmt.Sprintf("m%d", i)
		bob.Must("Chat/Handler_Say", fmt.Sprintf(`{"roomName":"lobby","say":%q}`, text))
		want = append(want, fmt.Sprintf(`{"roomName":"lobby","say":%q,"userName":"bob"}`, text))
	}
	if _, err := mqtttest.DialPaho(t, "tcp://"+gate2, "alice-phone", mqtttest.Persistent("alice", "guess", nil)); err == nil ||
		!strings.Contains(err.Error(), "identifier rejected") {
		t.Fatalf("the wrong password on gate2: %v, want identifier rejected", err)
	}
	back := mqtttest.NewPaho(t, "tcp://"+gate2, "alice-phone", mqtttest.Persistent("alice", "pw", nil))
	if !back.SessionPresent {
		t.Fatal("resume on gate2: session present 0")
	}
	mqtttest.Poll(t, "the kept pushes on gate2", func() bool { return len(onSays(back)) >= len(want) })
	bob.Must("Chat/Handler_Say", `{"roomName":"lobby","say":"m3"}`)
	want = append(want, `{"roomName":"lobby","say":"m3","userName":"bob"}`)
	mqtttest.Poll(t, "a live push forwarded by gate1", func() bool { return len(onSays(back)) >= len(want) })
	if got := back.Must("Chat/Handler_Say", `{"roomName":"lobby","say":"back"}`); got != `"say success"` {
		t.Fatalf("say on gate2: %s", got)
	}
	want = append(want, `{"roomName":"lobby","say":"back","userName":"alice"}`)
	bob.WaitOne(func(m mqtttest.Msg) bool { return strings.Contains(m.Payload, `"back"`) }, "bob hears alice back")
	mqtttest.Poll(t, "alice's own say", func() bool { return len(onSays(back)) >= len(want) })
	if got := onSays(back); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("alice on gate2 got\n%s\nwant, once each and in order\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := bob.Count("Chat/OnLeave", "alice"); n != 0 {
		t.Errorf("bob saw alice leave %d times", n)
	}
}
