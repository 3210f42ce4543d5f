package core

import (
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestDurationsMatchPrometheusHistogram observes the same durations into
// the handler duration histogram and into a prometheus.Histogram with the
// same buckets: the exposed buckets, count and sum agree, bounds included
// (a duration equal to a bound is in that bound's bucket, as Prometheus's
// le says).
func TestDurationsMatchPrometheusHistogram(t *testing.T) {
	ref := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ref", Buckets: durationBounds[:]})
	var h durations
	obs := []time.Duration{0, 1, 100 * time.Microsecond, 100*time.Microsecond + 1, 10 * time.Second, 10*time.Second + 1, time.Hour}
	r := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		obs = append(obs, time.Duration(math.Exp(r.Float64()*math.Log(float64(20*time.Second)))))
	}
	for _, d := range obs {
		h.observe(d)
		ref.Observe(d.Seconds())
	}
	desc := prometheus.NewDesc("mqant_rpc_handler_duration_seconds", "h", []string{"module", "method"}, nil)
	var got, want dto.Metric
	if err := h.metric(desc, "M", "F").Write(&got); err != nil {
		t.Fatal(err)
	}
	if err := ref.Write(&want); err != nil {
		t.Fatal(err)
	}
	g, w := got.GetHistogram(), want.GetHistogram()
	if g.GetSampleCount() != w.GetSampleCount() || g.GetSampleCount() != uint64(len(obs)) {
		t.Errorf("count %d, prometheus %d, observed %d", g.GetSampleCount(), w.GetSampleCount(), len(obs))
	}
	if math.Abs(g.GetSampleSum()-w.GetSampleSum()) > 1e-6*w.GetSampleSum() {
		t.Errorf("sum %v, prometheus %v", g.GetSampleSum(), w.GetSampleSum())
	}
	if len(g.GetBucket()) != len(w.GetBucket()) {
		t.Fatalf("%d buckets, prometheus %d", len(g.GetBucket()), len(w.GetBucket()))
	}
	for i, b := range g.GetBucket() {
		wb := w.GetBucket()[i]
		if b.GetUpperBound() != wb.GetUpperBound() || b.GetCumulativeCount() != wb.GetCumulativeCount() {
			t.Errorf("bucket %d: le=%v %d, prometheus le=%v %d", i, b.GetUpperBound(), b.GetCumulativeCount(), wb.GetUpperBound(), wb.GetCumulativeCount())
		}
	}
	labels := map[string]string{}
	for _, l := range got.GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	if len(labels) != 2 || labels["module"] != "M" || labels["method"] != "F" {
		t.Errorf("labels %v", got.GetLabel())
	}
}

// BenchmarkDurationsObserve and BenchmarkPrometheusHistogramObserve: one
// handler's duration recorded, ours against the client library's.
func BenchmarkDurationsObserve(b *testing.B) {
	var h durations
	b.ReportAllocs()
	for b.Loop() {
		h.observe(123 * time.Microsecond)
	}
}

func BenchmarkPrometheusHistogramObserve(b *testing.B) {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "x", Buckets: durationBounds[:]})
	b.ReportAllocs()
	for b.Loop() {
		h.Observe((123 * time.Microsecond).Seconds())
	}
}

// TestRunningAndInFlightDerived: the handler calls running and the calls
// in flight are what was begun less what ended, at every step, with calls
// that never ran (dropped) and failed ones among them; concurrent calls
// never make them read below zero or above the calls begun.
func TestRunningAndInFlightDerived(t *testing.T) {
	reg := prometheus.NewRegistry()
	rm := newRPCMetrics(reg)
	mm := rm.forMethod("Probe", "Handler_X")
	cm := newCallMetrics(reg, &Config{Modules: []*ModuleSettings{{Type: "Probe", ID: "p"}}})
	check := func(step string, running, inFlight int64) {
		t.Helper()
		if got := mm.series.running(); got != running {
			t.Errorf("%s: running %d, want %d", step, got, running)
		}
		if got := cm.inFlight(); got != inFlight {
			t.Errorf("%s: in flight %d, want %d", step, got, inFlight)
		}
	}
	check("start", 0, 0)
	cm.begin()
	cm.begin()
	s1 := mm.begin(time.Time{})
	s2 := mm.begin(time.Now())
	check("two calls begun, two handlers running", 2, 2)
	mm.observe(s1, nil)
	cm.end("Probe", nil)
	check("one ended", 1, 1)
	mm.observe(s2, Errorf(ErrRemote, "no"))
	cm.end("Elsewhere", Errorf(ErrTimeout, "late")) // counted as unknown
	check("both ended", 0, 0)
	cm.begin()
	mm.observe(time.Time{}, Errorf(ErrTimeout, "dropped")) // not run: no handler began
	cm.end("Probe", Errorf(ErrTimeout, "dropped"))
	check("a dropped call", 0, 0)

	const workers, each = 4, 2000
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each {
					cm.begin()
					mm.observe(mm.begin(time.Time{}), nil)
					cm.end("Probe", nil)
				}
			}()
		}
		wg.Wait()
	}()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		if r, f := mm.series.running(), cm.inFlight(); r < 0 || r > workers || f < 0 || f > workers {
			t.Fatalf("under load: running %d, in flight %d; want 0..%d", r, f, workers)
		}
	}
	check("after the load", 0, 0)
}
