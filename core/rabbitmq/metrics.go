package rabbitmq

import (
	"net/url"

	"github.com/prometheus/client_golang/prometheus"
)

// Prometheus metrics of the broker connection, read at scrape time from
// the transport's state and loss counters (the App registers a remote
// transport that is a prometheus.Collector). Each series carries the
// broker's host:port as the constant label "broker", never credentials.

type brokerMetric struct {
	name, help string
	kind       prometheus.ValueType
	value      func(*Transport) float64
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

var brokerMetrics = []brokerMetric{
	{"mqant_broker_connected", "1 while the process has a working broker connection.", prometheus.GaugeValue,
		func(t *Transport) float64 { return boolValue(t.Connected()) }},
	{"mqant_broker_blocked", "1 while the broker blocks publishing (resource alarm).", prometheus.GaugeValue,
		func(t *Transport) float64 { _, b := t.Blocked(); return boolValue(b) }},
	{"mqant_broker_connects_total", "Successful connections to the broker (the first and every reconnect).", prometheus.CounterValue,
		func(t *Transport) float64 { return float64(t.stats.connects.Load()) }},
	{"mqant_broker_noreply_returned_total", "No-reply calls (pushes) the broker returned: nobody serves the target.", prometheus.CounterValue,
		func(t *Transport) float64 { return float64(t.stats.noReplyReturned.Load()) }},
	{"mqant_broker_noreply_nacked_total", "No-reply calls the broker refused.", prometheus.CounterValue,
		func(t *Transport) float64 { return float64(t.stats.noReplyNacked.Load()) }},
	{"mqant_broker_noreply_expired_total", "No-reply calls lost in an instance queue without consumer (TTL or expiry).", prometheus.CounterValue,
		func(t *Transport) float64 { return float64(t.stats.noReplyExpired.Load()) }},
	{"mqant_broker_noreply_unserved_total", "No-reply calls failed at once: their instance has been gone past the queue expiry.", prometheus.CounterValue,
		func(t *Transport) float64 { return float64(t.stats.noReplyUnserved.Load()) }},
	{"mqant_broker_calls_waited_total", "Calls found waiting in this process's instance queues when it consumed them again.", prometheus.CounterValue,
		func(t *Transport) float64 { return float64(t.stats.waited.Load()) }},
	{"mqant_broker_redelivered_refused_total", "Redelivered calls not run (they may have run: at most once).", prometheus.CounterValue,
		func(t *Transport) float64 { return float64(t.stats.redeliveredRefused.Load()) }},
	{"mqant_broker_redelivered_run_total", "Redelivered calls run (they had never reached a handler here).", prometheus.CounterValue,
		func(t *Transport) float64 { return float64(t.stats.redeliveredRun.Load()) }},
	{"mqant_broker_dropped_at_stop_total", "Calls left in an instance queue at a graceful stop.", prometheus.CounterValue,
		func(t *Transport) float64 { return float64(t.stats.droppedAtStop.Load()) }},
}

// brokerLabel is the broker's host:port, without user or password.
func brokerLabel(uri string) string {
	if u, err := url.Parse(uri); err == nil && u.Host != "" {
		return u.Host
	}
	return "unparsable-uri"
}

func (t *Transport) descs() []*prometheus.Desc {
	t.descOnce.Do(func() {
		for _, m := range brokerMetrics {
			t.metricDescs = append(t.metricDescs, prometheus.NewDesc(m.name, m.help, nil, prometheus.Labels{"broker": brokerLabel(t.uri)}))
		}
	})
	return t.metricDescs
}

// Describe implements prometheus.Collector.
func (t *Transport) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range t.descs() {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (t *Transport) Collect(ch chan<- prometheus.Metric) {
	for i, d := range t.descs() {
		ch <- prometheus.MustNewConstMetric(d, brokerMetrics[i].kind, brokerMetrics[i].value(t))
	}
}

// Describe implements prometheus.Collector: every broker the Router uses.
func (r *Router) Describe(ch chan<- *prometheus.Desc) {
	for _, t := range r.all {
		t.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (r *Router) Collect(ch chan<- prometheus.Metric) {
	for _, t := range r.all {
		t.Collect(ch)
	}
}
