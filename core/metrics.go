package core

import (
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
)

// Metrics of an App, with Prometheus's Go client. Labels are bounded: a
// module type and a method name, never a user, session or msgid. Each
// method's series are resolved once, when it is registered, so a call
// costs two observations and no label lookup.

// rpcMetrics are the App's RPC server metrics.
type rpcMetrics struct {
	handled  *prometheus.CounterVec
	duration *prometheus.Desc
	running  *prometheus.Desc
	recent   *errorRing // the console's recent failures

	mu      sync.Mutex
	methods map[[2]string]*methodSeries // by module type and method
}

// methodSeries are the series of a method shared by the instances of its
// module type in this process: the handler calls started, and the
// durations of those that ended. The calls running are the difference,
// taken at scrape time: a call costs one add for it, not two.
type methodSeries struct {
	started  atomic.Int64
	duration durations
}

// running returns the handler calls started and not ended.
func (s *methodSeries) running() int64 {
	return begunLessEnded(s.started.Load, func() int64 { return int64(s.duration.count()) })
}

// begunLessEnded returns the calls begun and not ended, from two counters
// that only grow, read at scrape time. The begun count is read before and
// after the ended one: when it did not move, no call began meanwhile, and
// the result lies between the calls in flight when the reads began and
// when they ended. Under a flood of calls that keeps moving it, the last
// reading stands: begun read first, it may miss calls (a call begun and
// ended between the two reads counts as ended only), never add one.
func begunLessEnded(begun, ended func() int64) int64 {
	for i := 0; ; i++ {
		b := begun()
		e := ended()
		if begun() == b || i == 7 {
			return max(b-e, 0)
		}
	}
}

// durationBounds are the upper bounds of the handler duration histogram's
// buckets, in seconds and in nanoseconds.
var (
	durationBounds      = [...]float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	durationBoundsNanos = func() (ns [len(durationBounds)]int64) {
		for i, b := range durationBounds {
			ns[i] = int64(math.Round(b * 1e9))
		}
		return ns
	}()
)

// durations is a histogram of handler durations, exposed as
// mqant_rpc_handler_duration_seconds at scrape time. An observation is two
// atomic adds (its bucket, the sum in nanoseconds) and a search from the
// smallest bound, where fast handlers stop at once. prometheus.Histogram
// takes a third add, a compare-and-swap loop for its float sum and a
// binary search: 27 ns against 12 (BenchmarkPrometheusHistogramObserve,
// BenchmarkDurationsObserve). The count is the sum of the buckets, so a
// scrape's count and buckets agree; the sum may miss an observation made
// while it is read.
type durations struct {
	buckets [len(durationBounds) + 1]atomic.Uint64 // the last: above every bound
	sum     atomic.Int64                           // nanoseconds
}

func (h *durations) observe(d time.Duration) {
	ns := int64(d)
	i := 0
	for i < len(durationBoundsNanos) && ns > durationBoundsNanos[i] {
		i++
	}
	h.buckets[i].Add(1)
	h.sum.Add(ns)
}

// count returns the observations made.
func (h *durations) count() uint64 {
	var n uint64
	for i := range h.buckets {
		n += h.buckets[i].Load()
	}
	return n
}

// metric returns the histogram as a Prometheus constant histogram.
func (h *durations) metric(desc *prometheus.Desc, labels ...string) prometheus.Metric {
	cum := make(map[float64]uint64, len(durationBounds))
	var n uint64
	for i, b := range durationBounds {
		n += h.buckets[i].Load()
		cum[b] = n
	}
	n += h.buckets[len(durationBounds)].Load()
	return prometheus.MustNewConstHistogram(desc, n, float64(h.sum.Load())/1e9, cum, labels...)
}

// outcomes are the values of the outcome label, by error kind code
// (ErrorCode): ok, not_found, timeout, transport, remote, panic,
// bad_request.
var outcomes = [...]string{"ok", "not_found", "timeout", "transport", "remote", "panic", "bad_request"}

func newRPCMetrics(reg prometheus.Registerer) *rpcMetrics {
	m := &rpcMetrics{
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mqant_rpc_handled_total",
			Help: "Calls handled by module RPC servers, by module type, method and outcome (ok or the error kind).",
		}, []string{"module", "method", "outcome"}),
		duration: prometheus.NewDesc("mqant_rpc_handler_duration_seconds",
			"Time handlers took, by module type and method.", []string{"module", "method"}, nil),
		running: prometheus.NewDesc("mqant_rpc_handlers_running",
			"Handler calls running now, by module type and method.", []string{"module", "method"}, nil),
		methods: map[[2]string]*methodSeries{},
		recent:  &errorRing{},
	}
	reg.MustRegister(m.handled, seriesCollector{m})
	return m
}

// seriesCollector reads the running handlers and their durations at
// scrape time.
type seriesCollector struct{ m *rpcMetrics }

func (c seriesCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.m.running
	ch <- c.m.duration
}

func (c seriesCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	for k, s := range c.m.methods {
		ch <- prometheus.MustNewConstMetric(c.m.running, prometheus.GaugeValue, float64(s.running()), k[0], k[1])
		ch <- s.duration.metric(c.m.duration, k[0], k[1])
	}
}

// methodMetrics are one method's series.
type methodMetrics struct {
	handled        [len(outcomes)]prometheus.Counter
	series         *methodSeries // shared by the instances of a module type in this process
	module, method string
	recent         *errorRing
}

func (m *rpcMetrics) forMethod(module, method string) *methodMetrics {
	if m == nil {
		return nil
	}
	mm := &methodMetrics{module: module, method: method, recent: m.recent}
	for i, o := range outcomes {
		mm.handled[i] = m.handled.WithLabelValues(module, method, o)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{module, method}
	if m.methods[k] == nil {
		m.methods[k] = new(methodSeries)
	}
	mm.series = m.methods[k]
	return mm
}

// begin counts a handler call running and returns its start time: start
// when the caller read the clock just before (an inline call), else now.
func (mm *methodMetrics) begin(start time.Time) time.Time {
	mm.series.started.Add(1)
	if start.IsZero() {
		return time.Now()
	}
	return start
}

// observe records one call, begun at start or (zero start) not run at all;
// nil records nothing. It returns the time it read as the call's end (zero
// when it read none), for a caller that starts its next call then.
func (mm *methodMetrics) observe(start time.Time, err error) (end time.Time) {
	if mm == nil {
		return end
	}
	if !start.IsZero() {
		// One read of the monotonic clock (time.Since), not time.Now's
		// two (wall and monotonic: 55 ns against 30 on a VM's kvm-clock);
		// end keeps start's wall clock plus the duration.
		d := time.Since(start)
		end = start.Add(d)
		mm.series.duration.observe(d) // ends the call in running's count
	}
	code := ErrorCode(err)
	if code >= len(outcomes) {
		code = ErrorCode(ErrRemote)
	}
	mm.handled[code].Inc()
	// The console's recent failures: the framework's kinds. A handler's own
	// error (remote) is an ordinary reply of the game ("wrong password");
	// a panic is noted with its id where it is recovered.
	if code != codeOK && code != codeRemote && code != codePanic {
		mm.recent.add(mm.module, mm.method, outcomes[code], "", err.Error())
	}
	return end
}

// notePanic records a recovered panic for the console, with the id the
// client got.
func (mm *methodMetrics) notePanic(id, text string) {
	if mm != nil {
		mm.recent.add(mm.module, mm.method, outcomes[codePanic], id, text)
	}
}

// callMetrics count the calls this process makes (the gate's client
// requests, module-to-module calls) as their caller saw them: a timeout or
// a transport failure that never reached a handler counts here. The
// module label is the target's type when the config names it, "unknown"
// otherwise: a client's topic chooses the type, so it must not choose a
// label. Counters are resolved when the App is made: a call costs a map
// lookup and two atomic adds. The calls in flight are the calls begun
// less those counted, taken at scrape time.
type callMetrics struct {
	byType  map[string]*[len(outcomes)]prometheus.Counter
	unknown *[len(outcomes)]prometheus.Counter
	all     []prometheus.Counter // every counter above, for the calls ended
	begun   atomic.Int64
}

func newCallMetrics(reg prometheus.Registerer, cfg *Config) *callMetrics {
	m := &callMetrics{byType: map[string]*[len(outcomes)]prometheus.Counter{}}
	calls := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mqant_rpc_calls_total",
		Help: "Calls this process made (client requests through the gate, module-to-module calls), by target module type and outcome as the caller saw it (ok or the error kind).",
	}, []string{"module", "outcome"})
	resolve := func(typ string) *[len(outcomes)]prometheus.Counter {
		var cs [len(outcomes)]prometheus.Counter
		for i, o := range outcomes {
			cs[i] = calls.WithLabelValues(typ, o)
		}
		m.all = append(m.all, cs[:]...)
		return &cs
	}
	for _, ms := range cfg.Modules {
		if m.byType[ms.Type] == nil {
			m.byType[ms.Type] = resolve(ms.Type)
		}
	}
	m.unknown = resolve("unknown")
	reg.MustRegister(calls, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mqant_rpc_calls_in_flight",
		Help: "Calls this process made that wait for their reply.",
	}, func() float64 { return float64(m.inFlight()) }))
	return m
}

// inFlight returns the calls begun and not ended (counted).
func (m *callMetrics) inFlight() int64 {
	return begunLessEnded(m.begun.Load, func() int64 {
		var ended float64
		var d dto.Metric
		for _, c := range m.all {
			if c.Write(&d) == nil {
				ended += d.GetCounter().GetValue()
			}
		}
		return int64(ended)
	})
}

// begin counts a call in flight; nil counts nothing.
func (m *callMetrics) begin() {
	if m != nil {
		m.begun.Add(1)
	}
}

// end records a call begun with begin.
func (m *callMetrics) end(typ string, err error) {
	if m == nil {
		return
	}
	cs := m.byType[typ]
	if cs == nil {
		cs = m.unknown
	}
	code := ErrorCode(err)
	if code >= len(outcomes) {
		code = ErrorCode(ErrRemote)
	}
	cs[code].Inc()
}

// newRegistry returns a registry with the Go runtime and process
// collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Metrics returns the App's Prometheus registry: modules register their
// own collectors on it (the gate does); the admin listener serves it at
// /metrics. It exists also with Options.NoMetrics, without the per-call
// metrics.
func (a *App) Metrics() *prometheus.Registry { return a.registry }

// MustRegister registers collectors on the App's registry, ignoring one
// already registered (a module restarted in the same App).
func (a *App) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := a.registry.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				panic(err)
			}
		}
	}
}
