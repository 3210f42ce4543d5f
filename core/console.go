package core

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"time"
)

// ReportBus is the part of a remote transport that carries the console's
// process reports to every process of the deployment (the RabbitMQ
// transport: a fanout exchange). Reports are small, periodic and
// short-lived: a lost one is replaced by the next a second later.
type ReportBus interface {
	// PublishReport sends one encoded report to every subscriber. It
	// fails at once, without retrying, when the report cannot go now.
	PublishReport(ctx context.Context, body []byte) error
	// SubscribeReports calls f, on one goroutine, with every report
	// published from now on (this process's own included), through
	// reconnects, until the closer is closed.
	SubscribeReports(f func(body []byte)) (io.Closer, error)
}

// Console timing: a process reports every reportEvery; one not heard from
// for staleAfter is shown stale, for dropAfter it is dropped.
var (
	reportEvery = time.Second
	staleAfter  = 3 * time.Second
	dropAfter   = 10 * time.Second
)

// maxReportBytes bounds a report received; a bigger one is refused.
const maxReportBytes = 256 << 10

// aggregator keeps the latest report of every process heard from.
type aggregator struct {
	self string // this process's key
	bus  string // ConsoleState.Bus

	mu         sync.Mutex
	procs      map[string]*received
	rejected   int    // reports refused: bad encoding, version, size
	lastReject string // why the last one was
}

type received struct {
	rep *Report
	at  time.Time // local clock: a remote clock may be off
}

func newAggregator(self string) *aggregator {
	return &aggregator{self: self, procs: map[string]*received{}}
}

// add takes in a report, the process's own or a decoded one.
// Processes not heard from for dropAfter go here too, not only when the
// page asks: with nobody watching, restarted processes (each a new key)
// would otherwise pile up.
func (a *aggregator) add(r *Report, now time.Time) {
	a.mu.Lock()
	a.procs[r.Key] = &received{rep: r, at: now}
	for k, p := range a.procs {
		if now.Sub(p.at) > dropAfter {
			delete(a.procs, k)
		}
	}
	a.mu.Unlock()
}

// receive decodes a report from the bus. The process's own comes back
// too; it already has a fresher copy.
func (a *aggregator) receive(body []byte, now time.Time) error {
	r, err := decodeReport(body)
	if err != nil {
		a.mu.Lock()
		a.rejected++
		a.lastReject = err.Error()
		a.mu.Unlock()
		return err
	}
	if r.Key != a.self {
		a.add(r, now)
	}
	return nil
}

// decodeReport decodes and checks a report from another process.
func decodeReport(body []byte) (*Report, error) {
	if len(body) > maxReportBytes {
		return nil, fmt.Errorf("console report of %d bytes, over the limit of %d", len(body), maxReportBytes)
	}
	var r Report
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("console report does not decode: %v", err)
	}
	if r.V != reportVersion {
		return nil, fmt.Errorf("console report of format version %d from %q (%s); this process reads version %d: run one mqantgen version across the deployment", r.V, clipText(r.Process, 64), clipText(r.Key, 64), reportVersion)
	}
	if r.Key == "" || len(r.Key) > 200 {
		return nil, errors.New("console report without a valid key")
	}
	return &r, nil
}

// ConsoleState is what the console page polls: every process heard from
// recently, its own first.
type ConsoleState struct {
	Time       int64          `json:"time"` // unix ms
	Self       string         `json:"self"`
	Bus        string         `json:"bus"` // how reports travel: "in-process" or the transport's
	Processes  []ProcessState `json:"processes"`
	Rejected   int            `json:"rejected"`
	LastReject string         `json:"lastReject,omitempty"`
}

// ProcessState is one process's latest report and how old it is.
type ProcessState struct {
	*Report
	Age   int64 `json:"age"` // ms since its report arrived
	Stale bool  `json:"stale"`
}

// state drops processes not heard from for dropAfter and returns the rest.
func (a *aggregator) state(now time.Time) ConsoleState {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := ConsoleState{Time: now.UnixMilli(), Self: a.self, Bus: a.bus, Rejected: a.rejected, LastReject: a.lastReject,
		Processes: make([]ProcessState, 0, len(a.procs))}
	for k, p := range a.procs {
		age := now.Sub(p.at)
		if age > dropAfter && k != a.self {
			delete(a.procs, k)
			continue
		}
		st.Processes = append(st.Processes, ProcessState{Report: p.rep, Age: age.Milliseconds(), Stale: age > staleAfter})
	}
	sort.Slice(st.Processes, func(i, j int) bool {
		pi, pj := st.Processes[i], st.Processes[j]
		if (pi.Key == a.self) != (pj.Key == a.self) {
			return pi.Key == a.self
		}
		return pi.Process < pj.Process || pi.Process == pj.Process && pi.Key < pj.Key
	})
	return st
}

// console is an App's reporting loop, and with an admin listener its
// aggregator.
type console struct {
	app   *App
	build *reportBuilder
	agg   *aggregator // nil: no admin listener, only reports
	bus   ReportBus   // nil: in-process only
	sub   io.Closer
	stop  chan struct{}
	done  chan struct{}
	// running: the loop was started, so close waits for it.
	running bool
	// failing: the last publish failed; the failure and the recovery are
	// logged once each, not every second.
	failing bool
}

// newConsole prepares the reports of App a; serve: it has an admin
// listener, so it also gathers the reports of the other processes.
func newConsole(a *App, serve bool) *console {
	host, _ := os.Hostname()
	var nonce [4]byte
	_, _ = rand.Read(nonce[:])
	now := time.Now()
	c := &console{app: a, stop: make(chan struct{}), done: make(chan struct{})}
	c.build = &reportBuilder{gather: a.registry, recent: a.recent, started: now,
		base: Report{V: reportVersion, Key: fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(nonce[:])),
			Process: a.opts.ProcessID, Host: host, PID: os.Getpid(), Version: Version, Started: now.UnixMilli()}}
	c.bus, _ = a.opts.Remote.(ReportBus)
	if serve {
		c.agg = newAggregator(c.build.base.Key)
		c.agg.bus = "in-process"
		if c.bus != nil {
			c.agg.bus = "broker"
		}
	}
	return c
}

// start begins reporting, when anyone is to read the reports.
func (c *console) start() error {
	if c.agg == nil && c.bus == nil {
		return nil
	}
	if c.build.base.Process == "" {
		c.build.base.Process = c.app.processName()
	}
	if c.agg != nil {
		if c.bus != nil {
			var lastRefusal string // the same refusal every second is logged once
			sub, err := c.bus.SubscribeReports(func(body []byte) {
				if err := c.agg.receive(body, time.Now()); err != nil && err.Error() != lastRefusal {
					lastRefusal = err.Error()
					c.app.log.Warn("console report refused (the console counts them)", "err", err)
				}
			})
			if err != nil {
				return fmt.Errorf("console: subscribe to process reports: %w", err)
			}
			c.sub = sub
		}
	}
	c.report()
	c.running = true
	go c.loop()
	return nil
}

func (c *console) loop() {
	defer close(c.done)
	tick := time.NewTicker(reportEvery)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			c.report()
		case <-c.stop:
			return
		}
	}
}

func (c *console) report() {
	r, err := c.build.build(time.Now(), c.app.instanceInfos())
	if err != nil {
		c.app.log.Warn("console report not built", "err", err)
		return
	}
	if c.agg != nil {
		c.agg.add(r, time.Now())
	}
	if c.bus == nil {
		return
	}
	body, err := json.Marshal(r)
	if err != nil {
		c.app.log.Error("console report does not encode", "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), reportEvery)
	err = c.bus.PublishReport(ctx, body)
	cancel()
	switch {
	case err != nil && !c.failing:
		c.failing = true
		c.app.log.Warn("console reports not published; retried every second", "err", err)
	case err == nil && c.failing:
		c.failing = false
		c.app.log.Info("console reports published again")
	}
}

func (c *console) close() {
	if c.running {
		close(c.stop)
		<-c.done
	}
	if c.sub != nil {
		_ = c.sub.Close()
	}
}

// instanceInfos lists the module instances running in this process.
func (a *App) instanceInfos() []InstanceInfo {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]InstanceInfo, 0, len(a.running))
	for _, inst := range a.running {
		out = append(out, InstanceInfo{Type: inst.settings.Type, ID: inst.settings.ID})
	}
	return out
}

// processName names a process started without a ProcessID (its instances
// were picked by host) for the console: the ProcessID its instances share
// in the config, else the host name.
func (a *App) processName() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	name := ""
	for _, inst := range a.running {
		switch p := inst.settings.ProcessID; {
		case p == "" || name != "" && p != name:
			return thisHost()
		default:
			name = p
		}
	}
	if name == "" {
		return thisHost()
	}
	return name
}

func thisHost() string {
	h, _ := os.Hostname()
	return h
}

// RecordError adds a failure to the recent errors the console shows, for
// a failure the framework saw outside a handler: the gate records the
// calls it answered with "service unavailable (id ...)", under that id.
// kind is a short word (an error code); msg is clipped, and must not
// carry secrets (the console shows it to operators).
func (a *App) RecordError(module, handler, kind, id, msg string) {
	a.recent.add(module, handler, kind, id, msg)
}
