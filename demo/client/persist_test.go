package client_test

import (
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/demo/demotest"
)

// proxy forwards TCP to the gate and lets a test cut every connection
// underneath its clients (no DISCONNECT), and refuse new ones for a while,
// as a bad network does.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  []net.Conn
	wg     sync.WaitGroup
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, s)
		go p.pipe(s, c)
	}
}

func (p *proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
}

// cut closes every connection through the proxy, both sides.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) setDown(down bool) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
}

// TestPythonClientResumesSession: the Python client with --persistent loses
// its TCP mid-chat (cut underneath, no DISCONNECT), cannot reconnect for a
// while, then does by itself: the session is resumed, the messages said
// meanwhile arrive once each and in order, and the room never saw it leave.
func TestPythonClientResumesSession(t *testing.T) {
	requirePaho(t)
	d := demotest.Start(t, nil)
	px := startProxy(t, d.TCPAddr)
	host, port, err := net.SplitHostPort(px.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	const room = "resume"
	gopher := dial(t, d.TCPAddr, "gopher-client")
	gopher.request(t, "Login/Handler_Login", map[string]string{"userName": "gopher", "passWord": "x"})
	gopher.request(t, "Chat/Handler_JoinChat", map[string]string{"roomName": room})

	py := startPython(t, "--host", host, "--port", port, "--user", "py", "--password", "secret", "--room", room,
		"--persistent", "--client-id", "py-phone", "--say", "before", "--expect", "3", "--timeout", "60")
	gopher.waitPush(t, py, "Chat/OnSay", `{"roomName":"resume","say":"before","userName":"py"}`)
	// The room's push may reach gopher before py has the reply to its say
	// (the gate queues the push while the handler runs): the cut comes
	// once nothing of py's is in flight, as the test means it.
	waitUntil(t, 10*time.Second, "py's reply to its say", func() bool {
		return strings.Contains(py.stdout.String(), "reply Chat/Handler_Say/")
	})

	px.setDown(true)
	px.cut()
	waitUntil(t, 10*time.Second, "the gate keeping py's session, away", func() bool { return d.Gate.Stats().SessionsAway == 1 })
	gopher.request(t, "Chat/Handler_Say", map[string]string{"roomName": room, "say": "while away 1"})
	gopher.request(t, "Chat/Handler_Say", map[string]string{"roomName": room, "say": "while away 2"})
	px.setDown(false)

	if code := py.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("python client exited %d, want 0\n%s", code, py.output())
	}
	out := py.stdout.String()
	if !strings.Contains(out, "reconnected: session resumed\n") {
		t.Errorf("no resume reported\n%s", py.output())
	}
	one, two := "push Chat/OnSay: gopher: while away 1\n", "push Chat/OnSay: gopher: while away 2\n"
	if strings.Count(out, one) != 1 || strings.Count(out, two) != 1 || strings.Index(out, one) > strings.Index(out, two) {
		t.Errorf("the missed messages, once each and in order:\n%s", py.output())
	}
	if strings.Count(out, "push Chat/OnSay: py: before\n") != 1 {
		t.Errorf("py's own say shown other than once:\n%s", py.output())
	}
	if _, left := gopher.find("Chat/OnLeave", func([]byte) bool { return true }); left {
		t.Errorf("gopher saw a leave:\n%s", gopher.dump())
	}
}
