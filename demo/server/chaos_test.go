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

	"github.com/mqantgen/mqantgen/internal/chaos"
	"github.com/mqantgen/mqantgen/internal/rabbittest"
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
// started again. Login clients on both gates log in again and again; chat
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

	ports := freePorts(t, 4)
	conf := fmt.Sprintf(`{
  "Rabbitmq": {"Uri": %q},
  "Module": {
    "Gate": [
      {"Id": "Gate1", "Host": "127.0.0.1", "ProcessID": "gate1",
       "Settings": {"TCPAddr": "127.0.0.1:%d", "WSAddr": "127.0.0.1:%d", "SessionCloseListeners": ["Chat"]}},
      {"Id": "Gate2", "Host": "127.0.0.1", "ProcessID": "gate2",
       "Settings": {"TCPAddr": "127.0.0.1:%d", "WSAddr": "127.0.0.1:%d", "SessionCloseListeners": ["Chat"]}}
    ],
    "Login": [{"Id": "Login1", "Host": "127.0.0.1", "ProcessID": "login"}],
    "Chat":  [{"Id": "Chat1",  "Host": "127.0.0.1", "ProcessID": "chat"}]
  }
}`, broker.URI, ports[0], ports[1], ports[2], ports[3])
	confFile := filepath.Join(dir, "cluster.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	procs := map[string]*chaos.Proc{}
	for _, pid := range []string{"login", "chat", "gate1", "gate2"} {
		procs[pid] = chaos.StartProc(t, dir, pid, bin, "-conf", confFile, "-pid", pid, "-web", "", "-log", "debug")
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

	// The phases. Each begins just before its fault and ends when the next
	// begins; it waits until every client it concerns had a good reply
	// after the restarted part was ready, then keeps the load on.
	var phases []chaos.Phase
	begin := func(name string) *chaos.Phase {
		now := time.Now()
		if n := len(phases); n > 0 {
			phases[n-1].End = now
		}
		phases = append(phases, chaos.Phase{Name: name, Start: now})
		return &phases[len(phases)-1]
	}
	recovered := func(p *chaos.Phase, clients int, match func(gate, route string) bool) {
		t.Helper()
		waitFor(t, p.Name+": every concerned client's good reply after ready", chaosRecoverLimit, func() bool {
			return rec.ClientsOKAfter(p.Ready, match) >= clients
		})
		hold(chaosSettle)
	}
	nGate2 := 0
	for _, c := range clients {
		if c.Gate() == "gate2" {
			nGate2++
		}
	}

	p := begin("baseline (no fault)")
	hold(chaosSettle)

	p = begin("a. Login killed (SIGKILL), restarted")
	p.Recovers = func(c *chaos.Call) bool { return c.Route == chaos.LoginRoute }
	p.Fault = time.Now()
	if err := procs["login"].Kill(); err != nil {
		t.Fatal(err)
	}
	hold(chaosDown)
	if err := procs["login"].Start(); err != nil {
		t.Fatal(err)
	}
	ready, err := procs["login"].WaitLog(60*time.Second, "RPC endpoint consuming", "id=Login1")
	if err != nil {
		t.Fatal(err)
	}
	p.Ready = ready
	recovered(p, nLogin, func(_, route string) bool { return route == chaos.LoginRoute })

	p = begin("b. broker stopped (SIGTERM), restarted")
	p.Fault = time.Now()
	if err := broker.StopBroker(); err != nil {
		t.Fatal(err)
	}
	hold(chaosDown)
	if err := broker.StartAgain(); err != nil {
		t.Fatal(err)
	}
	p.Ready = time.Now()
	recovered(p, len(clients), nil)

	p = begin("c. gate2 interrupted (SIGINT), restarted")
	p.RestartedGate = "gate2"
	p.Recovers = func(c *chaos.Call) bool { return c.Gate == "gate2" }
	p.Fault = time.Now()
	if err := procs["gate2"].Interrupt(20 * time.Second); err != nil {
		t.Error(err)
	}
	hold(chaosDown)
	if err := procs["gate2"].Start(); err != nil {
		t.Fatal(err)
	}
	// Ready once it listens and consumes its queues, whichever is later.
	listening, err := procs["gate2"].WaitLog(60*time.Second, "TCP listening")
	if err != nil {
		t.Fatal(err)
	}
	consuming, err := procs["gate2"].WaitLog(60*time.Second, "RPC endpoint consuming", "id=Gate2")
	if err != nil {
		t.Fatal(err)
	}
	p.Ready = listening
	if consuming.After(listening) {
		p.Ready = consuming
	}
	recovered(p, nGate2, func(gate, _ string) bool { return gate == "gate2" })
	phases[len(phases)-1].End = time.Now()

	stopClients()
	var logs []string
	for _, pid := range []string{"login", "chat"} {
		logs = append(logs, procs[pid].Logs()...)
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
	if f := figs[3]; f.ConnsLostRestarted == 0 {
		t.Errorf("%s: no connection on the restarted gate was lost: the fault did not happen", f.Phase)
	}

	// The goals of issue 10 item 5.
	if !chaosStrict {
		return
	}
	for _, f := range figs {
		if f.ConnsLost != 0 {
			t.Errorf("%s: %d client connections lost on gates that were not restarted (goal 0)", f.Phase, f.ConnsLost)
		}
		if f.Timeouts() != 0 {
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
