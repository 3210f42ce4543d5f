// Command benchserver is the server the end-to-end benchmarks measure: the
// gate plus the benchmark's Echo module (a Chat-like handler: decode a JSON
// request, return a typed reply) and the chat demo's Login and Chat (for
// broadcast runs). With -rabbit it runs one side of a two-process setup,
// the gate in one process and the modules in another, over RabbitMQ.
//
//	benchserver -tcp :3563                       # everything in-process
//	benchserver -rabbit URI -role modules &      # Echo, Login, Chat
//	benchserver -rabbit URI -role gate -tcp :3563
//	benchserver -tcp :3563 -metrics=false          # the per-call metrics off, to measure their cost
//
// make bench loads Echo/Handler_Work, the demo's Login/Handler_Login and
// Chat/Handler_Say in-process and Login across the two processes, whose
// -admin /metrics give the framework calls made (mqant_rpc_calls_total).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"time"

	"github.com/mqantgen/mqantgen/bench/benchmod"
	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/core/rabbitmq"
	"github.com/mqantgen/mqantgen/demo/chat"
	"github.com/mqantgen/mqantgen/demo/login"
	"github.com/mqantgen/mqantgen/gate"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchserver:", err)
		os.Exit(1)
	}
}

func run() error {
	tcp := flag.String("tcp", ":3563", "MQTT over TCP address")
	ws := flag.String("ws", "", "MQTT over WebSocket address; empty to disable")
	rabbit := flag.String("rabbit", "", "RabbitMQ URI; with it, -role chooses this process's side")
	role := flag.String("role", "all", "all, gate or modules")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	maxQueue := flag.Int("maxqueue", 0, "gate MaxQueue (0: default)")
	metrics := flag.Bool("metrics", true, "per-call metrics (core.Options.NoMetrics when false)")
	admin := flag.String("admin", "", "admin listener address serving /metrics; empty: none")
	pprofOn := flag.Bool("pprof", false, "the admin listener also serves /debug/pprof/ (allocation profiles of a run)")
	flag.Parse()

	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	gateSettings := map[string]any{"TCPAddr": *tcp, "WSAddr": *ws, "SessionCloseListeners": []any{"Chat"},
		"MaxConnections": 200000}
	if *maxQueue > 0 {
		gateSettings["MaxQueue"] = *maxQueue
	}
	gatePID, modPID := "p", "p"
	if *rabbit != "" {
		gatePID, modPID = "gate", "modules"
	}
	cfg := &core.Config{RPC: core.RPCConfig{Timeout: 10 * time.Second}, Admin: core.AdminConfig{Addr: *admin, Pprof: *pprofOn}, Modules: []*core.ModuleSettings{
		{Type: gate.Gate_Type, ID: "bench:Gate", Host: "127.0.0.1", ProcessID: gatePID, Settings: gateSettings},
		{Type: benchmod.Echo_Type, ID: "bench:Echo", Host: "127.0.0.1", ProcessID: modPID},
		{Type: "Login", ID: "bench:Login", Host: "127.0.0.1", ProcessID: modPID},
		{Type: "Chat", ID: "bench:Chat", Host: "127.0.0.1", ProcessID: modPID},
	}}
	pid := "p"
	if *rabbit != "" {
		cfg.Rabbitmq = &core.RabbitmqConfig{URI: *rabbit}
		switch *role {
		case "gate":
			pid = gatePID
		case "modules":
			pid = modPID
		default:
			return fmt.Errorf("-role must be gate or modules with -rabbit")
		}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	app := core.NewApp(cfg, core.Options{ProcessID: pid, Logger: log, NoMetrics: !*metrics})
	app.Register(gate.Gate_Type, gate.New())
	app.Register(benchmod.Echo_Type, func() core.Module { return &benchmod.Echo{} })
	app.Register("Login", login.New)
	app.Register("Chat", chat.New)
	if *rabbit != "" {
		t := rabbitmq.New(*rabbit, log)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := t.WaitReady(ctx)
		cancel()
		if err != nil {
			return err
		}
		app.SetRemote(t)
	}
	fmt.Fprintln(os.Stderr, "benchserver: ready")
	return app.Run(context.Background())
}
