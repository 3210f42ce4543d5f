package gate_test

import (
	"context"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/demo/demotest"
	"github.com/mqantgen/mqantgen/gate"
	"github.com/mqantgen/mqantgen/generated/logingen"
	"github.com/mqantgen/mqantgen/internal/testkit/leakcheck"
	"github.com/mqantgen/mqantgen/internal/testkit/syncbuf"
)

// mosquittoTool returns the path of a mosquitto client tool; a missing one
// fails the test, naming the Debian package.
func mosquittoTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found (%v): install the Debian package mosquitto-clients (apt-get install -y mosquitto-clients)", name, err)
	}
	return p
}

type syncBuffer = syncbuf.Buffer

func hostPort(t *testing.T, addr string) (string, string) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}

// runMosquittoPub runs mosquitto_pub to completion and returns its output.
func runMosquittoPub(t *testing.T, addr string, args ...string) string {
	t.Helper()
	h, p := hostPort(t, addr)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, mosquittoTool(t, "mosquitto_pub"), append([]string{"-h", h, "-p", p}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mosquitto_pub %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// wantLines fails unless out contains each of the substrings, in order.
func wantLines(t *testing.T, out string, want ...string) {
	t.Helper()
	rest := out
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("output lacks %q (in this order: %q); output:\n%s", w, want, out)
		}
		rest = rest[i+len(w):]
	}
}

// loggedInOnce waits until the gate has no connections left (the client's
// packets have all been read and routed) and checks that user logged in
// exactly once and that exactly one PUBLISH was routed since before.
func loggedInOnce(t *testing.T, d *demotest.Demo, user string, requestsBefore int64) {
	t.Helper()
	poll(t, "mosquitto_pub's connection gone from the gate", func() bool { return d.Gate.Stats().Connections == 0 })
	login := logingen.NewLoginClient(d.App)
	var logins int
	poll(t, user+" logged in", func() bool {
		u, err := login.GetUser(t.Context(), user)
		if err != nil {
			return false
		}
		logins = u.Logins
		return true
	})
	if logins != 1 {
		t.Errorf("%s logged in %d times, want 1", user, logins)
	}
	if n := d.Gate.Stats().Requests - requestsBefore; n != 1 {
		t.Errorf("%d PUBLISHes routed, want 1", n)
	}
}

// TestMosquittoPub publishes a no-reply login with mosquitto_pub at QoS 1
// and 2 (MQTT 3.1.1) and at QoS 1 with MQTT 3.1: the tool sees the
// acknowledgement flow it expects and exits 0, and each login is handled
// exactly once.
func TestMosquittoPub(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, nil)
	for _, tc := range []struct {
		name, version, qos string
		flow               []string
	}{
		{"qos1", "mqttv311", "1", []string{"received CONNACK (0)", "sending PUBLISH (d0, q1", "received PUBACK (Mid: 1", "sending DISCONNECT"}},
		{"qos2", "mqttv311", "2", []string{"received CONNACK (0)", "sending PUBLISH (d0, q2", "received PUBREC (Mid: 1", "sending PUBREL (m1)", "received PUBCOMP (Mid: 1", "sending DISCONNECT"}},
		{"mqttv31", "mqttv31", "1", []string{"received CONNACK (0)", "sending PUBLISH (d0, q1", "received PUBACK (Mid: 1", "sending DISCONNECT"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			user := "mosq-" + tc.name
			before := d.Gate.Stats().Requests
			out := runMosquittoPub(t, d.TCPAddr, "-d", "-V", tc.version, "-q", tc.qos, "-i", "pub-"+tc.name,
				"-t", "Login/Handler_Login", "-m", `{"userName":"`+user+`","passWord":"x"}`)
			wantLines(t, out, tc.flow...)
			if strings.Contains(out, "received PUBLISH") {
				t.Errorf("a no-reply call got a reply:\n%s", out)
			}
			loggedInOnce(t, d, user, before)
		})
	}
}

// TestMosquittoSub subscribes with mosquitto_sub, then pushes to its
// session from a module's point of view (Session.Send and Broadcast):
// mosquitto_sub prints each topic and body.
func TestMosquittoSub(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, nil)
	sub := mosquittoTool(t, "mosquitto_sub")
	// mosquitto_sub's -d lines go through stdio, fully buffered on a pipe:
	// stdbuf makes them line buffered so the test sees them as they happen.
	stdbuf, err := exec.LookPath("stdbuf")
	if err != nil {
		t.Fatalf("stdbuf not found (%v): install the Debian package coreutils", err)
	}
	h, p := hostPort(t, d.TCPAddr)
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	cmd := exec.CommandContext(ctx, stdbuf, "-oL", sub, "-h", h, "-p", p, "-d", "-V", "mqttv311", "-t", "Chat/#", "-q", "1", "-v", "-i", "sub-client")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start mosquitto_sub: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	waitOutput := func(what string, want ...string) {
		t.Helper()
		poll(t, what, func() bool {
			s := out.String()
			for _, w := range want {
				if !strings.Contains(s, w) {
					return false
				}
			}
			return true
		})
	}
	waitOutput("mosquitto_sub's SUBACK", "received CONNACK (0)", "sending SUBSCRIBE", "Topic: Chat/#, QoS: 1", "received SUBACK", "Subscribed (mid: 1): 0")

	var data *core.SessionData
	for _, s := range d.Gate.Sessions() {
		if s.ClientID == "sub-client" {
			data = &s
		}
	}
	if data == nil {
		t.Fatalf("no session with client id sub-client among %+v", d.Gate.Sessions())
	}
	if err := gate.NewSession(d.App, data).Send(t.Context(), "Chat/OnSay", []byte(`{"roomName":"r","say":"hi mosquitto","userName":"m"}`)); err != nil {
		t.Fatalf("Session.Send: %v", err)
	}
	waitOutput("the pushed OnSay printed", `Chat/OnSay {"roomName":"r","say":"hi mosquitto","userName":"m"}`)
	members := []gate.Member{{ServerID: data.ServerID, SessionID: data.SessionID}}
	if err := gate.Broadcast(t.Context(), d.App, members, "Chat/OnJoin", []byte(`{"roomName":"r","userName":"n"}`)); err != nil {
		t.Fatalf("Broadcast: %v", err)
	}
	waitOutput("the broadcast OnJoin printed", `Chat/OnJoin {"roomName":"r","userName":"n"}`)
	// The gate publishes at QoS 0, without a packet id.
	wantLines(t, out.String(), "received PUBLISH (d0, q0, r0, m0, 'Chat/OnSay'", "received PUBLISH (d0, q0, r0, m0, 'Chat/OnJoin'")
	// Still connected: pushes do not disturb a subscriber.
	if n := d.Gate.Stats().Connections; n != 1 {
		t.Errorf("%d connections after the pushes, want mosquitto_sub's 1; output:\n%s", n, out.String())
	}
}
