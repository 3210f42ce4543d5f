package mqtttest

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Msg is one PUBLISH a Paho client received.
type Msg struct {
	Topic   string
	Payload string
}

// Paho is an Eclipse Paho Go client that records everything it receives.
// Replies and pushes arrive without subscribing: the gate sends them to the
// connection, and Paho hands unmatched messages to its default handler.
type Paho struct {
	t    testing.TB
	C    mqtt.Client
	mu   sync.Mutex
	msgs []Msg
	next atomic.Int64

	// SessionPresent is the CONNACK's flag: a stored session was resumed.
	SessionPresent bool
}

// NewPaho connects a client to broker (tcp://, ws://, ssl://, wss://) and
// fails the test when it cannot. opts adjust the options (TLS, ...).
func NewPaho(t testing.TB, broker, clientID string, opts ...func(*mqtt.ClientOptions)) *Paho {
	t.Helper()
	p, err := DialPaho(t, broker, clientID, opts...)
	if err != nil {
		t.Fatalf("paho connect %s to %s: %v", clientID, broker, err)
	}
	return p
}

// DialPaho is NewPaho returning the connect error, for refusal tests.
func DialPaho(t testing.TB, broker, clientID string, opts ...func(*mqtt.ClientOptions)) (*Paho, error) {
	t.Helper()
	p := &Paho{t: t}
	o := mqtt.NewClientOptions().AddBroker(broker).SetClientID(clientID).
		SetProtocolVersion(4).SetKeepAlive(30 * time.Second).SetAutoReconnect(false).
		SetConnectRetry(false).SetConnectTimeout(5 * time.Second).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			p.mu.Lock()
			p.msgs = append(p.msgs, Msg{m.Topic(), string(m.Payload())})
			p.mu.Unlock()
		})
	for _, f := range opts {
		f(o)
	}
	p.C = mqtt.NewClient(o)
	tok := p.C.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, fmt.Errorf("no CONNACK in 10s")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	if ct, ok := tok.(*mqtt.ConnectToken); ok {
		p.SessionPresent = ct.SessionPresent()
	}
	t.Cleanup(func() { p.C.Disconnect(0) })
	return p, nil
}

// Publish sends and waits until the client library finished the QoS flow.
func (p *Paho) Publish(topic string, qos byte, payload string) {
	p.t.Helper()
	tok := p.C.Publish(topic, qos, false, payload)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		p.t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// Reply is the gate's reply body.
type Reply struct {
	Error  string
	Result json.RawMessage
}

// Request publishes on route ("Module/Handler_X") with a fresh msgid and
// waits for the reply on the same topic.
func (p *Paho) Request(route string, qos byte, payload string) Reply {
	p.t.Helper()
	topic := route + "/" + strconv.FormatInt(p.next.Add(1), 10)
	p.Publish(topic, qos, payload)
	m := p.WaitOne(func(m Msg) bool { return m.Topic == topic }, "reply on "+topic)
	var r Reply
	if err := json.Unmarshal([]byte(m.Payload), &r); err != nil {
		p.t.Fatalf("reply %s is not JSON: %v", m.Payload, err)
	}
	return r
}

// Must is Request at QoS 1 that fails the test unless the reply has no
// error; it returns the raw Result.
func (p *Paho) Must(route, payload string) string {
	p.t.Helper()
	r := p.Request(route, 1, payload)
	if r.Error != "" {
		p.t.Fatalf("%s %s: %s", route, payload, r.Error)
	}
	return string(r.Result)
}

// Find returns the messages received so far that match.
func (p *Paho) Find(match func(Msg) bool) []Msg {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Msg
	for _, m := range p.msgs {
		if match(m) {
			out = append(out, m)
		}
	}
	return out
}

// WaitOne waits for a matching message.
func (p *Paho) WaitOne(match func(Msg) bool, what string) Msg {
	p.t.Helper()
	var got []Msg
	Poll(p.t, what, func() bool { got = p.Find(match); return len(got) > 0 })
	return got[0]
}

// Count counts the messages on topic whose payload contains s.
func (p *Paho) Count(topic, s string) int {
	return len(p.Find(func(m Msg) bool { return m.Topic == topic && strings.Contains(m.Payload, s) }))
}

// LoginJoin logs in as user and joins room through the chat demo's handlers.
func (p *Paho) LoginJoin(user, room string) {
	p.t.Helper()
	if got := p.Must("Login/Handler_Login", `{"userName":"`+user+`","passWord":"x"}`); got != `"login success `+user+`"` {
		p.t.Fatalf("login result %s", got)
	}
	if got := p.Must("Chat/Handler_JoinChat", `{"roomName":"`+room+`"}`); got != `"join success"` {
		p.t.Fatalf("join result %s", got)
	}
}

// Poll waits for cond with a 10 s deadline.
func Poll(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
