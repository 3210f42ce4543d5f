package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/internal/testkit/chaos"
)

// chaosPushesKept makes scenario h assert that no push is lost when a
// gate's broker connection closes: its instance queue outlives the
// connection (x-expires), and the gate consumes it again on reconnect.
var chaosPushesKept = true

// chaosPushLossesReported makes scenario h assert, while pushes may still
// be lost, that each say whose push was lost left a report line in some
// process's log. False while pushes in a gate's exclusive queue vanish with
// it unseen (core/rabbitmq: the sender's publish was confirmed).
var chaosPushLossesReported = false

// Issue 15's faults, run by TestChaos after issue 10's, on the same
// cluster and load.
const (
	chaosBurstEvery  = 25 * time.Millisecond // says of the two extra members of scenario h
	chaosGateCloses  = 2                     // times scenario h closes gate1's connection
	chaosLogin2Calls = 100                   // logins Login2 runs before it is stopped
)

// pushReports are the log lines that tell of a push (a no-reply call to a
// gate) that did not arrive.
var pushReports = []string{"chat: push failed", "no-reply call lost", "their target's queue vanished", "push lost", "pushes lost"}

var rabbitScenarios = []chaosScenario{
	{
		// Fault 1: the broker cancels the consumers; the instances declare
		// and consume again.
		name: "d. queues mqant.t.Login and mqant.i.Gate1 deleted (rabbitmqctl delete_queue)",
		inject: func(t *testing.T, c *chaosCluster) (time.Time, time.Time) {
			begin := time.Now()
			for _, q := range []string{"mqant.t.Login", "mqant.i.Gate1"} {
				if err := c.broker.DeleteQueue(q); err != nil {
					t.Fatal(err)
				}
			}
			// Fault: the first deletion; ready: the last consumer told,
			// which declares and consumes again at once.
			fault := c.logAfter(t, "login", begin, "consumer cancelled by the broker", "queue=mqant.t.Login")
			ready := c.logAfter(t, "gate1", begin, "consumer cancelled by the broker", "queue=mqant.i.Gate1")
			if ready.Before(fault) {
				fault, ready = ready, fault
			}
			waitFor(t, "both queues back with their consumers", 10*time.Second, func() bool {
				qs, err := c.broker.Queues()
				return err == nil && qs["mqant.t.Login"] >= 1 && qs["mqant.i.Gate1"] == 1
			})
			return fault, ready
		},
		// Calls in mqant.t.Login when it was deleted are lost with it; the
		// callers' probe (core/rabbitmq/watch.go watchTargets) asks by
		// name whether the queue still exists, and Login1 has declared it
		// again within milliseconds, so they wait for their deadline.
		timeoutsKnown: "calls in the deleted type queue wait for their deadline: the vanished-queue probe asks by name and the queue is back",
		check: func(t *testing.T, c *chaosCluster, f chaos.Figures, strict bool) {
			if f.NoReply != 0 || f.Hung != 0 {
				t.Errorf("%s: %d calls without any reply, %d hung: every lost call must at least end at its deadline", f.Phase, f.NoReply, f.Hung)
			}
		},
	},
	{
		// Fault 2: a fifth process with the id of a running one.
		name: "e. duplicate instance id (a second -pid login process)",
		inject: func(t *testing.T, c *chaosCluster) (time.Time, time.Time) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, c.bin, c.serverArgs("login")...)
			fault := time.Now()
			out, err := cmd.CombinedOutput()
			exited := time.Now()
			_ = os.WriteFile(filepath.Join(c.dir, "login-duplicate.log"), out, 0o644)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() <= 0 {
				t.Errorf("the duplicate login process ended with %v after %v, want a non-zero exit status:\n%s", err, exited.Sub(fault), out)
			}
			last := lastLine(string(out))
			if !strings.Contains(last, "Login1") || !strings.Contains(last, "already served by another process") {
				t.Errorf("the duplicate's last words do not say which id is taken and why: %q", last)
			}
			c.notes = append(c.notes, fmt.Sprintf("the duplicate exited with %v after %v: %s", err, exited.Sub(fault).Round(time.Millisecond), last))
			return fault, exited
		},
		explain: func(c *chaosCluster, _ chaos.Phase) string { return c.note("the duplicate exited") },
		check: func(t *testing.T, c *chaosCluster, f chaos.Figures, strict bool) {
			if strict && f.Calls != f.OK {
				t.Errorf("%s: %d of %d calls failed while the duplicate tried to start (goal 0)", f.Phase, f.Calls-f.OK, f.Calls)
			}
		},
	},
	{
		// Fault 4: connection.blocked on every publishing connection.
		name: "f. broker memory alarm, then cleared",
		// README, "Operating RabbitMQ": the publishes on their way when the
		// broker stops reading a connection (the one that made it block, and
		// those sent before the connection.blocked notice arrived) sit unread
		// until the alarm clears. One per connection was seen on a quiet
		// machine; 15-17 in three of five runs on 2026-11-30 (600 calls/s
		// over 4 connections), so the bound is 25, not 4.
		timeoutsKnown:   "the publishes on their way when the broker stopped reading their connection wait for the alarm to clear",
		timeoutsAllowed: 25,
		inject: func(t *testing.T, c *chaosCluster) (time.Time, time.Time) {
			t.Cleanup(func() { _ = c.broker.SetMemoryAlarm(false) })
			begin := time.Now()
			if err := c.broker.SetMemoryAlarm(true); err != nil {
				t.Fatal(err)
			}
			// Both gates publish calls all the time: the broker blocks them.
			fault := c.logAfter(t, "gate1", begin, "broker blocked publishing")
			if at := c.logAfter(t, "gate2", begin, "broker blocked publishing"); at.Before(fault) {
				fault = at
			}
			hold(chaosDown)
			if err := c.broker.SetMemoryAlarm(false); err != nil {
				t.Fatal(err)
			}
			ready := c.logAfter(t, "gate1", fault, "broker unblocked publishing")
			if at := c.logAfter(t, "gate2", fault, "broker unblocked publishing"); at.After(ready) {
				ready = at
			}
			return fault, ready
		},
		check: func(t *testing.T, c *chaosCluster, f chaos.Figures, strict bool) {
			if f.Errors == 0 {
				t.Errorf("%s: no call failed while the broker blocked publishing: the alarm did not bite", f.Phase)
			}
		},
	},
	{
		// Fault 5: one of two Login instances stops gracefully under load.
		name: "g. Login2 of two interrupted (SIGINT) under load",
		inject: func(t *testing.T, c *chaosCluster) (time.Time, time.Time) {
			p := chaos.StartProc(t, c.dir, "login2", c.bin, c.serverArgs("login2")...)
			c.procs["login2"] = p
			if _, err := p.WaitLog(60*time.Second, "RPC endpoint consuming", "id=Login2"); err != nil {
				t.Fatal(err)
			}
			pollEvery(t, "Login2 serving its share of the logins", 30*time.Second, 100*time.Millisecond, func() bool {
				return len(p.LogTimes(chaos.ExecLine)) >= chaosLogin2Calls
			})
			fault := time.Now()
			if err := p.Interrupt(20 * time.Second); err != nil {
				t.Error(err)
			}
			// Nothing restarts: "ready" is when Login2 had exited.
			return fault, time.Now()
		},
		recovers: func(c *chaos.Call) bool { return c.Route == chaos.LoginRoute },
		concerned: func(c *chaosCluster) (int, func(string, string) bool) {
			return c.logins, func(_, route string) bool { return route == chaos.LoginRoute }
		},
		explain: func(c *chaosCluster, p chaos.Phase) string {
			return fmt.Sprintf("Login2 ran %d logins, stopped in %v", len(c.procs["login2"].LogTimes(chaos.ExecLine)),
				p.Ready.Sub(p.Fault).Round(time.Millisecond))
		},
		check: func(t *testing.T, c *chaosCluster, f chaos.Figures, strict bool) {
			logs := c.procs["login2"].Logs()
			if b, _ := os.ReadFile(logs[len(logs)-1]); !strings.Contains(string(b), "closing down") {
				t.Errorf("%s: Login2's log lacks the shutdown line", f.Phase)
			}
			if strict && (f.Errors != 0 || f.Timeouts() != 0 || f.LostWithConn != 0) {
				t.Errorf("%s: %d errors, %d timeouts, %d lost reached clients across a graceful stop (goal 0)",
					f.Phase, f.Errors, f.Timeouts(), f.LostWithConn)
			}
		},
	},
	{
		// Fault 6: pushes on their way to gate1 when its connection closes.
		name: "h. gate1's broker connection closed while pushes flow",
		inject: func(t *testing.T, c *chaosCluster) (time.Time, time.Time) {
			// Two more members on gate2 say fast in the room, so pushes
			// to gate1's members are always on their way.
			begin := time.Now()
			stop := c.burst(t, "gate2", chaosBurstEvery, "b0", "b1")
			defer stop()
			waitFor(t, "the extra members saying", 30*time.Second, func() bool {
				return c.rec.ClientOKAfter("b0", begin) && c.rec.ClientOKAfter("b1", begin)
			})
			host, _ := os.Hostname()
			prefix := fmt.Sprintf("mqantgen %s pid %d ", host, c.procs["gate1"].Pid())
			var fault, ready time.Time
			for i := range chaosGateCloses {
				at := time.Now()
				n, err := c.broker.CloseConnections(prefix, "chaos test: gate1's connection closed")
				if err != nil || n != 1 {
					t.Fatalf("closing %q: %d closed, %v", prefix, n, err)
				}
				if i == 0 {
					fault = at
				}
				ready = c.logAfter(t, "gate1", at, "broker connected")
				// Pushes reach gate1's members again before the next close.
				waitFor(t, "a say on gate1 after it reconnected", 30*time.Second, func() bool {
					return c.rec.ClientsOKAfter(ready, func(gate, route string) bool { return gate == "gate1" && route == chaos.SayRoute }) > 0
				})
			}
			return fault, ready
		},
		recovers: func(c *chaos.Call) bool { return c.Gate == "gate1" },
		concerned: func(c *chaosCluster) (int, func(string, string) bool) {
			return c.perGate["gate1"], func(gate, _ string) bool { return gate == "gate1" }
		},
		explain: func(c *chaosCluster, p chaos.Phase) string {
			lines := c.pushReports(p)
			return fmt.Sprintf("gate1's connection closed %d times; %d log lines report a lost push: %s",
				chaosGateCloses, len(lines), strings.Join(lines, "; "))
		},
		check: func(t *testing.T, c *chaosCluster, f chaos.Figures, strict bool) {
			if f.PushesExpected == 0 {
				t.Errorf("%s: no push expected: the members were not chatting", f.Phase)
			}
			if f.PushesLost == 0 {
				return
			}
			// One broadcast per gate per say: a say whose push to gate1
			// was lost needs one report line.
			reports := len(c.pushReports(phaseOf(c, f.Phase)))
			t.Logf("%s: %d of %d pushes lost, from %d says; %d log lines report a lost push", f.Phase, f.PushesLost, f.PushesExpected, f.SaysWithLoss, reports)
			switch {
			case !strict:
			case chaosPushesKept:
				t.Errorf("%s: %d of %d pushes lost (goal 0)", f.Phase, f.PushesLost, f.PushesExpected)
			case chaosPushLossesReported && reports < f.SaysWithLoss:
				t.Errorf("%s: %d says lost pushes but only %d log lines report a lost push (goal: none lost in silence)", f.Phase, f.SaysWithLoss, reports)
			}
		},
	},
}

// logAfter waits up to 30 s for process pid to log a line with every one
// of subs, stamped after after, and returns its time.
func (c *chaosCluster) logAfter(t *testing.T, pid string, after time.Time, subs ...string) time.Time {
	t.Helper()
	var at time.Time
	pollEvery(t, fmt.Sprintf("%s logging %q", pid, subs), 30*time.Second, 50*time.Millisecond, func() bool {
		for _, ts := range c.procs[pid].LogTimes(subs...) {
			if ts.After(after) {
				at = ts
				return true
			}
		}
		return false
	})
	return at
}

// burst starts recorded chat members, one per name, on gate g in the
// chaos room, saying every every; stop ends them (also at cleanup).
func (c *chaosCluster) burst(t *testing.T, g string, every time.Duration, names ...string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var clients []*chaos.Client
	for _, n := range names {
		cl := chaos.NewClient(chaos.ClientConfig{Name: n, Gate: g, URL: c.gateURLs[g][0], User: n, Room: "chaos",
			Every: every, Timeout: chaosCallTimeout}, c.rec)
		clients = append(clients, cl)
		wg.Add(1)
		go func() { defer wg.Done(); cl.Run(ctx) }()
	}
	stop = sync.OnceFunc(func() {
		cancel()
		wg.Wait()
		for _, cl := range clients {
			cl.Close()
		}
	})
	t.Cleanup(stop)
	return stop
}

// pushReports returns the log lines of phase p, from every process, that
// report a push that did not arrive, each prefixed with its process.
func (c *chaosCluster) pushReports(p chaos.Phase) []string {
	var out []string
	for _, pid := range []string{"login", "chat", "gate1", "gate2"} {
		for _, path := range c.procs[pid].Logs() {
			b, err := os.ReadFile(path)
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(b), "\n") {
				at, ok := chaos.LineTime(line)
				if !ok || at.Before(p.Start) || !at.Before(p.End) || !slices.ContainsFunc(pushReports, func(r string) bool { return strings.Contains(line, r) }) {
					continue
				}
				_, msg, _ := strings.Cut(line, " msg=")
				if len(msg) > 240 {
					msg = msg[:237] + "..."
				}
				out = append(out, pid+": "+msg)
			}
		}
	}
	return out
}

// phaseOf returns the phase of TestChaos named name, as recorded in
// c.phases.
func phaseOf(c *chaosCluster, name string) chaos.Phase {
	for _, p := range c.phases {
		if p.Name == name {
			return p
		}
	}
	return chaos.Phase{}
}

// note returns the first note that starts with prefix.
func (c *chaosCluster) note(prefix string) string {
	for _, n := range c.notes {
		if strings.HasPrefix(n, prefix) {
			return n
		}
	}
	return ""
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// pollEvery polls cond every interval until it holds, failing the test
// after within; for conditions that read whole log files.
func pollEvery(t *testing.T, what string, within, interval time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(interval)
	}
}
