package client_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqantgen/mqantgen/demo/demotest"
	"github.com/mqantgen/mqantgen/internal/testkit/syncbuf"
)

// python is Debian's interpreter, the one that sees python3-paho-mqtt.
const python = "/usr/bin/python3"

const script = "mqtt_chat_client.py"

// TestPythonAndGoClientsChat has the Python client (user py) and an Eclipse
// Paho Go client (user gopher) meet in one room and hear each other.
func TestPythonAndGoClientsChat(t *testing.T) {
	requirePaho(t)
	d := demotest.Start(t, nil)
	host, port, err := net.SplitHostPort(d.TCPAddr)
	if err != nil {
		t.Fatal(err)
	}
	const room = "pyroom"

	gopher := dial(t, d.TCPAddr, "gopher-client")
	if got := gopher.request(t, "Login/Handler_Login", map[string]string{"userName": "gopher", "passWord": "x"}); got != "login success gopher" {
		t.Fatalf("login result = %q", got)
	}
	gopher.request(t, "Chat/Handler_JoinChat", map[string]string{"roomName": room})

	py := startPython(t, "--host", host, "--port", port, "--user", "py", "--password", "secret",
		"--room", room, "--say", "hello from py", "--expect", "2", "--timeout", "30")

	// py joins and says hello; then gopher answers, which is py's second OnSay.
	gopher.waitPush(t, py, "Chat/OnJoin", `{"roomName":"pyroom","userName":"py"}`)
	gopher.waitPush(t, py, "Chat/OnSay", `{"roomName":"pyroom","say":"hello from py","userName":"py"}`)
	gopher.request(t, "Chat/Handler_Say", map[string]string{"roomName": room, "say": "hello from go"})

	if code := py.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("python client exited %d, want 0\n%s", code, py.output())
	}
	out := py.stdout.String()
	for _, want := range []string{
		"reply Login/Handler_Login/1: login success py\n",
		"push Chat/OnJoin: py joined pyroom\n",
		"reply Chat/Handler_JoinChat/2: join success\n",
		"reply Chat/Handler_Say/3: say success\n",
		"push Chat/OnSay: py: hello from py\n",
		"push Chat/OnSay: gopher: hello from go\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("python output lacks %q\n%s", want, py.output())
		}
	}
	// py's connection closed: the room hears that py left.
	gopher.waitPush(t, nil, "Chat/OnLeave", `{"roomName":"pyroom","userName":"py"}`)
}

// TestPythonClientFailures checks the scripted client's exit codes and messages.
func TestPythonClientFailures(t *testing.T) {
	requirePaho(t)
	d := demotest.Start(t, nil)
	host, port, err := net.SplitHostPort(d.TCPAddr)
	if err != nil {
		t.Fatal(err)
	}
	_, deadPort, err := net.SplitHostPort(deadAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		code     int
		inStderr string
	}{
		{"server error", []string{"--port", port, "--user", "nopw", "--password", "", "--say", "x"},
			1, "server error: userName or passWord cannot be nil"},
		{"connection refused", []string{"--port", deadPort, "--say", "x"},
			3, "cannot connect to " + host + ":" + deadPort},
		{"timeout", []string{"--port", port, "--user", "lonely", "--room", "empty", "--expect", "1", "--timeout", "1.5"},
			1, "timed out with 0 of 1 Chat/OnSay pushes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startPython(t, append([]string{"--host", host}, tt.args...)...)
			if code := p.wait(t, 20*time.Second); code != tt.code {
				t.Errorf("exit code %d, want %d\n%s", code, tt.code, p.output())
			}
			if !strings.Contains(p.stderr.String(), tt.inStderr) {
				t.Errorf("stderr lacks %q\n%s", tt.inStderr, p.output())
			}
		})
	}
}

// TestPythonClientInteractive types lines as a person would: a say before
// joining is refused and reported, then "join" and a say work.
func TestPythonClientInteractive(t *testing.T) {
	requirePaho(t)
	d := demotest.Start(t, nil)
	host, port, err := net.SplitHostPort(d.TCPAddr)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, script, "--host", host, "--port", port, "--user", "typist", "--room", "desk")
	cmd.Stdin = strings.NewReader("too soon\njoin\nhi there\nquit\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("python client: %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("python client did not finish\nstdout:\n%s\nstderr:\n%s", &stdout, &stderr)
	}
	for _, want := range []string{
		"reply Login/Handler_Login/1: login success typist\n",
		"reply Chat/Handler_JoinChat/3: join success\n",
		"reply Chat/Handler_Say/4: say success\n",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout lacks %q\nstdout:\n%s\nstderr:\n%s", want, &stdout, &stderr)
		}
	}
	if want := "server error: No room"; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr lacks %q\nstderr:\n%s", want, &stderr)
	}
}

func requirePaho(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("%s is missing (%v): install python3 and python3-paho-mqtt (apt-get install -y python3-paho-mqtt)", python, err)
	}
	if out, err := exec.Command(python, "-c", "import paho.mqtt.client").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import paho.mqtt.client (%v): install python3-paho-mqtt (apt-get install -y python3-paho-mqtt)\n%s", python, err, out)
	}
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// waitUntil polls cond until it holds or within passes.
func waitUntil(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type syncBuffer = syncbuf.Buffer

// pyProcess is a running mqtt_chat_client.py.
type pyProcess struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{}
	err            error // cmd.Wait's result, once done is closed
}

func startPython(t testing.TB, args ...string) *pyProcess {
	t.Helper()
	p := &pyProcess{stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(python, append([]string{script}, args...)...)
	p.cmd.Stdin = nil // scripted: no input
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s %s: %v", python, script, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *pyProcess) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits for the process to exit and returns its exit code.
func (p *pyProcess) wait(t testing.TB, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("python client still running after %v; killed\n%s", within, p.output())
	}
	var exit *exec.ExitError
	if p.err != nil && !errors.As(p.err, &exit) {
		t.Fatalf("python client: %v", p.err)
	}
	return p.cmd.ProcessState.ExitCode()
}

func (p *pyProcess) output() string {
	return fmt.Sprintf("python stdout:\n%s\npython stderr:\n%s", p.stdout, p.stderr)
}

// goClient is an Eclipse Paho Go client that records every message it gets.
type goClient struct {
	c     mqtt.Client
	msgid int

	mu   sync.Mutex
	msgs []received
}

type received struct {
	topic   string
	payload []byte
}

func dial(t testing.TB, addr, clientID string) *goClient {
	t.Helper()
	g := &goClient{}
	opts := mqtt.NewClientOptions().
		AddBroker("tcp://" + addr).
		SetClientID(clientID).
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetKeepAlive(30 * time.Second).
		SetAutoReconnect(false).
		SetConnectTimeout(5 * time.Second).
		// The gate sends replies and pushes without a subscription; Paho
		// hands such messages to the default handler.
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			g.mu.Lock()
			defer g.mu.Unlock()
			g.msgs = append(g.msgs, received{m.Topic(), append([]byte(nil), m.Payload()...)})
		})
	g.c = mqtt.NewClient(opts)
	if tok := g.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("paho connect to %s: %v", addr, tok.Error())
	}
	t.Cleanup(func() { g.c.Disconnect(250) })
	return g
}

func (g *goClient) find(topic string, match func([]byte) bool) ([]byte, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, m := range g.msgs {
		if m.topic == topic && match(m.payload) {
			return m.payload, true
		}
	}
	return nil, false
}

func (g *goClient) dump() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var b strings.Builder
	for _, m := range g.msgs {
		fmt.Fprintf(&b, "  %s %s\n", m.topic, m.payload)
	}
	return b.String()
}

// request publishes body on route/<msgid>, waits for the reply and returns
// its Result as a string; a reply with an Error fails the test.
func (g *goClient) request(t testing.TB, route string, body any) string {
	t.Helper()
	g.msgid++
	topic := fmt.Sprintf("%s/%d", route, g.msgid)
	payload, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	if tok := g.c.Publish(topic, 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
	var raw []byte
	waitUntil(t, 10*time.Second, "reply on "+topic, func() bool {
		var ok bool
		raw, ok = g.find(topic, func([]byte) bool { return true })
		return ok
	})
	var reply struct {
		Error  string
		Result json.RawMessage
	}
	if err := json.Unmarshal(raw, &reply); err != nil {
		t.Fatalf("reply %s: %v: %s", topic, err, raw)
	}
	if reply.Error != "" {
		t.Fatalf("reply %s: server error %q", topic, reply.Error)
	}
	var result string
	_ = json.Unmarshal(reply.Result, &result)
	return result
}

// waitPush waits for a push on topic whose JSON body equals want. If py is
// not nil and exits first, the test fails at once with its output.
func (g *goClient) waitPush(t testing.TB, py *pyProcess, topic, want string) {
	t.Helper()
	var wantV any
	if err := json.Unmarshal([]byte(want), &wantV); err != nil {
		t.Fatal(err)
	}
	wantJSON, _ := json.Marshal(wantV)
	equal := func(b []byte) bool {
		var v any
		if json.Unmarshal(b, &v) != nil {
			return false
		}
		got, _ := json.Marshal(v)
		return bytes.Equal(got, wantJSON)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, ok := g.find(topic, equal); ok {
			return
		}
		if py != nil && py.exited() {
			t.Fatalf("python client exited before gopher got %s %s\n%s\ngopher got:\n%s", topic, want, py.output(), g.dump())
		}
		if time.Now().After(deadline) {
			msg := fmt.Sprintf("gopher never got %s %s; it got:\n%s", topic, want, g.dump())
			if py != nil {
				msg += py.output()
			}
			t.Fatal(msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
