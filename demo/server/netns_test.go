//go:build netns

package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqantgen/mqantgen/internal/testkit/mqtttest"
	"github.com/mqantgen/mqantgen/internal/testkit/rabbittest"
)

// TestAcrossHosts runs the chat demo on two "hosts", network namespaces the
// test makes with ip netns and veth pairs, and a RabbitMQ broker on a third
// (the test's own namespace). The processes are started without -pid, so
// each runs the instances whose Host is one of its addresses, exactly as on
// real machines; the broker is reached with a real user, since guest may
// only connect over loopback. It needs root and is opt-in:
// make test-netns (go test -tags netns -run AcrossHosts ./demo/server).
//
// Addresses: the broker host is 10.77.0.1 and 10.77.1.1 (the two veth
// ends in the test's namespace); host A, the gate, is 10.77.0.2; host B,
// Login and Chat, is 10.77.1.2.
func TestAcrossHosts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root to create network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("needs ip from Debian's iproute2: apt-get install -y iproute2")
	}
	var suffix [3]byte
	_, _ = rand.Read(suffix[:])
	id := hex.EncodeToString(suffix[:])
	nsA, nsB := "mqa"+id, "mqb"+id
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	for _, h := range []struct{ ns, veth, peer, hostIP, nsIP string }{
		{nsA, "va" + id, "pa" + id, "10.77.0.1", "10.77.0.2"},
		{nsB, "vb" + id, "pb" + id, "10.77.1.1", "10.77.1.2"},
	} {
		run("netns", "add", h.ns)
		ns := h.ns
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() }) // its veth ends go with it
		run("link", "add", h.veth, "type", "veth", "peer", "name", h.peer)
		run("link", "set", h.peer, "netns", h.ns)
		run("addr", "add", h.hostIP+"/24", "dev", h.veth)
		run("link", "set", h.veth, "up")
		run("-n", h.ns, "addr", "add", h.nsIP+"/24", "dev", h.peer)
		run("-n", h.ns, "link", "set", h.peer, "up")
		run("-n", h.ns, "link", "set", "lo", "up")
		run("-n", h.ns, "route", "add", "default", "via", h.hostIP)
	}

	broker, err := rabbittest.StartListening(t.TempDir(), "10.77.0.1", "10.77.1.1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = broker.Stop() })
	if err := broker.AddUser("mqant", "netns-secret"); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	bin := filepath.Join(dir, "server")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	conf := fmt.Sprintf(`{
  "Rabbitmq": {"Uri": "amqp://mqant:netns-secret@10.77.0.1:%d/"},
  "Module": {
    "Gate":  [{"Id": "hostA:Gate", "Host": "10.77.0.2", "ProcessID": "a",
               "Settings": {"TCPAddr": ":3563", "WSAddr": ":3653", "SessionCloseListeners": ["Chat"]}}],
    "Login": [{"Id": "hostB:Login", "Host": "10.77.1.2", "ProcessID": "b"}],
    "Chat":  [{"Id": "hostB:Chat",  "Host": "10.77.1.2", "ProcessID": "b"}]
  }
}`, broker.Port)
	confFile := filepath.Join(dir, "hosts.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{nsA, nsB} {
		// No -pid: each host runs the instances whose Host it has.
		startServer(t, dir, ns, "ip", "netns", "exec", ns, bin, "-conf", confFile, "-web", "", "-log", "debug")
	}
	waitListening(t, "10.77.0.2:3563")
	alice := mqtttest.NewPaho(t, "tcp://10.77.0.2:3563", "alice")
	mqtttest.Poll(t, "Login on host B reachable", func() bool {
		return alice.Request("Login/Handler_Login", 1, `{"userName":"alice","passWord":"x"}`).Error == ""
	})
	mqtttest.Poll(t, "Chat on host B reachable", func() bool {
		r := alice.Request("Chat/Handler_JoinChat", 1, `{"roomName":"hosts"}`)
		return r.Error == "" || r.Error == "Already in this chat room"
	})
	bob := mqtttest.NewPaho(t, "ws://10.77.0.2:3653/mqtt", "bob")
	bob.LoginJoin("bob", "hosts")
	alice.Must("Chat/Handler_Say", `{"roomName":"hosts","say":"across hosts"}`)
	bob.WaitOne(func(m mqtttest.Msg) bool {
		return m.Topic == "Chat/OnSay" && m.Payload == `{"roomName":"hosts","say":"across hosts","userName":"alice"}`
	}, "push from host B through the gate on host A")
}
