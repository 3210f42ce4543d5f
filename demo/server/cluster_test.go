package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/internal/testkit/mqtttest"
	"github.com/mqantgen/mqantgen/internal/testkit/rabbittest"
)

// TestClusterChat runs the chat demo as four real processes (two gates,
// Login, Chat) built from this command, sharing a private RabbitMQ broker:
// clients on different gates chat in one room, pushes cross processes,
// rooms stay separate, and a disconnect on one gate reaches the other.
func TestClusterChat(t *testing.T) {
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
	gate2ws := fmt.Sprintf("127.0.0.1:%d", ports[3])
	gate2 := fmt.Sprintf("127.0.0.1:%d", ports[2])
	waitListening(t, gate1, gate2, gate2ws)

	alice := mqtttest.NewPaho(t, "tcp://"+gate1, "alice")
	// Login and Chat may still be connecting to the broker: retry until served.
	mqtttest.Poll(t, "Login reachable across processes", func() bool {
		return alice.Request("Login/Handler_Login", 1, `{"userName":"alice","passWord":"x"}`).Error == ""
	})
	mqtttest.Poll(t, "Chat reachable across processes", func() bool {
		r := alice.Request("Chat/Handler_JoinChat", 1, `{"roomName":"lobby"}`)
		return r.Error == "" || r.Error == "Already in this chat room"
	})
	bob := mqtttest.NewPaho(t, "ws://"+gate2ws+"/mqtt", "bob")
	bob.LoginJoin("bob", "lobby")
	carol := mqtttest.NewPaho(t, "tcp://"+gate2, "carol")
	carol.LoginJoin("carol", "other")

	alice.Must("Chat/Handler_Say", `{"roomName":"lobby","say":"hi from gate1"}`)
	bob.WaitOne(func(m mqtttest.Msg) bool {
		return m.Topic == "Chat/OnSay" && m.Payload == `{"roomName":"lobby","say":"hi from gate1","userName":"alice"}`
	}, "bob on gate2 hears alice on gate1")
	bob.Must("Chat/Handler_Say", `{"roomName":"lobby","say":"hi from gate2"}`)
	alice.WaitOne(func(m mqtttest.Msg) bool {
		return m.Topic == "Chat/OnSay" && strings.Contains(m.Payload, "hi from gate2")
	}, "alice on gate1 hears bob on gate2")
	carol.Must("Chat/Handler_Say", `{"roomName":"other","say":"elsewhere"}`)
	carol.WaitOne(func(m mqtttest.Msg) bool { return strings.Contains(m.Payload, "elsewhere") }, "carol's own room")
	if n := len(carol.Find(func(m mqtttest.Msg) bool { return strings.Contains(m.Payload, "lobby") })); n != 0 {
		t.Errorf("carol got %d lobby messages", n)
	}
	if n := alice.Count("Chat/OnSay", "elsewhere"); n != 0 {
		t.Error("room isolation broken across processes")
	}
	// Bob leaves gate2: Chat hears of it across processes, alice gets OnLeave.
	bob.C.Disconnect(0)
	alice.WaitOne(func(m mqtttest.Msg) bool {
		return m.Topic == "Chat/OnLeave" && m.Payload == `{"roomName":"lobby","userName":"bob"}`
	}, "OnLeave across processes")
}

// startServer starts a server process logging to dir/name.log. At the end
// of the test it gets SIGINT (Ctrl+C) and must shut down cleanly on its own
// and say so in its log; the log is shown when the test failed.
func startServer(t *testing.T, dir, name, bin string, args ...string) {
	t.Helper()
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s exited with %v", name, err)
			}
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("%s did not stop on SIGINT", name)
		}
		logf.Close()
		b, _ := os.ReadFile(logf.Name())
		if !strings.Contains(string(b), "closing down") {
			t.Errorf("%s log lacks the shutdown line:\n%s", name, b)
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", name, b)
		}
	})
}

// freePorts returns n ports below the ephemeral range, free a moment ago:
// the processes that bind them start seconds later, while the test's own
// connections draw from the ephemeral range.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports, err := rabbittest.FreePorts(n)
	if err != nil {
		t.Fatal(err)
	}
	return ports
}

func waitListening(t *testing.T, addrs ...string) {
	t.Helper()
	for _, a := range addrs {
		mqtttest.Poll(t, a+" listening", func() bool {
			c, err := net.DialTimeout("tcp", a, time.Second)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
	}
}

// writeClusterConfig writes the cluster demo's config (gate1, gate2, Login,
// Chat, each its own process, one broker) with the gates on free loopback
// ports, and returns its path and the ports: gate1 TCP, gate1 WebSocket,
// gate2 TCP, gate2 WebSocket. logins > 1 adds instances Login2... in
// processes login2...: calls go to a type's shared queue, so an instance
// whose process is not started changes nothing.
func writeClusterConfig(t *testing.T, dir, brokerURI string, logins int) (string, []int) {
	t.Helper()
	ports := freePorts(t, 4)
	login := `{"Id": "Login1", "Host": "127.0.0.1", "ProcessID": "login"}`
	for i := 2; i <= logins; i++ {
		login += fmt.Sprintf(`,
               {"Id": "Login%d", "Host": "127.0.0.1", "ProcessID": "login%d"}`, i, i)
	}
	conf := fmt.Sprintf(`{
  "Rabbitmq": {"Uri": %q},
  "Module": {
    "Gate": [
      {"Id": "Gate1", "Host": "127.0.0.1", "ProcessID": "gate1",
       "Settings": {"TCPAddr": "127.0.0.1:%d", "WSAddr": "127.0.0.1:%d"}},
      {"Id": "Gate2", "Host": "127.0.0.1", "ProcessID": "gate2",
       "Settings": {"TCPAddr": "127.0.0.1:%d", "WSAddr": "127.0.0.1:%d"}}
    ],
    "Login": [%s],
    "Chat":  [{"Id": "Chat1",  "Host": "127.0.0.1", "ProcessID": "chat"}]
  }
}`, brokerURI, ports[0], ports[1], ports[2], ports[3], login)
	confFile := filepath.Join(dir, "cluster.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return confFile, ports
}
