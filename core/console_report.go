package core

import (
	"math"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// A process's console report: what the console shows of one process,
// built about once a second from the App's Prometheus registry (the
// counters the process keeps anyway: nothing is counted twice on the hot
// path) and sent to every process with a console.

// reportVersion is the report's format; a process drops reports of
// another version and says so on its console.
const reportVersion = 1

// Report is one process's state at one moment.
type Report struct {
	V          int     `json:"v"`
	Key        string  `json:"key"`     // unique per process run: host, pid and a random part
	Process    string  `json:"process"` // the ProcessID, or the host when there is none
	Host       string  `json:"host"`
	PID        int     `json:"pid"`
	Version    string  `json:"version"`
	Started    int64   `json:"started"`  // unix ms
	Time       int64   `json:"time"`     // unix ms, the sender's clock
	Interval   float64 `json:"interval"` // seconds that rates and latencies cover
	Goroutines int64   `json:"goroutines"`
	RSS        int64   `json:"rss"` // bytes

	Instances []InstanceInfo  `json:"instances"`
	Handlers  []HandlerReport `json:"handlers"`
	Gates     []GateReport    `json:"gates,omitempty"`
	Brokers   []BrokerReport  `json:"brokers,omitempty"`
	Errors    []ErrorRecord   `json:"errors,omitempty"` // newest first
	ErrorsAll int             `json:"errorsAll"`        // failures recorded since start
}

// InstanceInfo is a module instance the process runs.
type InstanceInfo struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// HandlerReport is one handler of one module type in this process. Calls,
// Errors and Timeouts count since start; Rate, P50 and P99 cover the
// report's interval (latencies in seconds, 0 without calls; the
// histogram's buckets bound their precision).
type HandlerReport struct {
	Module   string  `json:"module"`
	Method   string  `json:"method"`
	Calls    uint64  `json:"calls"`
	Errors   uint64  `json:"errors"` // every failure but timeouts
	Timeouts uint64  `json:"timeouts"`
	Rate     float64 `json:"rate"` // calls per second
	P50      float64 `json:"p50"`
	P99      float64 `json:"p99"`
}

// GateReport is one gate instance: clients connected and users bound.
type GateReport struct {
	ID          string `json:"id"`
	Connections int64  `json:"connections"`
	Users       int64  `json:"users"`
}

// BrokerReport is the process's connection to one broker.
type BrokerReport struct {
	Broker     string `json:"broker"` // host:port
	Connected  bool   `json:"connected"`
	Blocked    bool   `json:"blocked"`
	Reconnects int64  `json:"reconnects"` // connects after the first
}

// maxReportErrors bounds the failures a report carries.
const maxReportErrors = 16

// reportBuilder turns registry snapshots into reports. It keeps the last
// snapshot's histograms, so that rates and latencies cover one interval.
type reportBuilder struct {
	gather  prometheus.Gatherer
	recent  *errorRing
	base    Report // identity fields, copied into every report
	started time.Time
	last    time.Time
	prev    map[[2]string]histSnap
}

type histSnap struct {
	calls   uint64
	count   uint64
	buckets []uint64 // cumulative counts, by the histogram's bounds
}

func (b *reportBuilder) build(now time.Time, instances []InstanceInfo) (*Report, error) {
	mfs, err := b.gather.Gather()
	if err != nil && len(mfs) == 0 {
		return nil, err
	}
	r := b.base
	r.Time, r.Interval, r.Instances = now.UnixMilli(), now.Sub(b.last).Seconds(), instances
	if b.last.IsZero() {
		r.Interval = now.Sub(b.started).Seconds()
	}
	handlers := map[[2]string]*HandlerReport{}
	hists := map[[2]string]*dto.Histogram{}
	gates := map[string]*GateReport{}
	brokers := map[string]*BrokerReport{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			lbl := labels(m)
			switch mf.GetName() {
			case "mqant_rpc_handled_total":
				k := [2]string{lbl["module"], lbl["method"]}
				h := handlers[k]
				if h == nil {
					h = &HandlerReport{Module: k[0], Method: k[1]}
					handlers[k] = h
				}
				n := uint64(m.GetCounter().GetValue())
				h.Calls += n
				switch lbl["outcome"] {
				case "ok":
				case "timeout":
					h.Timeouts += n
				default:
					h.Errors += n
				}
			case "mqant_rpc_handler_duration_seconds":
				hists[[2]string{lbl["module"], lbl["method"]}] = m.GetHistogram()
			case "mqant_gate_connections", "mqant_gate_users":
				g := gates[lbl["gate"]]
				if g == nil {
					g = &GateReport{ID: lbl["gate"]}
					gates[lbl["gate"]] = g
				}
				if mf.GetName() == "mqant_gate_users" {
					g.Users = int64(m.GetGauge().GetValue())
				} else {
					g.Connections = int64(m.GetGauge().GetValue())
				}
			case "mqant_broker_connected", "mqant_broker_blocked", "mqant_broker_connects_total":
				br := brokers[lbl["broker"]]
				if br == nil {
					br = &BrokerReport{Broker: lbl["broker"]}
					brokers[lbl["broker"]] = br
				}
				switch mf.GetName() {
				case "mqant_broker_connected":
					br.Connected = m.GetGauge().GetValue() == 1
				case "mqant_broker_blocked":
					br.Blocked = m.GetGauge().GetValue() == 1
				default:
					br.Reconnects = max(int64(m.GetCounter().GetValue())-1, 0)
				}
			case "go_goroutines":
				r.Goroutines = int64(m.GetGauge().GetValue())
			case "process_resident_memory_bytes":
				r.RSS = int64(m.GetGauge().GetValue())
			}
		}
	}
	next := make(map[[2]string]histSnap, len(handlers))
	for k, h := range handlers {
		cur := histSnap{calls: h.Calls}
		if hist := hists[k]; hist != nil {
			cur.count = hist.GetSampleCount()
			for _, bk := range hist.GetBucket() {
				cur.buckets = append(cur.buckets, bk.GetCumulativeCount())
			}
			prev := b.prev[k]
			if r.Interval > 0 && h.Calls >= prev.calls {
				h.Rate = float64(h.Calls-prev.calls) / r.Interval
			}
			h.P50 = quantile(0.5, hist.GetBucket(), prev, cur)
			h.P99 = quantile(0.99, hist.GetBucket(), prev, cur)
		}
		next[k] = cur
		r.Handlers = append(r.Handlers, *h)
	}
	b.prev, b.last = next, now
	sort.Slice(r.Handlers, func(i, j int) bool {
		a, c := r.Handlers[i], r.Handlers[j]
		return a.Module < c.Module || a.Module == c.Module && a.Method < c.Method
	})
	for _, g := range gates {
		r.Gates = append(r.Gates, *g)
	}
	sort.Slice(r.Gates, func(i, j int) bool { return r.Gates[i].ID < r.Gates[j].ID })
	for _, br := range brokers {
		r.Brokers = append(r.Brokers, *br)
	}
	sort.Slice(r.Brokers, func(i, j int) bool { return r.Brokers[i].Broker < r.Brokers[j].Broker })
	r.Errors, r.ErrorsAll = b.recent.recent(maxReportErrors)
	return &r, nil
}

func labels(m *dto.Metric) map[string]string {
	out := make(map[string]string, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// quantile estimates the q-quantile of the observations made between two
// snapshots of a histogram, interpolating inside a bucket as Prometheus's
// histogram_quantile does. Beyond the last finite bound it answers that
// bound. Without observations it is 0.
func quantile(q float64, bounds []*dto.Bucket, prev, cur histSnap) float64 {
	if len(prev.buckets) != len(cur.buckets) {
		prev = histSnap{buckets: make([]uint64, len(cur.buckets))}
	}
	if cur.count <= prev.count || len(cur.buckets) == 0 {
		return 0
	}
	rank := q * float64(cur.count-prev.count)
	var below uint64
	lower := 0.0
	for i, bk := range bounds {
		n := cur.buckets[i] - prev.buckets[i]
		upper := bk.GetUpperBound()
		if float64(n) >= rank {
			if math.IsInf(upper, 1) || n == below {
				return lower
			}
			return lower + (upper-lower)*(rank-float64(below))/float64(n-below)
		}
		below, lower = n, upper
	}
	return lower
}
