package gate_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/demo/demotest"
	"github.com/mqantgen/mqantgen/gate/packets"
	"github.com/mqantgen/mqantgen/internal/testkit/leakcheck"
	"github.com/mqantgen/mqantgen/internal/testkit/mqtttest"
)

// scrape reads the admin listener's /metrics with Prometheus's own text
// parser and returns each series' value, keyed "name{label=value,...}"
// with labels in the order the exposition gives them.
func scrape(t *testing.T, d *demotest.Demo, token string) map[string]float64 {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+d.App.AdminAddr().String()+"/metrics", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.LegacyValidation) // Prometheus's classic name rules
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	out := map[string]float64{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			key := name + "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[key] = m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				out[key+"count"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// TestMetricsMoveWithTraffic: /metrics on the admin listener carries the
// gate's counters and the RPC servers' per-handler counts and latencies,
// and they move for real traffic: a request, a handler error, a bad body,
// an unknown module, a panic, an abandoned call, a call timed out, a
// CONNECT refused, a slow reader dropped with its queued packets.
func TestMetricsMoveWithTraffic(t *testing.T) {
	leakcheck.Check(t)
	p := newProbe()
	const token = "admin-secret"
	d := demotest.StartWith(t, demotest.Options{RPCTimeout: 300 * time.Millisecond, Extras: []demotest.Extra{probeExtra(p)},
		Gate: map[string]any{"MaxQueue": 16}, Admin: &core.AdminConfig{Addr: "127.0.0.1:0", Token: token}})
	defer close(p.release)
	resp, err := http.Get("http://" + d.App.AdminAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/metrics without the token: %s, want 401", resp.Status)
	}
	before := scrape(t, d, token)
	c := mqtttest.Connect(t, d.TCPAddr, "metered", 30)
	c.Request("Login/Handler_Login/1", `{"userName":"m","passWord":"x"}`)
	c.Request("Login/Handler_Login/2", `{"userName":""}`)
	c.Request("Probe/Handler_Panic/3", `{}`)
	c.Request("Probe/Handler_Hang/4", `{}`)              // abandoned at 300 ms
	c.Request("Login/Handler_Login/5", `{"userName":5}`) // JSON, not a login
	c.Request("Login/Handler_Login/6", `not json`)       // refused by the gate
	c.Request("Nowhere/Handler_X/7", `{}`)               // refused by the gate
	// A module-to-module call that times out: the caller counts it, the
	// handler is still running.
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	_, err = d.App.Call(ctx, core.Target{Type: "Probe"}, "Handler_Hang", nil)
	cancel()
	if !errors.Is(err, core.ErrTimeout) {
		t.Fatalf("call to a hung handler: %v, want ErrTimeout", err)
	}
	// A call to a type nobody configured: counted, under no label of its own.
	if _, err := d.App.Call(t.Context(), core.Target{Type: "Nowhere"}, "Handler_X", nil); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("call to an unknown type: %v, want ErrNotFound", err)
	}
	poll(t, "both hung calls running", func() bool { return p.hung.Load() == 2 })
	// An unknown protocol level: CONNACK 1, refused as a bad CONNECT.
	bad := mqtttest.Dial(t, d.TCPAddr)
	bad.Write([]byte{0x10, 0x0c, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x09, 0x02, 0x00, 0x1e, 0x00, 0x00})
	if pk := bad.Next(5 * time.Second); pk.(*packets.Connack).ReturnCode != packets.UnacceptableProtocolVersion {
		t.Fatalf("got %#v, want CONNACK 1", pk)
	}
	lazy := mqtttest.Connect(t, d.TCPAddr, "lazy-metered", 0)
	var lazyID string
	for _, s := range d.Gate.Sessions() {
		if s.ClientID == "lazy-metered" {
			lazyID = s.SessionID
		}
	}
	big := []byte(strings.Repeat("z", 60000))
	poll(t, "lazy reader dropped", func() bool {
		_ = d.Gate.Send(t.Context(), lazyID, "Chat/OnSay", big)
		return d.Gate.Stats().SlowClosed > 0
	})
	_ = lazy
	poll(t, "the lazy reader unregistered", func() bool { return d.Gate.Stats().Connections == 1 })
	after := scrape(t, d, token)
	const gate = "gate=127.0.0.1:Gate"
	for _, tc := range []struct {
		series string
		delta  float64
	}{
		{`mqant_rpc_handled_total{method=Handler_Login,module=Login,outcome=ok}`, 1},
		{`mqant_rpc_handled_total{method=Handler_Login,module=Login,outcome=remote}`, 1},
		{`mqant_rpc_handled_total{method=Handler_Panic,module=Probe,outcome=panic}`, 1},
		{`mqant_rpc_handled_total{method=Handler_Login,module=Login,outcome=bad_request}`, 1},
		{`mqant_rpc_handler_duration_seconds{method=Handler_Login,module=Login}count`, 3},
		{`mqant_gate_requests_total{` + gate + `}`, 7},
		{`mqant_gate_calls_abandoned_total{` + gate + `}`, 1},
		{`mqant_gate_slow_readers_closed_total{` + gate + `}`, 1},
		{`mqant_rpc_calls_total{module=Login,outcome=ok}`, 1},
		{`mqant_rpc_calls_total{module=Login,outcome=remote}`, 1},
		{`mqant_rpc_calls_total{module=Probe,outcome=panic}`, 1},
		{`mqant_rpc_calls_total{module=Probe,outcome=timeout}`, 1},
		{`mqant_rpc_calls_total{module=Probe,outcome=ok}`, 0}, // the gate's hung call has not returned
		{`mqant_rpc_calls_total{module=Login,outcome=bad_request}`, 1},
		{`mqant_rpc_calls_total{module=unknown,outcome=not_found}`, 1},
		{`mqant_gate_requests_refused_total{` + gate + `,reason=bad_json}`, 1},
		{`mqant_gate_requests_refused_total{` + gate + `,reason=unknown_module}`, 1},
		{`mqant_rpc_handlers_running{method=Handler_Hang,module=Probe}`, 2},
		{`mqant_rpc_calls_in_flight{}`, 1}, // the gate's, on the hung handler
		{`mqant_gate_accepted_total{` + gate + `}`, 3},
		{`mqant_gate_received_packets_total{` + gate + `}`, 9}, // 2 CONNECTs, 7 PUBLISHes (the bad CONNECT does not decode)
		{`mqant_gate_connects_refused_total{` + gate + `,reason=bad_connect}`, 1},
		{`mqant_gate_connects_refused_total{` + gate + `,reason=auth}`, 0},
		{`mqant_gate_messages_sent_total{` + gate + `,kind=reply}`, 7},
	} {
		if got := after[tc.series] - before[tc.series]; got != tc.delta {
			t.Errorf("%s moved by %v, want %v", tc.series, got, tc.delta)
		}
	}
	if after[`mqant_gate_connections{`+gate+`}`] != 1 {
		t.Errorf("mqant_gate_connections = %v, want 1 (the lazy reader was dropped)", after[`mqant_gate_connections{`+gate+`}`])
	}
	if got := after[`mqant_gate_listener_connections{`+gate+`,listener=tcp}`]; got != 1 {
		t.Errorf("tcp listener connections = %v, want 1", got)
	}
	if in, out := after[`mqant_gate_received_bytes_total{`+gate+`}`]-before[`mqant_gate_received_bytes_total{`+gate+`}`],
		after[`mqant_gate_sent_bytes_total{`+gate+`}`]-before[`mqant_gate_sent_bytes_total{`+gate+`}`]; in < 100 || out < 60000 {
		t.Errorf("bytes in %v, out %v; want the requests' and at least one 60 KB push", in, out)
	}
	if got := after[`mqant_gate_messages_sent_total{`+gate+`,kind=push}`] - before[`mqant_gate_messages_sent_total{`+gate+`,kind=push}`]; got < 1 {
		t.Errorf("pushes sent moved by %v, want at least the one 60 KB push", got)
	}
	if got := after[`mqant_gate_outgoing_dropped_total{`+gate+`}`] - before[`mqant_gate_outgoing_dropped_total{`+gate+`}`]; got < 1 {
		t.Errorf("outgoing packets dropped moved by %v, want at least the push that found the lazy reader's queue full", got)
	}
	for _, name := range []string{"socket_reads", "socket_writes"} {
		series := `mqant_gate_` + name + `_total{` + gate + `}`
		if after[series] <= before[series] {
			t.Errorf("%s did not move", series)
		}
	}
	if after["go_goroutines{}"] == 0 || after["process_resident_memory_bytes{}"] == 0 {
		t.Error("Go runtime and process collectors missing")
	}
}

// TestNoMetrics: with core.Options.NoMetrics the per-call series are
// gone (handlers are neither timed nor counted) and what is read at scrape
// time stays: the gate's counters, Go and process.
func TestNoMetrics(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.StartWith(t, demotest.Options{NoMetrics: true, Admin: &core.AdminConfig{Addr: "127.0.0.1:0"}})
	c := mqtttest.Connect(t, d.TCPAddr, "unmetered", 30)
	if got := c.Request("Login/Handler_Login/1", `{"userName":"u","passWord":"x"}`); !strings.Contains(got, "login success") {
		t.Fatalf("login: %s", got)
	}
	got := scrape(t, d, "")
	for k := range got {
		if strings.HasPrefix(k, "mqant_rpc_") {
			t.Errorf("series %s with NoMetrics", k)
		}
	}
	if n := got[`mqant_gate_requests_total{gate=127.0.0.1:Gate}`]; n != 1 {
		t.Errorf("mqant_gate_requests_total = %v, want 1", n)
	}
	if got["go_goroutines{}"] == 0 {
		t.Error("Go collector missing")
	}
}

// TestMetricsRefusals: refusals are counted by reason (a WebSocket origin
// not allowed) and sockets over a limit by the limit.
func TestMetricsRefusals(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.StartWith(t, demotest.Options{Admin: &core.AdminConfig{Addr: "127.0.0.1:0"},
		Gate: map[string]any{"MaxConnectionsPerIP": 1, "WSOrigins": []any{"http://game.example"}}})
	const gate = "gate=127.0.0.1:Gate"
	before := scrape(t, d, "")
	ws, resp, err := websocket.DefaultDialer.Dial("ws://"+d.WSAddr+"/mqtt", http.Header{"Origin": {"http://evil.example"}})
	if err == nil {
		ws.Close()
		t.Fatal("WebSocket from an origin not allowed was upgraded")
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("WebSocket from an origin not allowed: %v %v, want 403", resp, err)
	}
	poll(t, "the refused WebSocket's socket released", func() bool { return d.Gate.Stats().Sockets == 0 })
	first := mqtttest.Connect(t, d.TCPAddr, "first", 30)
	second := mqtttest.Dial(t, d.TCPAddr) // over MaxConnectionsPerIP: CONNACK 3 or closed at once
	if !second.WaitClosed(5 * time.Second) {
		t.Fatal("a second socket from the same address was not refused")
	}
	_ = first
	after := scrape(t, d, "")
	for _, tc := range []struct {
		series string
		delta  float64
	}{
		{`mqant_gate_connects_refused_total{` + gate + `,reason=ws_origin}`, 1},
		{`mqant_gate_connects_refused_total{` + gate + `,reason=bad_connect}`, 0},
		{`mqant_gate_sockets_over_limit_total{` + gate + `,limit=max_connections_per_ip}`, 1},
		{`mqant_gate_sockets_over_limit_total{` + gate + `,limit=max_connections}`, 0},
	} {
		if got := after[tc.series] - before[tc.series]; got != tc.delta {
			t.Errorf("%s moved by %v, want %v", tc.series, got, tc.delta)
		}
	}
}
