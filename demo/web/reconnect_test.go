package web_test

import (
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/mqantgen/mqantgen/demo/demotest"
	"github.com/mqantgen/mqantgen/internal/testkit/mqtttest"
)

// cutProxy stands between the browser and the gate's WebSocket port as a
// bad network would: the test can cut every connection without a
// DISCONNECT, hold the network down (new connections are closed at once),
// and blackhole what the browser sends (its requests never arrive).
type cutProxy struct {
	t      testing.TB
	ln     net.Listener
	target string

	mu      sync.Mutex
	down    bool
	black   bool
	dropped int // bytes the browser sent that were blackholed
	conns   map[net.Conn]bool
}

func newCutProxy(t testing.TB, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{t: t, ln: ln, target: target, conns: map[net.Conn]bool{}}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		p.cut()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.serve(c)
			}()
		}
	}()
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) serve(c net.Conn) {
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.conns[c] = true
	p.mu.Unlock()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[up] = true
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() {
		_, _ = io.Copy(up, blackholer{p, c})
		done <- struct{}{}
	}()
	go func() {
		_, _ = io.Copy(c, up)
		done <- struct{}{}
	}()
	<-done
	c.Close()
	up.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// blackholer reads from the browser and, while the proxy blackholes,
// forwards nothing of what it read.
type blackholer struct {
	p *cutProxy
	r io.Reader
}

func (b blackholer) Read(buf []byte) (int, error) {
	for {
		n, err := b.r.Read(buf)
		b.p.mu.Lock()
		black := b.p.black
		if black {
			b.p.dropped += n
		}
		b.p.mu.Unlock()
		if !black || err != nil {
			return n, err
		}
	}
}

// cut closes every connection through the proxy, both sides.
func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

func (p *cutProxy) set(down, black bool) {
	p.mu.Lock()
	p.down, p.black = down, black
	p.mu.Unlock()
}

// TestReconnectInBrowser cuts the page's WebSocket mid-chat with no
// DISCONNECT: the page shows it is reconnecting, a call in flight fails at
// once, others keep talking; when the network is back the session resumes:
// the player is still in the room (nobody saw it leave) and gets what was
// said meanwhile once each, in order; past the gate's bound it is told how
// many it missed.
func TestReconnectInBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s is missing (%v): install the chromium package (apt-get install -y chromium)", chromiumPath, err)
	}
	d := demotest.Start(t, map[string]any{"SessionQueueMax": 3})
	proxy := newCutProxy(t, d.WSAddr)
	browser := startBrowser(t)
	alice := browser.open(t, "alice", d.WebURL)
	bob := mqtttest.NewPaho(t, "tcp://"+d.TCPAddr, "bob-paho")

	alice.login("ws://"+proxy.addr()+"/mqtt", "alice", "pw-alice")
	alice.waitStatus("Logged in as alice")
	alice.joinRoom("badnet")
	bob.LoginJoin("bob", "badnet")
	alice.waitMessage("join", "bob", "bob joined")

	// A call in flight when the connection is cut fails at once with the
	// disconnected error, not after the 10 s timeout.
	proxy.set(false, true)
	alice.say("lost in the void")
	mqtttest.Poll(t, "the say request sent into the blackhole", func() bool {
		proxy.mu.Lock()
		defer proxy.mu.Unlock()
		return proxy.dropped > 0
	})
	proxy.set(true, false)
	proxy.cut()
	alice.waitError("connection lost: no reply on Chat/Handler_Say/")
	alice.waitJS("status reconnecting", `document.getElementById('status').textContent.startsWith('Reconnecting…')`)

	for i := 1; i <= 3; i++ {
		bob.Must("Chat/Handler_Say", fmt.Sprintf(`{"roomName":"badnet","say":"while away %d"}`, i))
	}
	proxy.set(false, false)
	alice.waitStatus("Logged in as alice")
	alice.waitMessage("say", "bob", "while away 3")
	alice.waitInfo("Reconnected.")
	alice.checkSays(t, "bob", "while away 1", "while away 2", "while away 3")

	// Still in the room: what alice says reaches bob, who never saw her leave.
	alice.say("back again")
	bob.WaitOne(func(m mqtttest.Msg) bool {
		return m.Topic == "Chat/OnSay" && strings.Contains(m.Payload, "back again")
	}, "alice's say after the resume")
	if n := bob.Count("Chat/OnLeave", "alice"); n != 0 {
		t.Errorf("bob saw alice leave %d times; a cut connection is not a leave", n)
	}

	alice.waitMessage("say", "alice", "back again")
	// A request sent after that push's PUBACK: once its reply is in, the
	// gate has the PUBACK (one connection, in order) and keeps nothing.
	alice.setValue("room", "elsewhere")
	alice.say("x")
	alice.waitError("No room")
	alice.setValue("room", "badnet")

	// Past the bound (SessionQueueMax 3) the oldest are dropped and the page says how many.
	proxy.set(true, false)
	proxy.cut()
	alice.waitJS("status reconnecting", `document.getElementById('status').textContent.startsWith('Reconnecting…')`)
	for i := 1; i <= 5; i++ {
		bob.Must("Chat/Handler_Say", fmt.Sprintf(`{"roomName":"badnet","say":"overflow %d"}`, i))
	}
	proxy.set(false, false)
	alice.waitMessage("say", "bob", "overflow 5")
	alice.waitInfo("2 messages missed")
	alice.checkSays(t, "bob", "while away 1", "while away 2", "while away 3", "overflow 3", "overflow 4", "overflow 5")
	var order []string
	if err := alice.eval(`Array.from(document.querySelectorAll('#messages li')).map(li => li.querySelector('.text')?.textContent ?? '')
		.filter(t => t === '2 messages missed' || t.startsWith('overflow'))`, &order); err != nil {
		t.Fatal(err)
	}
	if want := []string{"2 messages missed", "overflow 3", "overflow 4", "overflow 5"}; strings.Join(order, "|") != strings.Join(want, "|") {
		t.Errorf("after the second cut the page shows %q, want %q", order, want)
	}
	if n := bob.Count("Chat/OnLeave", "alice"); n != 0 {
		t.Errorf("bob saw alice leave %d times", n)
	}
	alice.screenshot(artifactDir(t) + "/reconnect.png")
}

// TestReloginInBrowserAfterExpiry: the network stays down past
// SessionExpiry, the session ends (others see the player leave); when the
// page is back the gate starts a new session (not resumed) and the page
// logs in and joins its rooms again by itself.
func TestReloginInBrowserAfterExpiry(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s is missing (%v): install the chromium package (apt-get install -y chromium)", chromiumPath, err)
	}
	d := demotest.Start(t, map[string]any{"SessionExpiry": "300ms"})
	proxy := newCutProxy(t, d.WSAddr)
	browser := startBrowser(t)
	alice := browser.open(t, "alice", d.WebURL)
	bob := mqtttest.NewPaho(t, "tcp://"+d.TCPAddr, "bob-paho")

	alice.login("ws://"+proxy.addr()+"/mqtt", "alice", "pw-alice")
	alice.waitStatus("Logged in as alice")
	alice.joinRoom("expiry")
	bob.LoginJoin("bob", "expiry")
	alice.waitMessage("join", "bob", "bob joined")

	proxy.set(true, false)
	proxy.cut()
	bob.WaitOne(func(m mqtttest.Msg) bool {
		return m.Topic == "Chat/OnLeave" && strings.Contains(m.Payload, `"alice"`)
	}, "alice's session expiring")
	proxy.set(false, false)
	alice.waitInfo("The session was not resumed: logging in again.")
	alice.waitStatus("Logged in as alice")
	bob.WaitOne(func(m mqtttest.Msg) bool { // bob joined after alice: this is her second join
		return m.Topic == "Chat/OnJoin" && strings.Contains(m.Payload, `"alice"`)
	}, "alice joining again")
	alice.say("new session")
	bob.WaitOne(func(m mqtttest.Msg) bool {
		return m.Topic == "Chat/OnSay" && strings.Contains(m.Payload, "new session")
	}, "alice's say in her new session")
}

func (p *page) joinRoom(room string) {
	p.t.Helper()
	p.setValue("room", room)
	p.click("join")
	p.waitJS("joined "+room, fmt.Sprintf(`document.getElementById('joined').textContent.split(', ').includes(%q)`, room))
}

func (p *page) setValue(id, value string) {
	p.t.Helper()
	p.do(chromedp.SetValue(chromedp.ID(id), value))
}

func (p *page) click(id string) {
	p.t.Helper()
	p.do(chromedp.Click(chromedp.ID(id)))
}

// waitInfo waits for an info line (the page's own notes) reading text.
func (p *page) waitInfo(text string) {
	p.t.Helper()
	p.waitJS("info "+text, fmt.Sprintf(`Array.from(document.querySelectorAll('#messages li')).some(li =>
		li.dataset.kind === 'info' && li.querySelector('.text')?.textContent === %q)`, text))
}

func (p *page) say(text string) {
	p.t.Helper()
	p.setValue("say-text", text)
	p.click("say")
}

// checkSays checks that the page shows exactly these says by user, once
// each, in this order.
func (p *page) checkSays(t testing.TB, user string, want ...string) {
	t.Helper()
	var got []string
	if err := p.eval(fmt.Sprintf(`Array.from(document.querySelectorAll('#messages li'))
		.filter(li => li.dataset.kind === 'say' && li.dataset.user === %q)
		.map(li => li.querySelector('.text')?.textContent ?? '')`, user), &got); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s's says on the page:\n  %s\nwant once each, in order:\n  %s\n%s", user,
			strings.Join(got, "\n  "), strings.Join(want, "\n  "), p.state())
	}
}
