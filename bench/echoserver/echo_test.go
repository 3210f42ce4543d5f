package main

import (
	"log/slog"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/bench/loadgen"
	"github.com/mqantgen/mqantgen/gate/packets"
	"github.com/mqantgen/mqantgen/internal/testkit/leakcheck"
	"github.com/mqantgen/mqantgen/internal/testkit/mqtttest"
)

func start(t *testing.T) (tcp, ws string) {
	t.Helper()
	s := newServer("127.0.0.1:0", "127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err := s.app.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.app.Stop("test finished") })
	return s.gate.TCPAddr().String(), s.gate.WSAddr().String()
}

// TestEcho: each PUBLISH comes back unchanged on its own topic, at any QoS
// (the gate's own acknowledgements still flow), whatever the topic.
func TestEcho(t *testing.T) {
	leakcheck.Check(t)
	tcp, _ := start(t)
	c := mqtttest.Connect(t, tcp, "echo-test", 0)
	for i, topic := range []string{"Echo/Handler_Echo/1", "a/b/c/d", "not json either"} {
		body := []byte("payload \x00\xff " + topic)
		c.Send(&packets.Publish{Topic: topic, Payload: body, QoS: 1, PacketID: uint16(i + 1)})
		if ack, ok := c.WaitAny(5 * time.Second).(*packets.Puback); !ok || ack.PacketID != uint16(i+1) {
			t.Fatalf("QoS 1 PUBLISH %d: got %#v, want its PUBACK", i+1, ack)
		}
		got := c.WaitPublish(topic, 5*time.Second)
		if string(got.Payload) != string(body) || got.QoS != 0 {
			t.Errorf("echo on %q: payload %q QoS %d, want %q QoS 0", topic, got.Payload, got.QoS, body)
		}
	}
}

// TestLoad runs the load tool's request/reply mode against the echo server
// over TCP and WebSocket.
func TestLoad(t *testing.T) {
	leakcheck.Check(t)
	tcp, ws := start(t)
	for _, url := range []string{"tcp://" + tcp, "ws://" + ws + "/mqtt"} {
		t.Run(url[:2], func(t *testing.T) {
			cfg := loadgen.DefaultConfig()
			cfg.URL, cfg.Conns, cfg.Inflight = url, 5, 4
			cfg.Duration, cfg.Warmup = 300*time.Millisecond, 100*time.Millisecond
			cfg.Topic, cfg.Payload = "Echo/Handler_Echo", `{"say":"hello"}`
			s, err := loadgen.Run(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if s.Connected != 5 || s.Requests == 0 || s.Replies != s.Requests || s.Errors+s.Timeouts+s.Late != 0 {
				t.Errorf("summary %+v: want 5 connections and every request answered", s)
			}
			if l := s.Latency; !(0 < l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
				t.Errorf("latency percentiles out of order: %+v", l)
			}
		})
	}
}
