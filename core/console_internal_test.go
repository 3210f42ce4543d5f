package core

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestReportFromRegistry builds reports from a registry holding the
// series the App, the gate and the broker connection export, and checks
// counts, per-interval rates and latency quantiles, then the round trip
// through the encoding other processes read.
func TestReportFromRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newRPCMetrics(reg)
	login := m.forMethod("Login", "Handler_Login")
	m.forMethod("Chat", "Handler_Say") // registered, never called: still listed
	conns := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mqant_gate_connections"}, []string{"gate"})
	users := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mqant_gate_users"}, []string{"gate"})
	connected := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mqant_broker_connected"}, []string{"broker"})
	connects := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mqant_broker_connects_total"}, []string{"broker"})
	reg.MustRegister(conns, users, connected, connects)
	conns.WithLabelValues("Gate1").Set(7)
	users.WithLabelValues("Gate1").Set(5)
	connected.WithLabelValues("127.0.0.1:5672").Set(1)
	connects.WithLabelValues("127.0.0.1:5672").Add(3)

	for range 99 {
		login.series.duration.observe(300 * time.Microsecond) // bucket (0.25 ms, 0.5 ms]
		login.handled[codeOK].Inc()
	}
	login.series.duration.observe(300 * time.Microsecond)
	login.observeOutcome(ErrorFromCode(codeTimeout, "call Login.Handler_Login expired before it ran"))

	t0 := time.Unix(1_700_000_000, 0)
	b := &reportBuilder{gather: reg, recent: m.recent, started: t0, base: Report{V: reportVersion, Key: "h/1/ab", Process: "p"}}
	inst := []InstanceInfo{{Type: "Login", ID: "Login1"}}
	r1, err := b.build(t0.Add(2*time.Second), inst)
	if err != nil {
		t.Fatal(err)
	}
	h := handler(t, r1, "Login", "Handler_Login")
	if h.Calls != 100 || h.Timeouts != 1 || h.Errors != 0 {
		t.Errorf("calls %d timeouts %d errors %d, want 100 1 0", h.Calls, h.Timeouts, h.Errors)
	}
	approx(t, "rate over the first 2 s", h.Rate, 50)
	approx(t, "p50", h.P50, 0.00025+0.00025*50/100)
	approx(t, "p99", h.P99, 0.00025+0.00025*99/100)
	if say := handler(t, r1, "Chat", "Handler_Say"); say.Calls != 0 || say.P99 != 0 || say.Rate != 0 {
		t.Errorf("an idle handler: %+v", say)
	}
	if len(r1.Gates) != 1 || r1.Gates[0] != (GateReport{ID: "Gate1", Connections: 7, Users: 5}) {
		t.Errorf("gates = %+v", r1.Gates)
	}
	if len(r1.Brokers) != 1 || r1.Brokers[0] != (BrokerReport{Broker: "127.0.0.1:5672", Connected: true, Reconnects: 2}) {
		t.Errorf("brokers = %+v", r1.Brokers)
	}
	if len(r1.Errors) != 1 || r1.Errors[0].Kind != "timeout" || r1.Errors[0].Handler != "Handler_Login" || r1.ErrorsAll != 1 {
		t.Errorf("errors = %+v (all %d)", r1.Errors, r1.ErrorsAll)
	}

	// The next interval: ten slow calls only. Rates and quantiles are of
	// that second, not since start.
	for range 10 {
		login.series.duration.observe(200 * time.Millisecond) // bucket (0.1 s, 0.25 s]
		login.handled[codeOK].Inc()
	}
	login.notePanic("0123456789ab", strings.Repeat("x", 500))
	r2, err := b.build(t0.Add(3*time.Second), inst)
	if err != nil {
		t.Fatal(err)
	}
	h = handler(t, r2, "Login", "Handler_Login")
	approx(t, "rate over the second interval", h.Rate, 10)
	approx(t, "p50 of the second interval", h.P50, 0.1+0.15*5/10)
	if r2.Interval != 1 || h.Calls != 110 {
		t.Errorf("interval %v calls %d, want 1 110", r2.Interval, h.Calls)
	}
	if e := r2.Errors[0]; e.Kind != "panic" || e.ID != "0123456789ab" || len(e.Msg) > maxErrorMsg+len("…") {
		t.Errorf("newest error = %+v", e)
	}

	body, err := json.Marshal(r2)
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeReport(body)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := json.Marshal(back)
	if string(again) != string(body) {
		t.Errorf("report does not survive its encoding:\n%s\n%s", body, again)
	}
	if len(body) > 4096 {
		t.Errorf("a small process's report is %d bytes; it goes out every second", len(body))
	}
}

// observeOutcome counts one call of outcome err without timing it.
func (mm *methodMetrics) observeOutcome(err error) { mm.observe(time.Time{}, err) }

func handler(t *testing.T, r *Report, module, method string) HandlerReport {
	t.Helper()
	for _, h := range r.Handlers {
		if h.Module == module && h.Method == method {
			return h
		}
	}
	t.Fatalf("no handler %s/%s in %+v", module, method, r.Handlers)
	return HandlerReport{}
}

func approx(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// TestAggregator: processes heard from recently are listed (this one
// first), go stale, then go; reports that do not decode, of another
// version or too big are refused and counted with the reason.
func TestAggregator(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	a := newAggregator("self/1/aa")
	a.add(&Report{V: reportVersion, Key: "self/1/aa", Process: "gate1"}, t0)
	other := func(key, process string) []byte {
		b, _ := json.Marshal(Report{V: reportVersion, Key: key, Process: process})
		return b
	}
	for _, body := range [][]byte{other("x/2/bb", "login"), other("y/3/cc", "chat")} {
		if err := a.receive(body, t0); err != nil {
			t.Fatal(err)
		}
	}
	// Its own report comes back from the bus: the local copy stays.
	if err := a.receive(other("self/1/aa", "impostor"), t0); err != nil {
		t.Fatal(err)
	}
	names := func(st ConsoleState) (out []string) {
		for _, p := range st.Processes {
			s := p.Process
			if p.Stale {
				s += "(stale)"
			}
			out = append(out, s)
		}
		return out
	}
	if got := strings.Join(names(a.state(t0.Add(time.Second))), " "); got != "gate1 chat login" {
		t.Errorf("processes = %s", got)
	}
	a.add(&Report{V: reportVersion, Key: "self/1/aa", Process: "gate1"}, t0.Add(4*time.Second))
	_ = a.receive(other("y/3/cc", "chat"), t0.Add(4*time.Second))
	if got := strings.Join(names(a.state(t0.Add(4*time.Second))), " "); got != "gate1 chat login(stale)" {
		t.Errorf("after 4 s = %s", got)
	}
	a.add(&Report{V: reportVersion, Key: "self/1/aa", Process: "gate1"}, t0.Add(11*time.Second))
	if got := strings.Join(names(a.state(t0.Add(11*time.Second))), " "); got != "gate1 chat(stale)" {
		t.Errorf("after 11 s = %s", got)
	}

	for _, c := range []struct {
		body []byte
		want string
	}{
		{[]byte("{not json"), "does not decode"},
		{[]byte(`{"v":2,"key":"z/9/ff","process":"newer"}`), "format version 2"},
		{[]byte(`{"v":1,"process":"nokey"}`), "without a valid key"},
		{[]byte(`{"v":1,"key":"k","process":"` + strings.Repeat("a", maxReportBytes) + `"}`), "over the limit"},
	} {
		err := a.receive(c.body, t0)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("receive(%.40s) = %v, want %q", c.body, err, c.want)
		}
	}
	st := a.state(t0.Add(11 * time.Second))
	if st.Rejected != 4 || !strings.Contains(st.LastReject, "over the limit") {
		t.Errorf("rejected %d, last %q", st.Rejected, st.LastReject)
	}
}

func TestQuantileEdges(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newRPCMetrics(reg)
	mm := m.forMethod("M", "F")
	mm.series.duration.observe(30 * time.Second) // past the last bound (10 s)
	mm.handled[codeOK].Inc()
	b := &reportBuilder{gather: reg, recent: m.recent, started: time.Now(), base: Report{V: reportVersion, Key: "k"}}
	r, err := b.build(time.Now().Add(time.Second), nil)
	if err != nil {
		t.Fatal(err)
	}
	if h := handler(t, r, "M", "F"); h.P50 != 10 || h.P99 != 10 {
		t.Errorf("beyond the last bucket: p50 %v p99 %v, want the last bound 10", h.P50, h.P99)
	}
}

func TestErrorRingKeepsTheNewest(t *testing.T) {
	var r errorRing
	for i := range 40 {
		r.add("M", "F", "timeout", "", strings.Repeat("é", i))
	}
	got, total := r.recent(100)
	if total != 40 || len(got) != errorRingSize {
		t.Fatalf("total %d kept %d", total, len(got))
	}
	if got[0].Msg != clipText(strings.Repeat("é", 39), maxErrorMsg) || got[len(got)-1].Msg != strings.Repeat("é", 8) {
		t.Errorf("order: newest %q, oldest %q", got[0].Msg, got[len(got)-1].Msg)
	}
	if c := clipText(strings.Repeat("é", 150), maxErrorMsg); len(c) > maxErrorMsg+len("…") || !strings.HasSuffix(c, "…") {
		t.Errorf("clip = %q", c)
	}
}
