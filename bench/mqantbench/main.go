// Command mqantbench loads an MQTT server with many connections and times
// it: request/reply through the mqantgen gate, round trips through any
// broker, idle connections and chat-room broadcast. Its logic is in
// bench/loadgen.
//
//	mqantbench -conns 100 -inflight 8 -duration 10s                      # rr against make run
//	mqantbench -mode rt -url tcp://127.0.0.1:1883 -conns 100 -inflight 8  # mosquitto
//	mqantbench -mode idle -conns 10000 -pid $(pgrep -n server) -duration 30s
//	mqantbench -mode broadcast -conns 1000 -rate 10 -duration 10s
//	mqantbench -mode chat -conns 2000 -room-size 10 -rate 200 -duration 5m
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/mqantgen/mqantgen/bench/loadgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run parses args, runs the load and prints the summary; it returns the
// exit code: 0, 1 when the run failed, 2 for a usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	d := loadgen.DefaultConfig()
	fs := flag.NewFlagSet("mqantbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mqantbench [flags]   (modes: rr, rt, idle, broadcast, chat; see README \"Load testing with mqantbench\")")
		fs.PrintDefaults()
	}
	cfg := d
	mode := fs.String("mode", string(d.Mode), "rr (request/reply through the gate), rt (broker round trip), idle (hold connections), broadcast (chat-room fan-out), chat (everyone says in rooms of -room-size)")
	fs.StringVar(&cfg.URL, "url", d.URL, "server: tcp://host:port or ws://host:port/path")
	fs.IntVar(&cfg.Conns, "conns", d.Conns, "connections (broadcast: room members; the sender is one more)")
	fs.StringVar(&cfg.Topic, "topic", "", "rr: request topic Module/Handler_X, the msgid is appended (default "+`"Login/Handler_Login"`+"); rt: topic prefix (default \"mqantbench\")")
	fs.StringVar(&cfg.Payload, "payload", "", "request body; {conn}, {user} and {room} are replaced per connection (default: rr a login of the connection's user, rt 64 bytes of JSON)")
	fs.BoolVar(&cfg.Login, "login", false, "log each connection in first (Login/Handler_Login with its own user name)")
	fs.StringVar(&cfg.User, "user", "", "user name for -login, may use {conn} (default bench-<run>-{conn})")
	fs.StringVar(&cfg.Room, "room", "", "chat room each connection joins after the login (may use {conn}, {user}); broadcast: the room (default bench-<run>)")
	fs.IntVar(&cfg.RoomSize, "room-size", 0, "chat: members per room (default 10)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "total requests/s over all connections (broadcast, chat: says/s); 0: as fast as -inflight allows")
	fs.IntVar(&cfg.Inflight, "inflight", 0, "requests outstanding per connection at most (default 1, or 32 with -rate)")
	fs.DurationVar(&cfg.Duration, "duration", d.Duration, "measured time (idle: how long to hold)")
	fs.DurationVar(&cfg.Warmup, "warmup", d.Warmup, "load before the measured time, left out of the results")
	fs.DurationVar(&cfg.Timeout, "timeout", d.Timeout, "a request unanswered this long is a timeout")
	fs.DurationVar(&cfg.ConnectTimeout, "connect-timeout", d.ConnectTimeout, "set-up of one connection (CONNECT, SUBSCRIBE, login, join)")
	fs.DurationVar(&cfg.KeepAlive, "keepalive", d.KeepAlive, "MQTT keep-alive; the tool pings at half of it (0: none)")
	fs.IntVar(&cfg.Sources, "sources", 0, "loopback source addresses 127.0.0.1..N to spread connections over (0: one per 20000 connections)")
	fs.IntVar(&cfg.Dialers, "dialers", d.Dialers, "connections set up at once")
	fs.IntVar(&cfg.PID, "pid", 0, "report this process's resident memory (VmRSS) before, during and after, and the CPU time it used over the measured time (per reply too)")
	mark := fs.String("mark", "", "shell command run as the measured time begins and as it ends, with MQANTBENCH_MARK=start or end in its environment (e.g. to read a server's counters over exactly that time; keep it quick, the load goes on while it runs); its output goes to stderr, and a failure fails the run")
	asJSON := fs.Bool("json", false, "print the summary as JSON on stdout")
	quiet := fs.Bool("quiet", false, "no progress line on stderr")
	cpuProfile := fs.String("cpuprofile", "", "write the load tool's own CPU profile to this file")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "mqantbench: unexpected arguments %q\n", fs.Args())
		return 2
	}
	cfg.Mode = loadgen.Mode(*mode)
	if !*quiet {
		cfg.Progress = stderr
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "mqantbench:", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "mqantbench:", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	var markErr error
	if *mark != "" {
		cfg.OnWindow = func(start bool) {
			phase := "end"
			if start {
				phase = "start"
			}
			cmd := exec.CommandContext(ctx, "sh", "-c", *mark)
			cmd.Env = append(os.Environ(), "MQANTBENCH_MARK="+phase)
			cmd.Stdout, cmd.Stderr = stderr, stderr
			if err := cmd.Run(); err != nil && markErr == nil {
				markErr = fmt.Errorf("-mark at the %s of the measured time: %w", phase, err)
			}
		}
	}
	sum, err := loadgen.Run(ctx, cfg)
	if sum == nil {
		fmt.Fprintln(stderr, "mqantbench:", err)
		return 2 // the config was refused
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(sum); err != nil {
			fmt.Fprintln(stderr, "mqantbench:", err)
			return 1
		}
	} else if err := sum.WriteText(stdout); err != nil {
		fmt.Fprintln(stderr, "mqantbench:", err)
		return 1
	}
	if err == nil {
		err = markErr
	}
	if err != nil {
		fmt.Fprintln(stderr, "mqantbench:", err)
		return 1
	}
	return 0
}
