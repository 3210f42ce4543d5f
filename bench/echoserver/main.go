// Command echoserver is the benchmark's reference echo server: it answers
// every PUBLISH by publishing the same payload on the same topic. It is the
// gate itself (its listeners, MQTT codec, connection reader and coalescing
// writer, limits) with routing and RPC replaced by gate.WithPublishHandler,
// so what it reaches is an honest ceiling for the gate on this machine.
//
//	go run ./bench/echoserver -tcp :3563 -ws :3653
//	mqantbench -url tcp://127.0.0.1:3563 -topic Echo/Handler_Echo -payload '{"x":1}'
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/gate"
	"github.com/mqantgen/mqantgen/gate/packets"
)

func main() {
	tcp := flag.String("tcp", ":3563", "MQTT over TCP address; empty to disable")
	ws := flag.String("ws", ":3653", "MQTT over WebSocket address; empty to disable")
	level := flag.String("log", "info", "log level: debug, info, warn, error")
	flag.Parse()
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintln(os.Stderr, "echoserver: -log:", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
	s := newServer(*tcp, *ws, log)
	if err := s.app.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "echoserver:", err)
		os.Exit(1)
	}
}

// echo answers a PUBLISH with the same payload on its topic. The gate's
// writer copies the payload before the reader reuses its buffer.
func echo(c gate.Publisher, p *packets.Publish) { c.Publish(p.Topic, p.Payload) }

// server is one gate, listening on TCP and WebSocket, that echoes instead
// of routing. No other module runs, so no RPC happens.
type server struct {
	app  *core.App
	gate *gate.Gate // set when the app starts
}

func newServer(tcp, ws string, log *slog.Logger) *server {
	cfg := &core.Config{Modules: []*core.ModuleSettings{{
		Type: gate.Gate_Type, ID: "echo:Gate", Host: "127.0.0.1", ProcessID: "echo",
		Settings: map[string]any{"TCPAddr": tcp, "WSAddr": ws},
	}}}
	s := &server{app: core.NewApp(cfg, core.Options{ProcessID: "echo", Logger: log})}
	newGate := gate.New(gate.WithPublishHandler(echo))
	s.app.Register(gate.Gate_Type, func() core.Module {
		m := newGate()
		s.gate = m.(*gate.Gate)
		return m
	})
	return s
}
