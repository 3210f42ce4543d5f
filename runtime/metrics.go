package runtime

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics of an App, with Prometheus's Go client. Labels are bounded: a
// module type and a method name, never a user, session or msgid. Each
// method's series are resolved once, when it is registered, so a call
// costs two observations and no label lookup.

// rpcMetrics are the App's RPC server metrics.
type rpcMetrics struct {
	handled  *prometheus.CounterVec
	duration *prometheus.HistogramVec
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
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mqant_rpc_handler_duration_seconds",
			Help:    "Time handlers took, by module type and method.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"module", "method"}),
	}
	reg.MustRegister(m.handled, m.duration)
	return m
}

// methodMetrics are one method's series.
type methodMetrics struct {
	handled  [len(outcomes)]prometheus.Counter
	duration prometheus.Observer
}

func (m *rpcMetrics) forMethod(module, method string) *methodMetrics {
	if m == nil {
		return nil
	}
	mm := &methodMetrics{duration: m.duration.WithLabelValues(module, method)}
	for i, o := range outcomes {
		mm.handled[i] = m.handled.WithLabelValues(module, method, o)
	}
	return mm
}

// observe records one call; nil records nothing.
func (mm *methodMetrics) observe(start time.Time, err error) {
	if mm == nil {
		return
	}
	if !start.IsZero() {
		mm.duration.Observe(time.Since(start).Seconds())
	}
	code := ErrorCode(err)
	if code >= len(outcomes) {
		code = ErrorCode(ErrRemote)
	}
	mm.handled[code].Inc()
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
// /metrics.
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
