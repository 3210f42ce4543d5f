package loadgen_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/bench/loadgen"
	"github.com/mqantgen/mqantgen/demo/demotest"
	"github.com/mqantgen/mqantgen/internal/testkit/leakcheck"
	"github.com/mqantgen/mqantgen/internal/testkit/mqtttest"
	"github.com/mqantgen/mqantgen/internal/testkit/syncbuf"
)

// short returns a quick config against url.
func short(mode loadgen.Mode, url string, conns int) loadgen.Config {
	c := loadgen.DefaultConfig()
	c.Mode, c.URL, c.Conns = mode, url, conns
	c.Duration, c.Warmup = 300*time.Millisecond, 100*time.Millisecond
	c.Timeout, c.ConnectTimeout = 5*time.Second, 10*time.Second
	return c
}

func runOK(t *testing.T, cfg loadgen.Config) *loadgen.Summary {
	t.Helper()
	sum, err := loadgen.Run(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Run: %v (summary %+v)", err, sum)
	}
	return sum
}

// checkRequests fails unless every request of the window was answered
// without error and the latencies make sense.
func checkRequests(t *testing.T, s *loadgen.Summary) {
	t.Helper()
	var text bytes.Buffer
	_ = s.WriteText(&text)
	t.Logf("summary:\n%s", text.String())
	if s.ConnectFailed != 0 || s.ConnLost != 0 || s.Connected != s.Conns {
		t.Errorf("connections: %d of %d set up, %d failed, %d lost (%s)", s.Connected, s.Conns, s.ConnectFailed, s.ConnLost, s.FirstConnectError)
	}
	if s.Requests <= 0 || s.Replies != s.Requests {
		t.Errorf("requests %d, replies %d: want some, all answered", s.Requests, s.Replies)
	}
	if s.Errors != 0 || s.Timeouts != 0 || s.Late != 0 {
		t.Errorf("errors %d, timeouts %d, late %d, want none (first error %q)", s.Errors, s.Timeouts, s.Late, s.FirstError)
	}
	if s.Throughput <= 0 || s.Seconds <= 0 {
		t.Errorf("throughput %v over %vs", s.Throughput, s.Seconds)
	}
	checkLatency(t, "latency", s.Latency, s.Replies)
}

func checkLatency(t *testing.T, name string, l loadgen.Latency, count int64) {
	t.Helper()
	if l.Count != count {
		t.Errorf("%s: %d samples, want %d", name, l.Count, count)
	}
	if !(0 < l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) || l.Mean <= 0 || l.Mean > l.Max {
		t.Errorf("%s percentiles out of order or zero: %+v", name, l)
	}
}

// TestRR runs request/reply against the chat demo's gate in-process: the
// default request (a login), a Say after logging in and joining a room of
// the connection's own, over WebSocket, and at a fixed rate.
func TestRR(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, nil)
	for _, tc := range []struct {
		name string
		set  func(*loadgen.Config)
	}{
		{"default login request", func(*loadgen.Config) {}},
		{"say in own room", func(c *loadgen.Config) {
			c.Login, c.Room = true, "room-{user}"
			c.Topic, c.Payload = "Chat/Handler_Say", `{"roomName":"{room}","say":"hello from {conn}"}`
			c.Inflight = 4
		}},
		{"websocket", func(c *loadgen.Config) { c.URL = "ws://" + d.WSAddr + "/mqtt"; c.Inflight = 2 }},
		{"rate", func(c *loadgen.Config) { c.Rate = 500 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := short(loadgen.ModeRR, "tcp://"+d.TCPAddr, 5)
			tc.set(&cfg)
			s := runOK(t, cfg)
			checkRequests(t, s)
			if cfg.Rate > 0 {
				want := cfg.Rate * s.Seconds
				if float64(s.Requests) < want*0.7 || float64(s.Requests) > want*1.3 {
					t.Errorf("%d requests in %.2fs at %v/s, want about %.0f", s.Requests, s.Seconds, cfg.Rate, want)
				}
			}
		})
	}
	mqtttest.Poll(t, "the gate's connections closed", func() bool { return d.Gate.Stats().Connections == 0 })
}

// TestRRErrorsAndRefusals: error replies are counted with their text, and
// connections the gate refuses are counted without failing the run.
func TestRRErrorsAndRefusals(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, map[string]any{"MaxConnections": 2})
	cfg := short(loadgen.ModeRR, "tcp://"+d.TCPAddr, 4)
	cfg.Topic = "Nope/Handler_X"
	s := runOK(t, cfg)
	if s.Connected != 2 || s.ConnectFailed != 2 || !strings.Contains(s.FirstConnectError, "return code 3") {
		t.Errorf("%d set up, %d failed (%q); want 2 and 2, refused with return code 3", s.Connected, s.ConnectFailed, s.FirstConnectError)
	}
	if s.Requests == 0 || s.Errors != s.Requests || s.Replies != 0 || !strings.Contains(s.FirstError, "not found") {
		t.Errorf("requests %d, errors %d, replies %d, first error %q; want every request an error naming the missing module",
			s.Requests, s.Errors, s.Replies, s.FirstError)
	}
}

// TestRT runs broker round trips against a private mosquitto.
func TestRT(t *testing.T) {
	leakcheck.Check(t)
	addr := startMosquitto(t)
	cfg := short(loadgen.ModeRT, "tcp://"+addr, 5)
	cfg.Inflight = 4
	checkRequests(t, runOK(t, cfg))
}

// TestIdle holds connections and reports the resident memory of a process:
// this one, which also runs the gate.
func TestIdle(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, nil)
	var progress syncbuf.Buffer
	cfg := short(loadgen.ModeIdle, "tcp://"+d.TCPAddr, 20)
	cfg.PID, cfg.Login = os.Getpid(), true
	cfg.Duration, cfg.Warmup = 1100*time.Millisecond, 0 // long enough for one progress line
	cfg.Progress = &progress
	s := runOK(t, cfg)
	if s.Connected != 20 || s.ConnLost != 0 {
		t.Errorf("%d connections set up, %d lost; want 20, 0", s.Connected, s.ConnLost)
	}
	if s.RSSBefore <= 0 || s.RSSOpen <= 0 || s.RSSAfter <= 0 || s.PID != os.Getpid() {
		t.Errorf("rss of pid %d: before %d, open %d, after %d; want all positive", s.PID, s.RSSBefore, s.RSSOpen, s.RSSAfter)
	}
	if want := float64(s.RSSAfter-s.RSSBefore) / 20; s.RSSPerConn != want {
		t.Errorf("rss per connection %v, want %v", s.RSSPerConn, want)
	}
	if !strings.Contains(progress.String(), "holding 20 connections") || !strings.Contains(progress.String(), "rss ") {
		t.Errorf("progress lines lack the connections held and the rss:\n%s", progress.String())
	}
	if s.Requests != 0 {
		t.Errorf("idle mode sent %d requests", s.Requests)
	}
}

// TestBroadcast: members in one room, one sender; every say reaches every
// member and the fan-out latency is reported.
func TestBroadcast(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, nil)
	cfg := short(loadgen.ModeBroadcast, "tcp://"+d.TCPAddr, 4)
	cfg.Rate = 50
	s := runOK(t, cfg)
	var text bytes.Buffer
	_ = s.WriteText(&text)
	t.Logf("summary:\n%s", text.String())
	if s.Connected != 4 || s.ConnectFailed != 0 || s.ConnLost != 0 {
		t.Errorf("members: %d set up, %d failed, %d lost", s.Connected, s.ConnectFailed, s.ConnLost)
	}
	if s.Requests == 0 || s.Replies != s.Requests || s.Errors != 0 || s.Timeouts != 0 {
		t.Errorf("says %d, ok %d, errors %d (%s), timeouts %d", s.Requests, s.Replies, s.Errors, s.FirstError, s.Timeouts)
	}
	if s.ExpectedDeliveries != 4*s.Replies || s.Deliveries != s.ExpectedDeliveries || s.DeliveriesPerSec <= 0 {
		t.Errorf("deliveries %d of %d expected (%v/s); want all of 4 x %d", s.Deliveries, s.ExpectedDeliveries, s.DeliveriesPerSec, s.Replies)
	}
	checkLatency(t, "fan-out latency", s.Latency, s.Deliveries)
	checkLatency(t, "say latency", *s.SayLatency, s.Replies)
}

// TestChat: six members in rooms of three, each saying at its share of the
// rate, or as fast as its in-flight bound allows (no rate: the bench's Say
// runs); every say reaches exactly the members of its own room, the sayer
// included, and OnLoad runs once before the load.
func TestChat(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, nil)
	for _, tc := range []struct {
		name     string
		rate     float64
		inflight int
	}{{"rate", 60, 0}, {"closed loop", 0, 2}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := short(loadgen.ModeChat, "tcp://"+d.TCPAddr, 6)
			cfg.RoomSize, cfg.Rate, cfg.Inflight = 3, tc.rate, tc.inflight
			var loads atomic.Int32
			cfg.OnLoad = func() { loads.Add(1) }
			s := runOK(t, cfg)
			var text bytes.Buffer
			_ = s.WriteText(&text)
			t.Logf("summary:\n%s", text.String())
			if n := loads.Load(); n != 1 {
				t.Errorf("OnLoad ran %d times, want 1", n)
			}
			if s.Connected != 6 || s.ConnectFailed != 0 || s.ConnLost != 0 {
				t.Errorf("members: %d set up, %d failed, %d lost", s.Connected, s.ConnectFailed, s.ConnLost)
			}
			if s.Requests == 0 || s.Replies != s.Requests || s.Errors != 0 || s.Timeouts != 0 {
				t.Errorf("says %d, ok %d, errors %d (%s), timeouts %d", s.Requests, s.Replies, s.Errors, s.FirstError, s.Timeouts)
			}
			// Rooms of three: a say reaching other rooms would overshoot.
			if s.ExpectedDeliveries != 3*s.Replies || s.Deliveries != s.ExpectedDeliveries {
				t.Errorf("deliveries %d of %d expected; want 3 x %d", s.Deliveries, s.ExpectedDeliveries, s.Replies)
			}
			checkLatency(t, "fan-out latency", s.Latency, s.Deliveries)
			checkLatency(t, "say latency", *s.SayLatency, s.Replies)
		})
	}
}

// TestConfigErrors: a bad config is refused before anything connects.
func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*loadgen.Config)
		want string
	}{
		{"mode", func(c *loadgen.Config) { c.Mode = "nope" }, `-mode "nope"`},
		{"conns", func(c *loadgen.Config) { c.Conns = 0 }, "-conns 0"},
		{"url scheme", func(c *loadgen.Config) { c.URL = "http://127.0.0.1:1" }, `scheme "http"`},
		{"url port", func(c *loadgen.Config) { c.URL = "tcp://127.0.0.1" }, "want tcp://host:port"},
		{"rr topic", func(c *loadgen.Config) { c.Topic = "Chat/Handler_Say/1" }, "want Module/Handler_X"},
		{"sources off loopback", func(c *loadgen.Config) { c.URL = "tcp://192.0.2.1:1883"; c.Sources = 2 }, "need a loopback target"},
		{"broadcast room", func(c *loadgen.Config) { c.Mode = loadgen.ModeBroadcast; c.Room = "r{conn}" }, "no placeholders"},
		{"chat room", func(c *loadgen.Config) { c.Mode = loadgen.ModeChat; c.Room = "r{conn}" }, "no placeholders"},
		{"chat room size", func(c *loadgen.Config) { c.Mode = loadgen.ModeChat; c.RoomSize = -1 }, "-room-size -1"},
		{"pid", func(c *loadgen.Config) { c.PID = 1 << 30 }, "-pid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := short(loadgen.ModeRR, "tcp://127.0.0.1:1", 1)
			tc.set(&cfg)
			s, err := loadgen.Run(t.Context(), cfg)
			if err == nil || s != nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Run = %v, %v; want no summary and an error containing %q", s, err, tc.want)
			}
		})
	}
}

// TestCancel: cancelling the context ends the measurement early and still
// returns a summary of what was measured.
func TestCancel(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, nil)
	cfg := short(loadgen.ModeRR, "tcp://"+d.TCPAddr, 2)
	cfg.Duration, cfg.Warmup = time.Hour, 0
	ctx, cancel := context.WithCancel(t.Context())
	var progress syncbuf.Buffer
	cfg.Progress = &progress
	done := make(chan struct{})
	var s *loadgen.Summary
	var err error
	go func() {
		defer close(done)
		s, err = loadgen.Run(ctx, cfg)
	}()
	// Cancel once load is flowing: the progress line reports replies.
	mqtttest.Poll(t, "a progress line with replies", func() bool {
		return strings.Contains(progress.String(), "replies/s") && !strings.Contains(progress.String(), " 0 replies/s")
	})
	cancel()
	<-done
	if err != nil || s == nil || s.Requests == 0 || s.Seconds <= 0 || s.Seconds > 60 || s.Errors != 0 {
		t.Fatalf("Run = %+v, %v; want a summary of the time measured", s, err)
	}
}

// TestConnLost: connections the server closes under load are counted, their
// outstanding requests become errors, and the run still ends cleanly.
func TestConnLost(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, nil)
	cfg := short(loadgen.ModeRR, "tcp://"+d.TCPAddr, 3)
	cfg.Duration, cfg.Warmup, cfg.Inflight = time.Hour, 0, 4
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan struct{})
	var s *loadgen.Summary
	var err error
	go func() {
		defer close(done)
		s, err = loadgen.Run(ctx, cfg)
	}()
	mqtttest.Poll(t, "requests flowing", func() bool { return d.Gate.Stats().Requests > 100 })
	for _, sess := range d.Gate.Sessions() {
		if err := d.Gate.Close(t.Context(), sess.SessionID); err != nil {
			t.Fatal(err)
		}
	}
	mqtttest.Poll(t, "the gate's connections closed", func() bool { return d.Gate.Stats().Connections == 0 })
	cancel()
	<-done
	if err != nil || s == nil {
		t.Fatalf("Run = %v, %v; want a summary", s, err)
	}
	if s.ConnLost != 3 || !strings.Contains(s.FirstLostError, "lost") || s.Replies == 0 {
		t.Errorf("lost %d (%q), replies %d; want 3 lost, replies before", s.ConnLost, s.FirstLostError, s.Replies)
	}
	if s.Replies+s.Errors+s.Timeouts != s.Requests {
		t.Errorf("requests %d != replies %d + errors %d + timeouts %d: every request accounted for",
			s.Requests, s.Replies, s.Errors, s.Timeouts)
	}
}

// startMosquitto runs a private mosquitto on a free loopback port until the
// test ends and returns its address.
func startMosquitto(t *testing.T) string {
	t.Helper()
	const bin = "/usr/sbin/mosquitto"
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s not found (%v): install Debian's mosquitto (apt-get install -y mosquitto)", bin, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	dir := t.TempDir()
	conf := filepath.Join(dir, "mosquitto.conf")
	text := fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\n", port)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	var out syncbuf.Buffer
	cmd := exec.Command(bin, "-c", conf)
	cmd.Stdout, cmd.Stderr, cmd.Dir = &out, &out, dir
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mosquitto: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("mosquitto exited at start-up:\n%s", out.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto not listening on %s within 10s:\n%s", addr, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWindowMarks: OnWindow marks the measured time (after OnLoad and the
// warm-up, start before end, the whole window between them), and a run
// cancelled in its warm-up marks nothing.
func TestWindowMarks(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, nil)
	cfg := short(loadgen.ModeRR, "tcp://"+d.TCPAddr, 2)
	var events []string
	var at [2]time.Time
	loaded := time.Time{}
	cfg.OnLoad = func() { events = append(events, "load"); loaded = time.Now() }
	cfg.OnWindow = func(start bool) {
		if start {
			events, at[0] = append(events, "start"), time.Now()
		} else {
			events, at[1] = append(events, "end"), time.Now()
		}
	}
	s := runOK(t, cfg)
	if got := strings.Join(events, " "); got != "load start end" {
		t.Fatalf("events %q, want \"load start end\"", got)
	}
	if w := at[0].Sub(loaded); w < cfg.Warmup {
		t.Errorf("window began %v after the load, before the %v warm-up ended", w, cfg.Warmup)
	}
	// The start mark comes as the window begins, the end mark as it ends
	// (each a timer's wake-up late at most).
	if w := at[1].Sub(at[0]); w < cfg.Duration/2 || w > 3*cfg.Duration {
		t.Errorf("marks %v apart, want about the %v window", w, cfg.Duration)
	}
	if s.Replies == 0 {
		t.Errorf("no replies in the window: %+v", s)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cfg = short(loadgen.ModeRR, "tcp://"+d.TCPAddr, 2)
	cfg.Warmup = time.Hour
	cfg.OnLoad = cancel
	marks := 0
	cfg.OnWindow = func(bool) { marks++ }
	_, _ = loadgen.Run(ctx, cfg) // a cancelled run's summary holds no window
	if marks != 0 {
		t.Errorf("a run cancelled in its warm-up marked %d times, want 0", marks)
	}
}

// TestServerCPU: with -pid, the summary gives the CPU time the process used
// over the measured time, and per reply. The process is this one, which
// runs the gate and the load.
func TestServerCPU(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, nil)
	cfg := short(loadgen.ModeRR, "tcp://"+d.TCPAddr, 2)
	cfg.PID, cfg.Inflight = os.Getpid(), 4
	s := runOK(t, cfg)
	if s.Replies == 0 || s.ServerCPU <= 0 || s.ServerCPU > s.Seconds*float64(runtime.NumCPU())+0.05 {
		t.Fatalf("cpu %.3fs over %.3fs with %d replies: want some, and no more than the machine's cores give", s.ServerCPU, s.Seconds, s.Replies)
	}
	if want := s.ServerCPU * 1e6 / float64(s.Replies); math.Abs(s.ServerCPUPerReply-want) > 1e-9 {
		t.Errorf("cpu per reply %v us, want %v", s.ServerCPUPerReply, want)
	}
	var text bytes.Buffer
	_ = s.WriteText(&text)
	if !strings.Contains(text.String(), fmt.Sprintf("cpu of pid %d", os.Getpid())) || !strings.Contains(text.String(), "us per reply") {
		t.Errorf("summary lacks the cpu line:\n%s", text.String())
	}

	// A process that ends before the measured time: the summary says why
	// it has no CPU figure.
	child := exec.Command("sleep", "60")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	cfg.PID = child.Process.Pid
	cfg.OnLoad = func() { _ = child.Process.Kill(); _ = child.Wait() }
	s = runOK(t, cfg)
	text.Reset()
	_ = s.WriteText(&text)
	if s.ServerCPU != 0 || s.ServerCPUError == "" || !strings.Contains(text.String(), "not read: -pid") {
		t.Errorf("pid gone before the window: cpu %v, error %q; want none, and the reason in the summary:\n%s", s.ServerCPU, s.ServerCPUError, text.String())
	}
}

// TestReadCPU: the CPU time read from /proc grows by what a busy loop
// spends, and a process that does not exist is an error naming -pid.
func TestReadCPU(t *testing.T) {
	before, err := loadgen.ReadCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	x := 0
	for end := time.Now().Add(200 * time.Millisecond); time.Now().Before(end); {
		x++
	}
	after, err := loadgen.ReadCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// 200 ms on the clock; the loop's thread may be descheduled for a
	// part of it on a busy machine, hence the margin.
	if d := after - before; d < 50*time.Millisecond {
		t.Errorf("a 200-ms busy loop (%d turns) added %v of CPU time", x, d)
	}
	if _, err := loadgen.ReadCPU(1 << 30); err == nil || !strings.Contains(err.Error(), "-pid") {
		t.Errorf("a pid that does not exist: %v, want an error naming -pid", err)
	}
}
