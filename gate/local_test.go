package gate_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/demo/demotest"
	"github.com/mqantgen/mqantgen/gate"
	"github.com/mqantgen/mqantgen/gate/packets"
	"github.com/mqantgen/mqantgen/internal/testkit/leakcheck"
	"github.com/mqantgen/mqantgen/internal/testkit/mqtttest"
)

// pusher is a module whose handler makes every session call a game
// handler makes: Send, Broadcast, Bind, Set and Push, UnBind.
type pusher struct{ core.BaseModule }

func (m *pusher) GetType() string { return "Pusher" }

func (m *pusher) OnInit(app *core.App, s *core.ModuleSettings) error {
	m.Init(app, s)
	m.RPCServer().Register(&core.ModuleDesc{Type: "Pusher", Methods: []core.MethodDesc{
		{Name: "Handler_Push", Handler: func(_ any, ctx context.Context, inv core.Invoker, req *core.Request) (any, error) {
			s := gate.NewSession(inv, req.Session)
			if err := s.Send(ctx, "Pusher/OnSend", []byte(`"send"`)); err != nil {
				return nil, err
			}
			me := []gate.Member{{ServerID: s.GetServerID(), SessionID: s.GetSessionID()}}
			if err := gate.Broadcast(ctx, inv, me, "Pusher/OnCast", []byte(`"cast"`)); err != nil {
				return nil, err
			}
			if err := s.Bind(ctx, "pusher"); err != nil {
				return nil, err
			}
			s.Set("k", "v")
			if err := s.Push(ctx); err != nil {
				return nil, err
			}
			if err := s.UnBind(ctx); err != nil {
				return nil, err
			}
			return "done", nil
		}},
		{Name: "Handler_Big", Handler: func(_ any, ctx context.Context, inv core.Invoker, req *core.Request) (any, error) {
			// A broadcast too large to run in the sender (the same member
			// 65 times), then a Send: it must not overtake the broadcast.
			s := gate.NewSession(inv, req.Session)
			me := make([]gate.Member, 65)
			for i := range me {
				me[i] = gate.Member{ServerID: s.GetServerID(), SessionID: s.GetSessionID()}
			}
			if err := gate.Broadcast(ctx, inv, me, "Pusher/OnCast", []byte(`"big"`)); err != nil {
				return nil, err
			}
			return "big", s.Send(ctx, "Pusher/OnSend", []byte(`"after"`))
		}},
		{Name: "Handler_Body", Handler: func(_ any, _ context.Context, _ core.Invoker, req *core.Request) (any, error) {
			return string(req.Raw), nil
		}},
	}}, m)
	return nil
}

// gateCalls sums the series of metric name whose module label is Gate:
// the calls this process made to a gate through the RPC seam, or those
// the gate's RPC server handled.
func gateCalls(t *testing.T, d *demotest.Demo, name string) float64 {
	t.Helper()
	mfs, err := d.App.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelIs(m, "module", gate.Gate_Type) {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func labelIs(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue() == value
		}
	}
	return false
}

// TestLocalSessionCallsSkipRPC: a handler's Send, Broadcast, Bind, Push
// and UnBind to the gate of its own process, and the demo's Login (its
// Bind), never go through the RPC seam: no call to the Gate module is
// made or handled (the path with the worker or sync-goroutine hand-off
// and the reply timer). Pushes are queued before the call that made them
// returns, so the client gets them before its reply, in the order sent.
func TestLocalSessionCallsSkipRPC(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, nil, demotest.Extra{Type: "Pusher", New: func() core.Module { return &pusher{} }})
	c := mqtttest.Connect(t, d.TCPAddr, "local", 30)
	if got := c.Request("Login/Handler_Login/1", `{"userName":"loc","passWord":"x"}`); got != `{"Error":"","Result":"login success loc"}` {
		t.Fatalf("login: %s", got)
	}
	for i := 0; i < 3; i++ {
		c.Send(&packets.Publish{Topic: "Pusher/Handler_Push/2", Payload: []byte(`{}`)})
		var got []string
		for len(got) < 3 {
			p, ok := c.Next(5 * time.Second).(*packets.Publish)
			if ok {
				got = append(got, p.Topic+" "+string(p.Payload))
			}
		}
		want := []string{`Pusher/OnSend "send"`, `Pusher/OnCast "cast"`, `Pusher/Handler_Push/2 {"Error":"","Result":"done"}`}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("round %d: got\n%s\nwant\n%s", i, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	if s := d.Gate.Sessions(); len(s) != 1 || s[0].UserID != "" || s[0].Settings["k"] != "v" {
		t.Fatalf("session after the handler: %+v", s)
	}
	made, handled := gateCalls(t, d, "mqant_rpc_calls_total"), gateCalls(t, d, "mqant_rpc_handled_total")
	if made != 0 || handled != 0 {
		t.Errorf("%v calls to the gate made, %v handled by its RPC server: want none (direct calls)", made, handled)
	}
	// The counter is real: the same Send through the gate's client is one
	// call made and handled.
	data := d.Gate.Sessions()[0]
	if err := gate.NewGateClient(d.App).To(data.ServerID).SendNR(context.Background(), data.SessionID, "Pusher/OnSend", []byte(`"rpc"`)); err != nil {
		t.Fatal(err)
	}
	if p := c.WaitPublish("Pusher/OnSend", 5*time.Second); string(p.Payload) != `"rpc"` {
		t.Fatalf("push through RPC: %s", p.Payload)
	}
	if made := gateCalls(t, d, "mqant_rpc_calls_total"); made != 1 {
		t.Errorf("%v calls to the gate counted after one SendNR, want 1", made)
	}
}

// TestRequestBodyKeptPerCall: each call gets its own copy of its body,
// whether it fits the call's object or not, while the reader reuses its
// buffer for the requests sent with it in one write.
func TestRequestBodyKeptPerCall(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, nil, demotest.Extra{Type: "Pusher", New: func() core.Module { return &pusher{} }})
	c := mqtttest.Connect(t, d.TCPAddr, "bodies", 30)
	var bodies []string
	var buf []byte
	for i, n := range []int{0, 1, 102, 103, 104, 105, 200, 5000, 3, 104} { // bodies of n+2 bytes about inlineBody (104)
		body := `"` + strings.Repeat(string(rune('a'+i)), n) + `"`
		bodies = append(bodies, body)
		buf = (&packets.Publish{Topic: "Pusher/Handler_Body/" + strconv.Itoa(i), Payload: []byte(body)}).AppendTo(buf)
	}
	c.Write(buf)
	for i, body := range bodies {
		p := c.WaitPublish("Pusher/Handler_Body/"+strconv.Itoa(i), 5*time.Second)
		want, _ := core.AppendJSON(nil, body)
		if got := string(p.Payload); got != `{"Error":"","Result":`+string(want)+`}` {
			t.Errorf("request %d (%d bytes): reply %.80s", i, len(body), got)
		}
	}
}

// TestLocalSessionCallsHonourDeadline: a direct session call whose ctx is
// done does not run, and fails as through RPC: a timeout, told apart with
// errors.Is. A live ctx binds.
func TestLocalSessionCallsHonourDeadline(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, nil)
	mqtttest.Connect(t, d.TCPAddr, "late", 30)
	data := d.Gate.Sessions()[0]
	s := gate.NewSession(d.App, &data)
	done, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	checks := map[string]error{
		"Bind":   s.Bind(done, "late-user"),
		"UnBind": s.UnBind(done),
		"Push":   s.Push(done),
		"Close":  s.Close(done),
	}
	_, checks["Online"] = gate.Online(done, d.App, "late-user")
	for fn, err := range checks {
		if !errors.Is(err, core.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s with a ctx past its deadline: %v, want a timeout", fn, err)
		}
	}
	if got := d.Gate.Sessions(); len(got) != 1 || got[0].UserID != "" {
		t.Fatalf("sessions after late calls: %+v", got)
	}
	if err := s.Bind(context.Background(), "late-user"); err != nil || s.GetUserID() != "late-user" {
		t.Fatalf("bind with a live ctx: %v, user %q", err, s.GetUserID())
	}
}

// TestLargeLocalBroadcastKeepsOrder: a broadcast to more members than the
// sender reaches itself is handed off, and the sender's next push waits
// behind it: the client gets every member's copy, then the push.
func TestLargeLocalBroadcastKeepsOrder(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, nil, demotest.Extra{Type: "Pusher", New: func() core.Module { return &pusher{} }})
	c := mqtttest.Connect(t, d.TCPAddr, "big", 30)
	for round := 0; round < 5; round++ {
		c.Send(&packets.Publish{Topic: "Pusher/Handler_Big/1", Payload: []byte(`{}`)})
		casts, reply, sent := 0, false, false
		for casts < 65 || !reply || !sent {
			p, ok := c.Next(5 * time.Second).(*packets.Publish)
			if !ok {
				continue
			}
			switch p.Topic {
			case "Pusher/OnCast":
				casts++
			case "Pusher/OnSend":
				if casts < 65 {
					t.Fatalf("round %d: the Send after the broadcast arrived after %d of its 65 copies", round, casts)
				}
				sent = true
			case "Pusher/Handler_Big/1":
				reply = true
			}
		}
	}
}
