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
	{"mqant_broker_calls_nacked_total", "Calls the broker refused; their callers were told at once.", prometheus.CounterValue,
		func(t *Transport) float64 { return float64(t.stats.callsNacked.Load()) }},
	{"mqant_broker_replies_nacked_total", "Replies the broker refused; their callers time out.", prometheus.CounterValue,
		func(t *Transport) float64 { return float64(t.stats.repliesNacked.Load()) }},
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

// trafficMetrics count the framework's AMQP messages by kind (label
// "kind": call, noreply, reply): broker messages per framework call is
// mqant_rpc_broker_messages_total over the calls and replies carried.
var trafficMetrics = []struct {
	name, help string
	value      func(*Transport, trafficKind) int64
}{
	{"mqant_rpc_broker_messages_total", "AMQP messages published for calls and replies (a batch is one).",
		func(t *Transport, k trafficKind) int64 { return t.stats.traffic[k].messages.Load() }},
	{"mqant_rpc_carried_total", "Framework calls and replies carried by those messages.",
		func(t *Transport, k trafficKind) int64 { return t.stats.traffic[k].items.Load() }},
	{"mqant_rpc_batched_total", "Calls and replies that travelled in a batch (a message carrying more than one).",
		func(t *Transport, k trafficKind) int64 { return t.stats.traffic[k].batched.Load() }},
	{"mqant_rpc_unconfirmed_messages_total", "Of those messages, the ones sent without a publisher confirm (a lone call or reply to an idle queue).",
		func(t *Transport, k trafficKind) int64 { return t.stats.traffic[k].plain.Load() }},
}

func (t *Transport) descs() []*prometheus.Desc {
	t.descOnce.Do(func() {
		broker := prometheus.Labels{"broker": brokerLabel(t.uri)}
		for _, m := range brokerMetrics {
			t.metricDescs = append(t.metricDescs, prometheus.NewDesc(m.name, m.help, nil, broker))
		}
		for _, m := range trafficMetrics {
			t.metricDescs = append(t.metricDescs, prometheus.NewDesc(m.name, m.help, []string{"kind"}, broker))
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
	descs := t.descs()
	for i, m := range brokerMetrics {
		ch <- prometheus.MustNewConstMetric(descs[i], m.kind, m.value(t))
	}
	for i, m := range trafficMetrics {
		d := descs[len(brokerMetrics)+i]
		for k := trafficKind(0); k < trafficKinds; k++ {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(m.value(t, k)), trafficKindNames[k])
		}
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
