package main

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/bench/loadgen"
	"github.com/mqantgen/mqantgen/gate/packets"
	"github.com/mqantgen/mqantgen/internal/testkit/leakcheck"
	"github.com/mqantgen/mqantgen/internal/testkit/mqtttest"
)

func start(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- serve(ln) }()
	t.Cleanup(func() {
		_ = ln.Close()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// TestPaho: a real client (Eclipse Paho Go) connects, and each QoS 0
// PUBLISH comes back with its payload on its topic, in order, whatever the
// payload's size (remaining lengths of one to three bytes).
func TestPaho(t *testing.T) {
	leakcheck.Check(t)
	addr := start(t)
	p := mqtttest.NewPaho(t, "tcp://"+addr, "minecho-test")
	bodies := []string{"", "hello", strings.Repeat("x", 200), strings.Repeat("y", 20000)}
	for i, body := range bodies {
		topic := "Echo/Handler_Echo/" + string(rune('a'+i))
		p.Publish(topic, 0, body)
		m := p.WaitOne(func(m mqtttest.Msg) bool { return m.Topic == topic }, "echo on "+topic)
		if m.Payload != body {
			t.Errorf("echo on %s: %d bytes, want the %d sent", topic, len(m.Payload), len(body))
		}
	}
	p.C.Disconnect(100)
}

// TestPing: PINGREQ gets PINGRESP; requests written together are answered
// together, in order; DISCONNECT closes the connection.
func TestPing(t *testing.T) {
	leakcheck.Check(t)
	addr := start(t)
	c := mqtttest.Connect(t, addr, "minecho-ping", 5)
	c.Send(&packets.Pingreq{})
	if p, ok := c.Next(5 * time.Second).(*packets.Pingresp); !ok {
		t.Fatalf("got %#v, want PINGRESP", p)
	}
	var batch []byte
	for _, topic := range []string{"a/1", "a/2", "a/3"} {
		batch = packets.AppendPublish(batch, topic, []byte(topic+" body"), 0, 0)
	}
	c.Write(batch)
	for _, topic := range []string{"a/1", "a/2", "a/3"} {
		p, ok := c.Next(5 * time.Second).(*packets.Publish)
		if !ok || p.Topic != topic || string(p.Payload) != topic+" body" || p.QoS != 0 {
			t.Fatalf("got %#v, want the echo on %s", p, topic)
		}
	}
	c.Send(&packets.Disconnect{})
	if !c.WaitClosed(5 * time.Second) {
		t.Error("the connection stayed open after DISCONNECT")
	}
}

// TestLoad runs the load tool's request/reply mode against it.
func TestLoad(t *testing.T) {
	leakcheck.Check(t)
	addr := start(t)
	cfg := loadgen.DefaultConfig()
	cfg.URL, cfg.Conns, cfg.Inflight = "tcp://"+addr, 5, 4
	cfg.Duration, cfg.Warmup = 300*time.Millisecond, 100*time.Millisecond
	cfg.Topic, cfg.Payload = "Echo/Handler_Echo", `{"say":"hello"}`
	s, err := loadgen.Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.Connected != 5 || s.Requests == 0 || s.Replies != s.Requests || s.Errors+s.Timeouts+s.Late != 0 {
		t.Errorf("summary %+v: want 5 connections and every request answered", s)
	}
}
