package gate_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqantgen/mqantgen/demo/demotest"
	"github.com/mqantgen/mqantgen/runtime"
)

// msg is one PUBLISH a client received.
type msg struct {
	topic   string
	payload string
}

// pahoClient is an Eclipse Paho Go client that records what it receives.
type pahoClient struct {
	t    testing.TB
	c    mqtt.Client
	mu   sync.Mutex
	msgs []msg
	next atomic.Int64
}

func newPaho(t testing.TB, broker, clientID string) *pahoClient {
	t.Helper()
	p := &pahoClient{t: t}
	opts := mqtt.NewClientOptions().AddBroker(broker).SetClientID(clientID).
		SetProtocolVersion(4).SetKeepAlive(30 * time.Second).SetAutoReconnect(false).
		SetConnectTimeout(5 * time.Second).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			p.mu.Lock()
			p.msgs = append(p.msgs, msg{m.Topic(), string(m.Payload())})
			p.mu.Unlock()
		})
	p.c = mqtt.NewClient(opts)
	if tok := p.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("paho connect %s to %s: %v", clientID, broker, tok.Error())
	}
	t.Cleanup(func() { p.c.Disconnect(0) })
	return p
}

// publish sends and waits until the client library is done with the QoS flow.
func (p *pahoClient) publish(topic string, qos byte, payload string) {
	p.t.Helper()
	tok := p.c.Publish(topic, qos, false, payload)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		p.t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

type reply struct {
	Error  string
	Result json.RawMessage
}

// request publishes on Module/Handler with a fresh msgid and waits for the
// reply on the same topic.
func (p *pahoClient) request(route string, qos byte, payload string) reply {
	p.t.Helper()
	topic := route + "/" + itoa(p.next.Add(1))
	p.publish(topic, qos, payload)
	m := p.waitOne(func(m msg) bool { return m.topic == topic }, "reply on "+topic)
	var r reply
	if err := json.Unmarshal([]byte(m.payload), &r); err != nil {
		p.t.Fatalf("reply %s is not JSON: %v", m.payload, err)
	}
	return r
}

// must is request that fails the test unless the reply has no error.
func (p *pahoClient) must(route, payload string) string {
	p.t.Helper()
	r := p.request(route, 1, payload)
	if r.Error != "" {
		p.t.Fatalf("%s %s: %s", route, payload, r.Error)
	}
	return string(r.Result)
}

func (p *pahoClient) find(match func(msg) bool) []msg {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []msg
	for _, m := range p.msgs {
		if match(m) {
			out = append(out, m)
		}
	}
	return out
}

func (p *pahoClient) waitOne(match func(msg) bool, what string) msg {
	p.t.Helper()
	var got []msg
	poll(p.t, what, func() bool { got = p.find(match); return len(got) > 0 })
	return got[0]
}

func (p *pahoClient) count(topic, contains string) int {
	return len(p.find(func(m msg) bool { return m.topic == topic && strings.Contains(m.payload, contains) }))
}

func poll(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func itoa(n int64) string {
	b := []byte{}
	if n == 0 {
		return "0"
	}
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

// login logs a client in as user and joins room.
func loginJoin(p *pahoClient, user, room string) {
	p.t.Helper()
	if got := p.must("Login/Handler_Login", `{"userName":"`+user+`","passWord":"x"}`); got != `"login success `+user+`"` {
		p.t.Fatalf("login result %s", got)
	}
	if got := p.must("Chat/Handler_JoinChat", `{"roomName":"`+room+`"}`); got != `"join success"` {
		p.t.Fatalf("join result %s", got)
	}
}

// slowModule is a module with a handler that blocks until released, to show
// the gate keeps reading and answering while a handler is slow. Its
// descriptor table is written out by hand.
type slowModule struct {
	runtime.BaseModule
	release    chan struct{}
	running    atomic.Int32
	maxRunning atomic.Int32
	order      chan string
}

func newSlow() *slowModule {
	return &slowModule{release: make(chan struct{}), order: make(chan string, 100)}
}

func (m *slowModule) GetType() string { return "Slow" }

func (m *slowModule) OnInit(app *runtime.App, s *runtime.ModuleSettings) error {
	m.Init(app, s)
	m.RPCServer().Register(&runtime.ModuleDesc{Type: "Slow", Methods: []runtime.MethodDesc{
		{Name: "Handler_Wait", Handler: func(_ any, ctx context.Context, _ runtime.Invoker, req *runtime.Request) (any, error) {
			n := m.running.Add(1)
			defer m.running.Add(-1)
			for {
				old := m.maxRunning.Load()
				if n <= old || m.maxRunning.CompareAndSwap(old, n) {
					break
				}
			}
			m.order <- string(req.Raw)
			select {
			case <-m.release:
			case <-ctx.Done():
			}
			return "waited " + string(req.Raw), nil
		}},
	}}, m)
	return nil
}

func slowExtra(m *slowModule) demotest.Extra {
	return demotest.Extra{Type: "Slow", New: func() runtime.Module { return m }}
}
