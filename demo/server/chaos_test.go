package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/internal/testkit/chaos"
	"github.com/mqantgen/mqantgen/internal/testkit/mqtttest"
	"github.com/mqantgen/mqantgen/internal/testkit/rabbittest"
)

// chaosStrict makes TestChaos fail when a fault phase misses a goal of
// issue 10 item 5: no connection lost on a gate that was not restarted, no
// call timed out (calls in flight when a backend or the broker goes away
// fail at once), a good reply within 1 s of the restarted part being ready,
// no call that ran twice or was answered twice, no hung call. Without it
// those figures are only reported; what the code already does (a clean
// baseline, recovery from every fault, clean shutdowns) is always checked.
var chaosStrict = true

// Load of TestChaos; CHAOS_CLIENTS overrides the number of login clients.
const (
	chaosLoginClients = 60                     // split over both gates, logging in again and again
	chaosLoginEvery   = 100 * time.Millisecond // each login client's pause between calls
	chaosMembers      = 6                      // chat members, split over both gates
	chaosSayEvery     = 300 * time.Millisecond
	chaosCallTimeout  = 12 * time.Second // a call unanswered this long has timed out
	chaosDown         = time.Second      // how long a killed or stopped part stays away
	chaosSettle       = 3 * time.Second  // load after recovery, before the next fault
	chaosRecoverLimit = 45 * time.Second // the run fails when recovery takes longer
)

// TestChaos runs the cluster demo as real processes (two gates, Login, Chat
// and a private RabbitMQ) under load, and injects one fault per phase:
// Login killed with SIGKILL and started again, the broker stopped and
// started again on the same port and data, gate2 interrupted (Ctrl+C) and
// started again; then issue 15's faults (chaos_rabbit_test.go): queues
// deleted, a duplicate instance id, a memory alarm, a graceful stop of one
// of two Login instances, gate1's broker connection closed while pushes
// flow. Login clients on both gates log in again and again; chat
// members on both gates say numbered messages in one room and record the
// broadcasts they get. Each phase's figures are logged as a table, and
// written as markdown to the file named by CHAOS_REPORT when set.
//
// The servers are built with -tags chaoshook, which logs each handler
// execution with the call's unique chaosId, so calls that ran twice show
// even across a killed process. CHAOS_RACE=1 builds them with -race too
// (slower; the default keeps the load realistic on two cores).
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker and four processes under load; skipped with -short")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "server")
	built := make(chan error, 1)
	go func() { // the build and the broker's boot take about as long
		args := []string{"build", "-tags", "chaoshook", "-o", bin}
		if os.Getenv("CHAOS_RACE") == "1" {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
		if err != nil {
			err = fmt.Errorf("build: %v\n%s", err, out)
		}
		built <- err
	}()
	broker := rabbittest.StartT(t)
	if err := <-built; err != nil {
		t.Fatal(err)
	}

	// Login2 (process login2) runs only in the graceful-stop scenario.
	confFile, ports := writeClusterConfig(t, dir, broker.URI, 2)
	serverArgs := func(pid string) []string {
		return []string{"-conf", confFile, "-pid", pid, "-web", "", "-log", "debug"}
	}
	procs := map[string]*chaos.Proc{}
	for _, pid := range []string{"login", "chat", "gate1", "gate2"} {
		procs[pid] = chaos.StartProc(t, dir, pid, bin, serverArgs(pid)...)
	}
	for pid, id := range map[string]string{"login": "Login1", "chat": "Chat1", "gate1": "Gate1", "gate2": "Gate2"} {
		if _, err := procs[pid].WaitLog(60*time.Second, "RPC endpoint consuming", "id="+id); err != nil {
			t.Fatal(err)
		}
	}
	gateURLs := map[string][]string{
		"gate1": {fmt.Sprintf("tcp://127.0.0.1:%d", ports[0]), fmt.Sprintf("ws://127.0.0.1:%d/mqtt", ports[1])},
		"gate2": {fmt.Sprintf("tcp://127.0.0.1:%d", ports[2]), fmt.Sprintf("ws://127.0.0.1:%d/mqtt", ports[3])},
	}
	waitListening(t, strings.TrimPrefix(gateURLs["gate1"][0], "tcp://"), strings.TrimPrefix(gateURLs["gate2"][0], "tcp://"))

	// The load: login clients and chat members on both gates, over TCP and
	// WebSocket.
	nLogin := chaosLoginClients
	if s := os.Getenv("CHAOS_CLIENTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 2 || n > 1000 {
			t.Fatalf("CHAOS_CLIENTS=%q: want 2..1000", s)
		}
		nLogin = n
	}
	rec := chaos.NewRecorder()
	var clients []*chaos.Client
	add := func(name, room string, every time.Duration, i int) {
		g := []string{"gate1", "gate2"}[i%2]
		clients = append(clients, chaos.NewClient(chaos.ClientConfig{Name: name, Gate: g, URL: gateURLs[g][i/2%2],
			User: name, Room: room, Every: every, Timeout: chaosCallTimeout}, rec))
	}
	for i := range nLogin {
		add(fmt.Sprintf("u%d", i), "", chaosLoginEvery, i)
	}
	for i := range chaosMembers {
		add(fmt.Sprintf("m%d", i), "chaos", chaosSayEvery, i)
	}
	load, stopLoad := context.WithCancel(context.Background())
	var running sync.WaitGroup
	stopClients := sync.OnceFunc(func() {
		stopLoad()
		running.Wait()
		// Calls in flight at the stop get their outcome (a reply or the
		// client's timeout) before the connections close.
		for _, c := range clients {
			c.Close()
		}
	})
	t.Cleanup(stopClients) // runs before the servers' cleanups
	loadStart := time.Now()
	for _, c := range clients {
		running.Add(1)
		go func() { defer running.Done(); c.Run(load) }()
	}
	waitFor(t, "every client's first good reply", chaosRecoverLimit, func() bool {
		return rec.ClientsOKAfter(loadStart, nil) == len(clients)
	})

	cl := &chaosCluster{broker: broker, procs: procs, rec: rec, logins: nLogin, perGate: map[string]int{},
		gates:    map[string]string{"gate1": strings.TrimPrefix(gateURLs["gate1"][0], "tcp://"), "gate2": strings.TrimPrefix(gateURLs["gate2"][0], "tcp://")},
		gateURLs: gateURLs, dir: dir, bin: bin, serverArgs: serverArgs}
	for _, c := range clients {
		cl.perGate[c.Gate()]++
	}

	// The phases: a quiet one, then one per scenario. Each begins just
	// before its fault and ends when the next begins; it waits until every
	// client the fault concerns had a good reply after the restarted part
	// was ready, then keeps the load on for chaosSettle.
	phases := []chaos.Phase{{Name: "baseline (no fault)", Start: time.Now()}}
	hold(chaosSettle)
	scenarios := append(append([]chaosScenario(nil), chaosScenarios...), rabbitScenarios...)
	for _, sc := range scenarios {
		now := time.Now()
		phases[len(phases)-1].End = now
		p := chaos.Phase{Name: sc.name, Start: now, RestartedGate: sc.restartedGate, Recovers: sc.recovers}
		p.Fault, p.Ready = sc.inject(t, cl)
		n, match := len(clients), func(string, string) bool { return true }
		if sc.concerned != nil {
			n, match = sc.concerned(cl)
		}
		waitFor(t, sc.name+": a good reply after ready for every client concerned", chaosRecoverLimit, func() bool {
			return rec.ClientsOKAfter(p.Ready, match) >= n
		})
		hold(chaosSettle)
		phases = append(phases, p)
	}
	phases[len(phases)-1].End = time.Now()
	cl.phases = phases
	for i, sc := range scenarios {
		if sc.explain != nil {
			t.Logf("%s: %s", sc.name, sc.explain(cl, phases[i+1]))
		}
	}

	// The member who left during the broker outage has left its room.
	if cl.observer != nil {
		deadline := time.Now().Add(30 * time.Second)
		for {
			p := cl.observer.WaitPublish("Chat/On", time.Until(deadline))
			if p.Topic == "Chat/OnLeave" && strings.Contains(string(p.Payload), `"userName":"leaver"`) {
				break
			}
		}
	}

	stopClients()
	var logs []string
	for _, pid := range []string{"login", "login2", "chat"} {
		if p := procs[pid]; p != nil {
			logs = append(logs, p.Logs()...)
		}
	}
	execs, err := chaos.CountExecutions(logs...)
	if err != nil {
		t.Fatal(err)
	}
	run := &chaos.Run{Rec: rec, Execs: execs}
	var figs []chaos.Figures
	for _, p := range phases {
		figs = append(figs, run.Analyse(p))
	}
	table := chaos.Table(figs)
	t.Logf("chaos figures (%d login clients every %v, %d chat members every %v, call timeout %v):\n%s",
		nLogin, chaosLoginEvery, chaosMembers, chaosSayEvery, chaosCallTimeout, table)
	if path := os.Getenv("CHAOS_REPORT"); path != "" {
		md := fmt.Sprintf("Chaos run of %s: %d login clients (one login every %v each) and %d chat members (one say every %v each) over two gates; a call unanswered for %v has timed out, an error after %v or more counts as timed out too.\n\n%s",
			time.Now().Format("2006-01-02 15:04"), nLogin, chaosLoginEvery, chaosMembers, chaosSayEvery, chaosCallTimeout, chaos.SlowError, table)
		if err := os.WriteFile(path, []byte(md), 0o644); err != nil {
			t.Error(err)
		}
	}

	// What the code does today, always checked.
	base := figs[0]
	if base.Calls == 0 || base.OK != base.Calls || base.ConnsLost != 0 || base.PushesLost != 0 || base.PushesExpected == 0 {
		t.Errorf("baseline not clean: %d calls, %d ok, %d connections lost, %d of %d pushes lost",
			base.Calls, base.OK, base.ConnsLost, base.PushesLost, base.PushesExpected)
		// What the processes said meanwhile (the tails printed at the end
		// are of the last phase).
		for pid, p := range procs {
			if w := p.Warnings(phases[0].Start, phases[0].End, 30); len(w) > 0 {
				t.Logf("%s warned during the baseline:\n%s", pid, strings.Join(w, "\n"))
			}
		}
	}
	for _, f := range figs {
		if f.OKUnseen != 0 {
			t.Errorf("%s: %d successful calls left no execution line: duplicates cannot be counted", f.Phase, f.OKUnseen)
		}
	}
	for _, f := range figs[1:] {
		if f.AllOK < 0 {
			t.Errorf("%s: some client never had a good reply after recovery", f.Phase)
		}
	}
	for _, f := range figs {
		if strings.Contains(f.Phase, "gate2") && f.ConnsLostRestarted == 0 {
			t.Errorf("%s: no connection on the restarted gate was lost: the fault did not happen", f.Phase)
		}
	}

	for i, sc := range scenarios {
		if sc.check != nil {
			sc.check(t, cl, figs[i+1], chaosStrict)
		}
	}

	// The goals of issue 10 item 5.
	if !chaosStrict {
		return
	}
	for i, f := range figs {
		if f.ConnsLost != 0 {
			t.Errorf("%s: %d client connections lost on gates that were not restarted (goal 0)", f.Phase, f.ConnsLost)
		}
		if f.Timeouts() != 0 && i > 0 && scenarios[i-1].timeoutsKnown != "" &&
			(scenarios[i-1].timeoutsAllowed == 0 || f.Timeouts() <= scenarios[i-1].timeoutsAllowed) {
			t.Logf("%s: %d calls timed out (known: %s)", f.Phase, f.Timeouts(), scenarios[i-1].timeoutsKnown)
		} else if f.Timeouts() != 0 {
			t.Errorf("%s: %d calls timed out: %d without a reply in %v, %d with an error after %v or more (goal 0: fail at once)",
				f.Phase, f.Timeouts(), f.NoReply, chaosCallTimeout, f.SlowErrors, chaos.SlowError)
		}
		if f.FirstOK > time.Second {
			t.Errorf("%s: first good reply %v after ready (goal <= 1s)", f.Phase, f.FirstOK.Round(time.Millisecond))
		}
		if f.RanTwice != 0 || f.DupReplies != 0 || f.PushesDup != 0 {
			t.Errorf("%s: %d calls ran twice, %d answered twice, %d broadcasts received twice (goal 0)", f.Phase, f.RanTwice, f.DupReplies, f.PushesDup)
		}
		if f.Hung != 0 {
			t.Errorf("%s: %d calls never answered (goal 0)", f.Phase, f.Hung)
		}
	}
}

// chaosCluster is what a scenario acts on.
type chaosCluster struct {
	broker  *rabbittest.Broker
	procs   map[string]*chaos.Proc // by process id: login, chat, gate1, gate2 (login2 once started)
	rec     *chaos.Recorder
	logins  int               // login clients (the others are chat members)
	perGate map[string]int    // clients per gate
	gates   map[string]string // process id -> TCP address

	gateURLs   map[string][]string // process id -> its TCP and WebSocket URLs
	dir, bin   string              // where logs go; the server binary
	serverArgs func(pid string) []string
	notes      []string      // what scenarios saw, for their explain
	phases     []chaos.Phase // every phase, once the run is over

	// A member that leaves while the broker is down: its room must still
	// hear of it (session-closed events are retried, not sent once).
	observer *mqtttest.Client
}

// chaosScenario is one fault. Issue 15's faults (a deleted queue, a
// duplicate instance id, a memory alarm, a graceful stop, a gate's
// connection closed while pushes flow) are in rabbitScenarios
// (chaos_rabbit_test.go), run after these.
type chaosScenario struct {
	name string
	// inject causes the fault and repairs it, returning when the fault
	// began and when the repaired part was ready again (its log line or
	// port); it fails the test when it cannot.
	inject func(t *testing.T, c *chaosCluster) (fault, ready time.Time)
	// restartedGate names a gate the fault restarts: its clients lose
	// their connections by design.
	restartedGate string
	// recovers selects the calls whose success shows recovery; nil: all.
	recovers func(*chaos.Call) bool
	// explain, when set, returns notes on the phase for the test log.
	explain func(c *chaosCluster, p chaos.Phase) string
	// concerned returns how many clients must have a good reply, on calls
	// that match, before the phase may end; nil: every client, any call.
	concerned func(c *chaosCluster) (int, func(gate, route string) bool)
	// check, when set, tests the phase's figures after the run: what the
	// code does always, the scenario's own goals when strict.
	check func(t *testing.T, c *chaosCluster, f chaos.Figures, strict bool)
	// timeoutsKnown, when set, says why calls of this phase still time
	// out (a known bug, named there): the goal of 0 is then reported,
	// not asserted.
	timeoutsKnown string
	// timeoutsAllowed, with timeoutsKnown, bounds them instead: more is
	// still a failure.
	timeoutsAllowed int
}

var chaosScenarios = []chaosScenario{
	{
		name: "a. Login killed (SIGKILL), restarted",
		inject: func(t *testing.T, c *chaosCluster) (time.Time, time.Time) {
			return c.restart(t, "login", (*chaos.Proc).Kill, "RPC endpoint consuming", "id=Login1")
		},
		recovers: func(c *chaos.Call) bool { return c.Route == chaos.LoginRoute },
		concerned: func(c *chaosCluster) (int, func(string, string) bool) {
			return c.logins, func(_, route string) bool { return route == chaos.LoginRoute }
		},
	},
	{
		name: "a2. Chat killed (SIGKILL), restarted",
		inject: func(t *testing.T, c *chaosCluster) (time.Time, time.Time) {
			return c.restart(t, "chat", (*chaos.Proc).Kill, "RPC endpoint consuming", "id=Chat1")
		},
		// The rooms went with the process: members join again when told
		// they are not in the room, and say again.
		recovers: func(c *chaos.Call) bool { return c.Route == chaos.SayRoute },
		concerned: func(c *chaosCluster) (int, func(string, string) bool) {
			return chaosMembers, func(_, route string) bool { return route == chaos.SayRoute }
		},
	},
	{
		name: "b. broker stopped (SIGTERM), restarted",
		inject: func(t *testing.T, c *chaosCluster) (time.Time, time.Time) {
			c.observer = mqtttest.Connect(t, c.gates["gate1"], "leave-observer", 60)
			leaver := mqtttest.Connect(t, c.gates["gate2"], "leaver", 60)
			for who, cl := range map[string]*mqtttest.Client{"observer": c.observer, "leaver": leaver} {
				if got := cl.Request("Login/Handler_Login/1", `{"userName":"`+who+`","passWord":"x"}`); !strings.Contains(got, "login success") {
					t.Fatalf("%s login: %s", who, got)
				}
				if got := cl.Request("Chat/Handler_JoinChat/2", `{"roomName":"leavers"}`); !strings.Contains(got, "join success") {
					t.Fatalf("%s join: %s", who, got)
				}
			}
			fault := time.Now()
			if err := c.broker.StopBroker(); err != nil {
				t.Fatal(err)
			}
			leaver.Conn.Close() // gate2 cannot tell Chat now
			hold(chaosDown)
			if err := c.broker.StartAgain(); err != nil { // returns once the port accepts
				t.Fatal(err)
			}
			return fault, time.Now()
		},
		// Each process redials on its own backoff: when did each get back?
		explain: func(c *chaosCluster, p chaos.Phase) string {
			var b strings.Builder
			b.WriteString("back on the broker after it was ready:")
			for _, pid := range []string{"login", "chat", "gate1", "gate2"} {
				for _, at := range c.procs[pid].LogTimes("broker connected") {
					if at.After(p.Ready.Add(-time.Second)) && at.Before(p.End) {
						fmt.Fprintf(&b, " %s %+dms;", pid, at.Sub(p.Ready).Milliseconds())
						break
					}
				}
			}
			return b.String()
		},
	},
	{
		name: "c. gate2 interrupted (SIGINT), restarted",
		inject: func(t *testing.T, c *chaosCluster) (time.Time, time.Time) {
			fault, ready := c.restart(t, "gate2", func(p *chaos.Proc) error { return p.Interrupt(20 * time.Second) },
				"RPC endpoint consuming", "id=Gate2")
			// Ready once it also listens, whichever is later.
			listening, err := c.procs["gate2"].WaitLog(60*time.Second, "TCP listening")
			if err != nil {
				t.Fatal(err)
			}
			if listening.After(ready) {
				ready = listening
			}
			return fault, ready
		},
		restartedGate: "gate2",
		recovers:      func(c *chaos.Call) bool { return c.Gate == "gate2" },
		concerned: func(c *chaosCluster) (int, func(string, string) bool) {
			return c.perGate["gate2"], func(gate, _ string) bool { return gate == "gate2" }
		},
	},
}

// restart stops process pid with stop, keeps it away for chaosDown, starts
// it again and waits for the log line with every one of ready in it. It
// returns when the stop began and the time in that line.
func (c *chaosCluster) restart(t *testing.T, pid string, stop func(*chaos.Proc) error, ready ...string) (time.Time, time.Time) {
	t.Helper()
	p := c.procs[pid]
	fault := time.Now()
	if err := stop(p); err != nil {
		t.Error(err)
	}
	hold(chaosDown)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	at, err := p.WaitLog(60*time.Second, ready...)
	if err != nil {
		t.Fatal(err)
	}
	return fault, at
}

// hold keeps the load running for d: a phase's duration, not a wait for
// something to happen.
func hold(d time.Duration) { time.Sleep(d) }

// waitFor polls cond until it holds, failing the test after within.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
