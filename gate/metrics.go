package gate

import "github.com/prometheus/client_golang/prometheus"

// gateCollector exports the gate's counters to Prometheus. They are read
// at scrape time from the atomics the gate keeps anyway, so metrics cost
// the connection path nothing. Each series carries the gate's instance id
// as the constant label "gate", so several gates can share a registry.
type gateCollector struct {
	g                                   *Gate
	descs                               []*prometheus.Desc
	byListener, refused, overLimit, out *prometheus.Desc
	requestsRefused                     *prometheus.Desc
}

func newGateCollector(g *Gate) gateCollector {
	id := prometheus.Labels{"gate": g.Settings.ID}
	gc := gateCollector{g: g,
		byListener: prometheus.NewDesc("mqant_gate_listener_connections",
			"Connections past CONNECT, by listener (tcp, ws, tls, wss).", []string{"listener"}, id),
		refused: prometheus.NewDesc("mqant_gate_connects_refused_total",
			"CONNECTs refused, by reason: auth (the auth hook), client_id_taken (by another authenticated user), shutting_down, bad_connect (answered with a return code), ws_origin (WebSocket upgrade from an origin not allowed).",
			[]string{"reason"}, id),
		overLimit: prometheus.NewDesc("mqant_gate_sockets_over_limit_total",
			"Sockets closed at accept (with CONNACK 3 when the gate can afford it), by the limit reached: max_connections or max_connections_per_ip.",
			[]string{"limit"}, id),
		requestsRefused: prometheus.NewDesc("mqant_gate_requests_refused_total",
			"Requests the gate answered with an error without calling a module, by reason: not_handler (method not Handler_...), unknown_module, bad_json (body not JSON), shutting_down.",
			[]string{"reason"}, id),
		out: prometheus.NewDesc("mqant_gate_messages_sent_total",
			"Messages queued to clients, by kind: reply (to a request) or push (Send, Broadcast).", []string{"kind"}, id),
	}
	for _, m := range gateMetrics {
		gc.descs = append(gc.descs, prometheus.NewDesc(m.name, m.help, nil, id))
	}
	return gc
}

type gateMetric struct {
	name, help string
	kind       prometheus.ValueType
	value      func(Stats) int64
}

var gateMetrics = func() []gateMetric {
	counter := func(name, help string, v func(Stats) int64) gateMetric {
		return gateMetric{name, help, prometheus.CounterValue, v}
	}
	gauge := func(name, help string, v func(Stats) int64) gateMetric {
		return gateMetric{name, help, prometheus.GaugeValue, v}
	}
	return []gateMetric{
		gauge("mqant_gate_connections", "Connections past CONNECT.", func(s Stats) int64 { return s.Connections }),
		gauge("mqant_gate_users", "Sessions bound to a user id (online users).", func(s Stats) int64 { return s.Users }),
		gauge("mqant_gate_sockets", "Open sockets, counted from accept.", func(s Stats) int64 { return s.Sockets }),
		gauge("mqant_gate_calls_in_flight", "Client calls queued or running.", func(s Stats) int64 { return s.InFlight }),
		counter("mqant_gate_accepted_total", "Sockets accepted.", func(s Stats) int64 { return s.Accepted }),
		counter("mqant_gate_received_bytes_total", "Bytes read from clients' sockets.", func(s Stats) int64 { return s.BytesIn }),
		counter("mqant_gate_sent_bytes_total", "Bytes written to clients' sockets.", func(s Stats) int64 { return s.BytesOut }),
		counter("mqant_gate_received_packets_total", "MQTT packets read.", func(s Stats) int64 { return s.PacketsIn }),
		counter("mqant_gate_sent_packets_total", "MQTT packets written.", func(s Stats) int64 { return s.PacketsOut }),
		counter("mqant_gate_socket_reads_total", "Read system calls on clients' sockets (received packets per read: the batching in).", func(s Stats) int64 { return s.SocketReads }),
		counter("mqant_gate_socket_writes_total", "Write system calls on clients' sockets (sent packets per write: the batching of replies and pushes).", func(s Stats) int64 { return s.SocketWrites }),
		counter("mqant_gate_connect_timeouts_total", "Sockets closed for sending no CONNECT in time.", func(s Stats) int64 { return s.ConnectTimeouts }),
		counter("mqant_gate_malformed_total", "Connections closed for a malformed or oversized packet.", func(s Stats) int64 { return s.Malformed }),
		counter("mqant_gate_slow_readers_closed_total", "Connections closed because their outgoing queue was full.", func(s Stats) int64 { return s.SlowClosed }),
		counter("mqant_gate_outgoing_dropped_total", "Packets queued to a client and never written: its connection closed first, or its queue was full.", func(s Stats) int64 { return s.OutDropped }),
		counter("mqant_gate_keepalive_expired_total", "Connections closed for silence.", func(s Stats) int64 { return s.KeepAliveLost }),
		counter("mqant_gate_requests_total", "PUBLISH packets received.", func(s Stats) int64 { return s.Requests }),
		counter("mqant_gate_requests_dropped_total", "Requests dropped: bad topic, over the in-flight limit.", func(s Stats) int64 { return s.Dropped }),
		counter("mqant_gate_requests_rate_limited_total", "Requests refused over MaxRequestsPerSecond.", func(s Stats) int64 { return s.RateLimited }),
		counter("mqant_gate_calls_abandoned_total", "Calls whose handler outlived its deadline.", func(s Stats) int64 { return s.Abandoned }),
		counter("mqant_gate_broadcast_calls_total", "Broadcast calls received.", func(s Stats) int64 { return s.BroadcastCalls }),
		counter("mqant_gate_pushes_refused_total", "Send/Broadcast calls refused for an invalid topic.", func(s Stats) int64 { return s.PushRefused }),
		counter("mqant_gate_pushes_undelivered_total", "Pushes whose session was gone or closed.", func(s Stats) int64 { return s.PushUndelivered }),
		gauge("mqant_gate_sessions_away", "Persistent sessions kept with no connection.", func(s Stats) int64 { return s.SessionsAway }),
		counter("mqant_gate_sessions_resumed_total", "CONNECTs that resumed a stored session, here or handed over by another gate.", func(s Stats) int64 { return s.SessionsResumed }),
		counter("mqant_gate_sessions_expired_total", "Persistent sessions ended by SessionExpiry.", func(s Stats) int64 { return s.SessionsExpired }),
		counter("mqant_gate_sessions_evicted_total", "Away persistent sessions ended early: over MaxAwaySessions.", func(s Stats) int64 { return s.SessionsEvicted }),
		counter("mqant_gate_sessions_moved_total", "Persistent sessions handed over to another gate.", func(s Stats) int64 { return s.SessionsMoved }),
		counter("mqant_gate_session_pushes_dropped_total", "Pushes to persistent sessions dropped: queue full or too old.", func(s Stats) int64 { return s.SessionDropped }),
		counter("mqant_gate_session_closed_events_sent_total", "Session-closed events delivered to listeners.", func(s Stats) int64 { return s.CloseEventsSent }),
		counter("mqant_gate_session_closed_event_retries_total", "Failed deliveries of session-closed events, retried.", func(s Stats) int64 { return s.CloseRetries }),
		counter("mqant_gate_session_closed_events_lost_total", "Session-closed events given up.", func(s Stats) int64 { return s.CloseEventsLost }),
		counter("mqant_gate_log_lines_suppressed_total", "Per-connection warnings not logged (rate limit).", func(s Stats) int64 { return s.LogsSuppressed }),
	}
}()

func (gc gateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range gc.descs {
		ch <- d
	}
	ch <- gc.byListener
	ch <- gc.refused
	ch <- gc.overLimit
	ch <- gc.requestsRefused
	ch <- gc.out
}

func (gc gateCollector) Collect(ch chan<- prometheus.Metric) {
	s := gc.g.Stats()
	for i, m := range gateMetrics {
		ch <- prometheus.MustNewConstMetric(gc.descs[i], m.kind, float64(m.value(s)))
	}
	for _, name := range listenerNames {
		ch <- prometheus.MustNewConstMetric(gc.byListener, prometheus.GaugeValue, float64(s.ByListener[name]), name)
	}
	for _, name := range refusalNames {
		ch <- prometheus.MustNewConstMetric(gc.refused, prometheus.CounterValue, float64(s.RefusedBy[name]), name)
	}
	for _, name := range overLimitNames {
		ch <- prometheus.MustNewConstMetric(gc.overLimit, prometheus.CounterValue, float64(s.OverLimitBy[name]), name)
	}
	for _, name := range requestRefusalNames {
		ch <- prometheus.MustNewConstMetric(gc.requestsRefused, prometheus.CounterValue, float64(s.RefusedRequests[name]), name)
	}
	ch <- prometheus.MustNewConstMetric(gc.out, prometheus.CounterValue, float64(s.Replies), "reply")
	ch <- prometheus.MustNewConstMetric(gc.out, prometheus.CounterValue, float64(s.Sends-s.Replies), "push")
}
