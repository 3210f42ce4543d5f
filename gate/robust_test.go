package gate_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/demo/demotest"
	"github.com/mqantgen/mqantgen/gate"
	"github.com/mqantgen/mqantgen/gate/packets"
	"github.com/mqantgen/mqantgen/internal/testkit/leakcheck"
	"github.com/mqantgen/mqantgen/internal/testkit/mqtttest"
)

// probe is a module with misbehaving and observing handlers, its
// descriptor table written out by hand.
type probe struct {
	core.BaseModule
	release chan struct{} // unblocks Handler_Hang and Handler_SlowLogin
	hung    atomic.Int32

	failFirst int32 // OnSessionClosed fails this many times per session
	mu        sync.Mutex
	attempts  map[string]int32 // session -> OnSessionClosed calls
}

func newProbe() *probe {
	return &probe{release: make(chan struct{}), attempts: map[string]int32{}}
}

func (m *probe) GetType() string { return "Probe" }

func (m *probe) OnInit(app *core.App, s *core.ModuleSettings) error {
	m.Init(app, s)
	m.RPCServer().Register(&core.ModuleDesc{Type: "Probe", Methods: []core.MethodDesc{
		// Ignores its context: only the gate's watchdog can answer for it.
		{Name: "Handler_Hang", Handler: func(_ any, _ context.Context, _ core.Invoker, _ *core.Request) (any, error) {
			m.hung.Add(1)
			<-m.release
			return "finally", nil
		}},
		// Writes through Data(), which must not reach the gate's session.
		{Name: "Handler_Evil", Handler: func(_ any, _ context.Context, inv core.Invoker, req *core.Request) (any, error) {
			s := gate.NewSession(inv, req.Session)
			d := s.Data()
			d.UserID = "root"
			if d.Settings == nil {
				d.Settings = map[string]string{}
			}
			d.Settings["role"] = "admin"
			return "tried", nil
		}},
		{Name: "Handler_Panic", Handler: func(_ any, _ context.Context, _ core.Invoker, _ *core.Request) (any, error) {
			panic("probe panics")
		}},
		// A login that takes its time, then binds.
		{Name: "Handler_SlowLogin", Handler: func(_ any, ctx context.Context, inv core.Invoker, req *core.Request) (any, error) {
			<-m.release
			s := gate.NewSession(inv, req.Session)
			return "bound", s.Bind(ctx, strings.Trim(string(req.Raw), `"`))
		}},
		{Name: "Handler_Full", Handler: func(_ any, _ context.Context, _ core.Invoker, _ *core.Request) (any, error) {
			return nil, core.CodeErrorf("room_full", "room %s is full", "abc")
		}},
		// A game's own code that reuses a framework code's name.
		{Name: "Handler_NoRoom", Handler: func(_ any, _ context.Context, _ core.Invoker, _ *core.Request) (any, error) {
			return nil, core.CodeErrorf("not_found", "room %s not found", "abc")
		}},
		{Name: "Handler_Plain", Handler: func(_ any, _ context.Context, _ core.Invoker, _ *core.Request) (any, error) {
			return nil, errors.New("no such room")
		}},
		// Calls a module type the deployment does not have: the client must
		// not learn the name, or the broker's, from the error.
		{Name: "Handler_Nested", Handler: func(_ any, ctx context.Context, inv core.Invoker, _ *core.Request) (any, error) {
			_, err := inv.Invoke(ctx, core.Target{Type: "SecretBackend"}, &core.Request{Fn: "Handler_X"})
			return nil, err
		}},
		{Name: "OnSessionClosed", Handler: func(_ any, _ context.Context, _ core.Invoker, req *core.Request) (any, error) {
			m.mu.Lock()
			m.attempts[req.Session.SessionID]++
			n := m.attempts[req.Session.SessionID]
			m.mu.Unlock()
			if n <= m.failFirst {
				return nil, core.Errorf(core.ErrTransport, "listener unreachable (attempt %d)", n)
			}
			return nil, nil
		}},
	}}, m)
	return nil
}

func (m *probe) closeAttempts(session string) int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.attempts[session]
}

func probeExtra(m *probe) demotest.Extra {
	return demotest.Extra{Type: "Probe", New: func() core.Module { return m }}
}

// TestHandlerIgnoringItsDeadline: an in-process handler that never looks
// at its context still times out for the client at the RPC deadline, the
// calls queued behind it run, and closing the connection and stopping the
// gate finish in bounded time while it is still stuck.
func TestHandlerIgnoringItsDeadline(t *testing.T) {
	leakcheck.Check(t)
	p := newProbe()
	d := demotest.StartWith(t, demotest.Options{RPCTimeout: 500 * time.Millisecond, Extras: []demotest.Extra{probeExtra(p)}})
	c := mqtttest.Connect(t, d.TCPAddr, "hang", 30)
	start := time.Now()
	c.Send(&packets.Publish{Topic: "Probe/Handler_Hang/1", Payload: []byte(`{}`)})
	c.Send(&packets.Publish{Topic: "Probe/Handler_Hang/2", Payload: []byte(`{}`)})
	for _, id := range []string{"1", "2"} {
		got := c.WaitPublish("Probe/Handler_Hang/"+id, 5*time.Second)
		if want := `{"Error":"call Probe.Handler_Hang: deadline exceeded","Code":"timeout","Result":null}`; string(got.Payload) != want {
			t.Fatalf("reply %s: %s, want %s", id, got.Payload, want)
		}
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("two stuck calls answered after %v; want about 2 x 500ms", took)
	}
	if n := p.hung.Load(); n != 2 {
		t.Errorf("%d stuck calls started, want 2 (the second runs once the first is abandoned)", n)
	}
	// The connection still works, and other modules too.
	if got := c.Request("Login/Handler_Login/3", `{"userName":"h","passWord":"x"}`); !strings.Contains(got, "login success") {
		t.Fatalf("after abandoned calls: %s", got)
	}
	if s := d.Gate.Stats(); s.Abandoned != 2 {
		t.Errorf("Abandoned = %d, want 2", s.Abandoned)
	}
	d.Logs.WaitFor(t, "handler ignored its deadline", 5*time.Second)

	// A third stuck call, then the client leaves: the close (and the
	// session-closed event) does not wait for the handler.
	c.Send(&packets.Publish{Topic: "Probe/Handler_Hang/4", Payload: []byte(`{}`)})
	poll(t, "third call running", func() bool { return p.hung.Load() == 3 })
	c.Conn.Close()
	closedAt := time.Now()
	poll(t, "connection unregistered", func() bool { return d.Gate.Stats().Connections == 0 })
	if took := time.Since(closedAt); took > 3*time.Second {
		t.Errorf("close took %v with a stuck handler; want within the RPC timeout", took)
	}
	// Shutdown with a stuck handler on a live connection is bounded too.
	c2 := mqtttest.Connect(t, d.TCPAddr, "hang2", 30)
	c2.Send(&packets.Publish{Topic: "Probe/Handler_Hang/5", Payload: []byte(`{}`)})
	poll(t, "fourth call running", func() bool { return p.hung.Load() == 4 })
	stopAt := time.Now()
	d.App.Stop("test")
	// Bounded by the gate's grace (2s) and the Probe server's drain timeout
	// (3s in demotest), which gives up on the stuck call and says so.
	if took := time.Since(stopAt); took > 6500*time.Millisecond {
		t.Errorf("shutdown took %v with a stuck handler", took)
	}
	d.Logs.WaitFor(t, "rpc server closed with calls still running", time.Second)
	if strings.Contains(d.Logs.String(), "module Run did not return") {
		t.Error("gate's Run did not return in time at shutdown")
	}
	close(p.release)
}

// TestSessionDataIsACopy: a module cannot change the gate's session by
// writing to what Session.Data returns.
func TestSessionDataIsACopy(t *testing.T) {
	leakcheck.Check(t)
	p := newProbe()
	d := demotest.StartWith(t, demotest.Options{Extras: []demotest.Extra{probeExtra(p)}})
	c := mqtttest.Connect(t, d.TCPAddr, "evil", 30)
	if got := c.Request("Probe/Handler_Evil/1", `{}`); got != `{"Error":"","Result":"tried"}` {
		t.Fatalf("evil: %s", got)
	}
	for _, s := range d.Gate.Sessions() {
		if s.UserID != "" || s.Settings["role"] != "" {
			t.Errorf("gate's session changed through Data(): %+v", s)
		}
	}
}

// TestLateBindNeverTakesAUserOver: a login still running when its client
// left finishes after the same user logged in on a new connection; it must
// neither close the new connection nor take the user.
func TestLateBindNeverTakesAUserOver(t *testing.T) {
	leakcheck.Check(t)
	p := newProbe()
	d := demotest.StartWith(t, demotest.Options{Extras: []demotest.Extra{probeExtra(p)}})
	old := mqtttest.Connect(t, d.TCPAddr, "player-old", 30)
	old.Send(&packets.Publish{Topic: "Probe/Handler_SlowLogin/1", Payload: []byte(`"player"`)})
	old.Conn.Close()
	poll(t, "old connection closed", func() bool { return strings.Contains(d.Logs.String(), "connection closed by peer") })

	fresh := mqtttest.Connect(t, d.TCPAddr, "player-new", 30)
	if got := fresh.Request("Login/Handler_Login/1", `{"userName":"player","passWord":"x"}`); !strings.Contains(got, "login success") {
		t.Fatalf("new login: %s", got)
	}
	close(p.release) // the old connection's login now binds
	d.Logs.WaitFor(t, "late bind of a closed session refused", 5*time.Second)
	poll(t, "old connection unregistered", func() bool { return d.Gate.Stats().Connections == 1 })
	s, err := d.Gate.Lookup(t.Context(), "player")
	if err != nil || s == nil || s.ClientID != "player-new" {
		t.Fatalf("player bound to %+v (%v), want the new connection", s, err)
	}
	if got := fresh.Request("Chat/Handler_JoinChat/2", `{"roomName":"r"}`); !strings.Contains(got, "join success") {
		t.Fatalf("new connection after the late bind: %s", got)
	}
}

// TestSessionClosedDeliveredAtLeastOnce: session-closed events whose
// listener cannot be reached are retried until it answers.
func TestSessionClosedDeliveredAtLeastOnce(t *testing.T) {
	leakcheck.Check(t)
	p := newProbe()
	p.failFirst = 3
	d := demotest.StartWith(t, demotest.Options{
		Gate:   map[string]any{"SessionCloseListeners": []any{"Chat", "Probe"}},
		Extras: []demotest.Extra{probeExtra(p)},
	})
	var ids []string
	for _, name := range []string{"a", "b", "c"} {
		c := mqtttest.Connect(t, d.TCPAddr, "leaver-"+name, 30)
		c.Request("Login/Handler_Login/1", `{"userName":"`+name+`","passWord":"x"}`)
		ids = append(ids, d.Gate.Sessions()[0].SessionID)
		c.Conn.Close()
		poll(t, "unregistered", func() bool { return d.Gate.Stats().Connections == 0 })
	}
	for _, id := range ids {
		poll(t, "event for "+id+" delivered after 3 failures", func() bool { return p.closeAttempts(id) == 4 })
	}
	s := d.Gate.Stats()
	if s.CloseRetries < 9 || s.CloseEventsLost != 0 || s.CloseEventsSent < 6 {
		t.Errorf("retries %d, lost %d, sent %d; want >= 9, 0, >= 6 (3 to Chat, 3 to Probe)", s.CloseRetries, s.CloseEventsLost, s.CloseEventsSent)
	}
	d.Logs.WaitFor(t, "session-closed notifications flowing again", 5*time.Second)
}

// TestPushTopicsChecked: a push whose topic no client could receive is
// refused with an error instead of breaking the connection's writer, and
// pushes after it still go out.
func TestPushTopicsChecked(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, nil)
	c := mqtttest.Connect(t, d.TCPAddr, "pushed", 30)
	c.Request("Login/Handler_Login/1", `{"userName":"pushed","passWord":"x"}`)
	id := d.Gate.Sessions()[0].SessionID
	for _, topic := range []string{strings.Repeat("x", 70000), "", "a/#", "bad\xff", "nul\x00"} {
		err := d.Gate.Send(t.Context(), id, topic, []byte("x"))
		if !errors.Is(err, core.ErrBadRequest) || !strings.Contains(err.Error(), "invalid push topic") {
			t.Errorf("Send to topic of %d bytes: %v, want an invalid push topic error", len(topic), err)
		}
		if _, err := d.Gate.Broadcast(t.Context(), []string{id}, topic, []byte("x")); !errors.Is(err, core.ErrBadRequest) {
			t.Errorf("Broadcast to topic of %d bytes: %v, want an invalid push topic error", len(topic), err)
		}
	}
	if err := d.Gate.Send(t.Context(), id, "Chat/OnSay", []byte(`"after"`)); err != nil {
		t.Fatal(err)
	}
	if got := c.WaitPublish("Chat/OnSay", 5*time.Second); string(got.Payload) != `"after"` {
		t.Fatalf("push after refused ones: %s", got.Payload)
	}
	if s := d.Gate.Stats(); s.PushRefused != 10 {
		t.Errorf("PushRefused = %d, want 10", s.PushRefused)
	}
}

// TestSettingsErrors: bad gate settings stop start-up with every problem
// named by its JSON path, misspellings with the name meant.
func TestSettingsErrors(t *testing.T) {
	leakcheck.Check(t)
	for _, tc := range []struct {
		name     string
		settings map[string]any
		want     []string
	}{
		{"misspelt address", map[string]any{"TCPAdr": ":0", "TCPAddr": "", "WSAddr": ""},
			[]string{"Settings.TCPAdr: unknown gate setting; did you mean TCPAddr?", "Settings.TCPAddr: set TCPAddr or WSAddr"}},
		{"bad numbers", map[string]any{"MaxMsgLen": -1, "MaxInflight": 1.5, "MaxConnectionsPerIP": "ten"},
			[]string{"Settings.MaxMsgLen: want a whole number >= 64, got -1", "Settings.MaxInflight: want a whole number >= 1, got 1.5",
				"Settings.MaxConnectionsPerIP: want a whole number >= 0, got ten"}},
		{"bad durations and lists", map[string]any{"IdleTimeout": "soon", "WSOrigins": "http://a", "SessionCloseListeners": []any{"Chat", 3}},
			[]string{"Settings.IdleTimeout: want a positive duration", "Settings.WSOrigins: want an array of strings",
				"Settings.SessionCloseListeners[1]: want a non-empty string, got 3"}},
		{"misspelt listener", map[string]any{"SessionCloseListeners": []any{"Chat", "Chta"}},
			[]string{`Settings.SessionCloseListeners[1]: no module type "Chta" in the config; did you mean Chat?`}},
		{"listener without OnSessionClosed", map[string]any{"SessionCloseListeners": []any{"Login"}},
			[]string{"Settings.SessionCloseListeners[0]: module Login has no OnSessionClosed method to receive session-closed events"}},
		{"persistent session limits", map[string]any{"SessionExpiry": "48h", "SessionQueueMax": 70000, "SessionQueueBytes": 10,
			"SessionQueueAge": "-1s", "SessionInflight": 0},
			[]string{"Settings.SessionExpiry: at most 24h0m0s", "Settings.SessionQueueMax: at most 65000",
				"Settings.SessionQueueBytes: want a whole number >= 1024, got 10", "Settings.SessionQueueAge: want a positive duration",
				"Settings.SessionInflight: want a whole number >= 1, got 0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := demotest.StartErr(t, tc.settings)
			if err == nil {
				t.Fatal("started with bad settings")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestKeepAliveCountsWholePackets: the keep-alive deadline runs from the
// last complete packet, whatever the reads look like [MQTT-3.1.2-24].
func TestKeepAliveCountsWholePackets(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, map[string]any{"IdleTimeout": "1s", "MaxKeepAlive": "2s"})
	connect := func(id string, ka uint16) []byte {
		return (&packets.Connect{ProtocolName: "MQTT", ProtocolLevel: 4, CleanSession: true, KeepAlive: ka, ClientID: id}).AppendTo(nil)
	}
	closedWithin := func(name string, c *mqtttest.Client, lo, hi time.Duration) {
		t.Helper()
		start := time.Now()
		if !c.WaitClosed(hi + 2*time.Second) {
			t.Errorf("%s: still open after %v", name, hi+2*time.Second)
			return
		}
		if took := time.Since(start); took < lo || took > hi {
			t.Errorf("%s: closed after %v, want %v-%v", name, took, lo, hi)
		}
	}
	// CONNECT and the first byte of a PINGREQ in one write: closed 1.5s on.
	c1 := mqtttest.Dial(t, d.TCPAddr)
	c1.Write(append(connect("straggler", 1), 0xC0))
	if ack, ok := c1.Next(5 * time.Second).(*packets.Connack); !ok || ack.ReturnCode != 0 {
		t.Fatalf("CONNACK: %#v", ack)
	}
	// A PUBLISH dribbled one byte per 300ms never extends the deadline.
	c2 := mqtttest.Connect(t, d.TCPAddr, "dribbler", 1)
	go func() {
		for _, b := range (&packets.Publish{Topic: "Login/Handler_Login/1", Payload: []byte(`{"userName":"d"}`)}).AppendTo(nil) {
			if _, err := c2.Conn.Write([]byte{b}); err != nil {
				return
			}
			time.Sleep(300 * time.Millisecond) // the attacker's pace
		}
	}()
	// Keep-alive 0 gets IdleTimeout; keep-alive 60 is held to MaxKeepAlive.
	c3 := mqtttest.Connect(t, d.TCPAddr, "zero", 0)
	c4 := mqtttest.Connect(t, d.TCPAddr, "greedy", 60)
	// Packets straddling writes every 300ms: each write ends one PINGREQ
	// and starts the next. It stays connected.
	c5 := mqtttest.Dial(t, d.TCPAddr)
	c5.Write(append(connect("straddler", 1), 0xC0))
	c5.Next(5 * time.Second)
	stop := time.Now().Add(3 * time.Second)
	for time.Now().Before(stop) {
		time.Sleep(300 * time.Millisecond) // the client's pace
		c5.Write([]byte{0x00, 0xC0})
		if _, ok := c5.Next(2 * time.Second).(*packets.Pingresp); !ok {
			t.Fatal("straddling client: no PINGRESP")
		}
	}
	closedWithin("CONNECT + partial PINGREQ", c1, 0, 2*time.Second) // 1.5s from CONNECT, partly spent above
	closedWithin("dribbled PUBLISH", c2, 0, 2*time.Second)
	closedWithin("keep-alive 0", c3, 0, 2*time.Second)
	closedWithin("keep-alive 60 over MaxKeepAlive 2s", c4, 0, 2*time.Second)
	if c5.WaitClosed(100 * time.Millisecond) {
		t.Error("straddling client closed although it kept sending whole packets")
	}
	if s := d.Gate.Stats(); s.KeepAliveLost != 4 {
		t.Errorf("KeepAliveLost = %d, want 4", s.KeepAliveLost)
	}
}

// TestShutdownAnswersCallsInFlight: a gate that stops lets the calls in
// flight finish and delivers their replies before closing connections.
func TestShutdownAnswersCallsInFlight(t *testing.T) {
	leakcheck.Check(t)
	slow := newSlow()
	d := demotest.Start(t, nil, slowExtra(slow))
	c := mqtttest.Connect(t, d.TCPAddr, "leaving", 30)
	c.Send(&packets.Publish{Topic: "Slow/Handler_Wait/1", Payload: []byte(`"last"`)})
	<-slow.order
	stopped := make(chan struct{})
	go func() { d.App.Stop("test"); close(stopped) }()
	poll(t, "listeners closed", func() bool {
		nc, err := net.DialTimeout("tcp", d.TCPAddr, time.Second)
		if err == nil {
			nc.Close()
		}
		return err != nil
	})
	close(slow.release)
	got := c.WaitPublish("Slow/Handler_Wait/1", 5*time.Second)
	if string(got.Payload) != `{"Error":"","Result":"waited \"last\""}` {
		t.Fatalf("reply at shutdown: %s", got.Payload)
	}
	if !c.WaitClosed(5 * time.Second) {
		t.Fatal("connection not closed at shutdown")
	}
	<-stopped
}

// TestLocalSessionCallsAreDirect: a handler's Bind to a gate in its own
// process is a direct call: it allocates a fraction of an RPC round trip
// and starts no goroutine or timer.
func TestLocalSessionCallsAreDirect(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, nil)
	mqtttest.Connect(t, d.TCPAddr, "direct", 30)
	data := d.Gate.Sessions()[0]
	s := gate.NewSession(d.App, &data)
	ctx := context.Background()
	direct := testing.AllocsPerRun(200, func() {
		if err := s.Bind(ctx, "direct-user"); err != nil {
			t.Fatal(err)
		}
	})
	rpc := testing.AllocsPerRun(200, func() {
		if _, err := gate.NewGateClient(d.App).To(data.ServerID).Bind(ctx, data.SessionID, "direct-user"); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("Bind: %.0f allocations direct, %.0f through the gate's RPC server", direct, rpc)
	if direct > 6 || direct >= rpc {
		t.Errorf("direct Bind makes %.0f allocations (RPC: %.0f); want at most 6 and fewer", direct, rpc)
	}
}

// TestReplyNotHeldBehindSlowCall: replies of a burst are written together,
// but a fast call's reply never waits for a slow call behind it.
func TestReplyNotHeldBehindSlowCall(t *testing.T) {
	leakcheck.Check(t)
	p := newProbe()
	d := demotest.StartWith(t, demotest.Options{Extras: []demotest.Extra{probeExtra(p)}})
	c := mqtttest.Connect(t, d.TCPAddr, "burst", 30)
	b := (&packets.Publish{Topic: "Probe/Handler_Evil/1", Payload: []byte(`{}`)}).AppendTo(nil)
	c.Write((&packets.Publish{Topic: "Probe/Handler_Hang/2", Payload: []byte(`{}`)}).AppendTo(b))
	start := time.Now()
	c.WaitPublish("Probe/Handler_Evil/1", 2*time.Second) // fails the test if held behind Hang
	if took := time.Since(start); took > time.Second {
		t.Errorf("fast reply took %v behind a slow call", took)
	}
	close(p.release)
	c.WaitPublish("Probe/Handler_Hang/2", 5*time.Second)
}

// TestClosedConnectionSkipsExpiredCalls: calls queued behind a stuck one
// on a connection that closed never start once the stuck one is abandoned
// (and none starts more than the RPC timeout after the close), so a close
// is bounded by one timeout, not one per queued call.
func TestClosedConnectionSkipsExpiredCalls(t *testing.T) {
	leakcheck.Check(t)
	p := newProbe()
	// The timeout leaves the gate a second to see the close: with less, a
	// loaded machine saw the stuck call abandoned before the close was read.
	d := demotest.StartWith(t, demotest.Options{RPCTimeout: time.Second, Extras: []demotest.Extra{probeExtra(p)}})
	c := mqtttest.Connect(t, d.TCPAddr, "leaver", 30)
	var b []byte
	for i := 1; i <= 6; i++ {
		b = (&packets.Publish{Topic: "Probe/Handler_Hang/" + string(rune('0'+i)), Payload: []byte(`{}`)}).AppendTo(b)
	}
	c.Write(b)
	poll(t, "first call running", func() bool { return p.hung.Load() == 1 })
	// The scenario, not a wait for something: the connection closes well
	// into its stuck call's timeout, so the next call's own deadline (the
	// timeout after the close) is still ahead when the stuck one is
	// abandoned; it must not start anyway.
	time.Sleep(300 * time.Millisecond)
	c.Conn.Close()
	closedAt := time.Now()
	poll(t, "connection unregistered", func() bool { return d.Gate.Stats().Connections == 0 })
	if took := time.Since(closedAt); took > 3*time.Second {
		t.Errorf("close took %v with 5 calls queued behind a stuck one; want about one RPC timeout", took)
	}
	if n := p.hung.Load(); n != 1 {
		t.Errorf("%d stuck calls started; want 1 (the queued ones expired with their connection)", n)
	}
	close(p.release)
}

// TestHTTPWithoutBodyClosed: an HTTP request to the WebSocket port whose
// announced body never comes is closed at ConnectTimeout, and a socket
// before CONNECT does not hold up the gate's shutdown.
func TestHTTPWithoutBodyClosed(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, map[string]any{"ConnectTimeout": "500ms"})
	nc, err := net.Dial("tcp", d.WSAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Write([]byte("POST /mqtt HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 512)
	for {
		if _, err := nc.Read(buf); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("socket still open 5s after a request whose body never came")
			}
			break
		}
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("closed after %v, want about ConnectTimeout (500ms)", took)
	}
	// A raw socket that never sends CONNECT, then shutdown: not waited for.
	idle, err := net.Dial("tcp", d.TCPAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	poll(t, "socket accepted", func() bool { return d.Gate.Stats().Sockets >= 1 })
	stopAt := time.Now()
	d.App.Stop("test")
	if took := time.Since(stopAt); took > time.Second {
		t.Errorf("shutdown took %v with a socket before CONNECT", took)
	}
}

// TestErrorCodes: every error reply carries a stable code beside its text;
// a handler's own code crosses to the client; a failure further on than
// the client's own route does not name the deployment's internals.
func TestErrorCodes(t *testing.T) {
	leakcheck.Check(t)
	p := newProbe()
	d := demotest.StartWith(t, demotest.Options{Extras: []demotest.Extra{probeExtra(p)}})
	c := mqtttest.Connect(t, d.TCPAddr, "codes", 30)
	var nested string
	for i, tc := range []struct {
		topic, payload, want string
	}{
		{"Probe/Handler_Full", `{}`, `{"Error":"room abc is full","Code":"room_full","Result":null}`},
		{"Probe/Handler_NoRoom", `{}`, `{"Error":"room abc not found","Code":"not_found","Result":null}`},
		{"Probe/Handler_Plain", `{}`, `{"Error":"no such room","Code":"error","Result":null}`},
		{"Probe/Handler_Nope", `{}`, `{"Error":"Remote function(Handler_Nope) not found","Code":"not_found","Result":null}`},
		{"Nowhere/Handler_X", `{}`, `{"Error":"Service(type:Nowhere) not found","Code":"not_found","Result":null}`},
		{"Probe/Say", `{}`, `{"Error":"Method(Say) must begin with 'Handler_'","Code":"bad_route","Result":null}`},
		{"Probe/Handler_Full", `{not json`, `{"Error":"body must be JSON format","Code":"bad_json","Result":null}`},
		{"Login/Handler_Login", `{"userName":7}`, `"Code":"bad_request"`},
		{"Probe/Handler_Panic", `{}`, `"Code":"internal"`},
		{"Probe/Handler_Nested", `{}`, `"Code":"internal"`},
		{"Login/Handler_Login", `{"userName":"ann","passWord":"x"}`, `{"Error":"","Result":"login success ann"}`},
	} {
		topic := fmt.Sprintf("%s/%d", tc.topic, i+1)
		c.Send(&packets.Publish{Topic: topic, Payload: []byte(tc.payload)})
		got := string(c.WaitPublish(topic, 5*time.Second).Payload)
		if !strings.Contains(got, tc.want) {
			t.Errorf("%s %s: reply %s, want %s", tc.topic, tc.payload, got, tc.want)
		}
		if strings.Contains(got, "SecretBackend") {
			t.Errorf("%s: the reply names a module the client never called: %s", tc.topic, got)
		}
		if tc.topic == "Probe/Handler_Nested" {
			nested = got
		}
	}
	_, id, _ := strings.Cut(nested, "(id ")
	id, _, _ = strings.Cut(id, ")")
	logs := d.Logs.String()
	if id == "" || !strings.Contains(logs, "id="+id) || !strings.Contains(logs, "SecretBackend") {
		t.Errorf("the log lacks the details under the id the client got (%q):\n%s", nested, logs)
	}
}
