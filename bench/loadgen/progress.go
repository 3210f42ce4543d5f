package loadgen

import (
	"fmt"
	"sync"
	"time"
)

// startProgress writes one line a second to cfg.Progress until the
// returned function is called.
func (r *run) startProgress() (stop func()) {
	w := r.cfg.Progress
	if w == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var h Histogram
		last := time.Now()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				secs := now.Sub(last).Seconds()
				last = now
				r.progressLine(&h, secs)
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// progressLine writes what happened in the last secs seconds.
func (r *run) progressLine(h *Histogram, secs float64) {
	cfg := &r.cfg
	elapsed := time.Duration(r.now()).Truncate(time.Second)
	r.rec.takeInterval(h)
	phase := r.phase.Load()
	open := r.setUp.Load() - r.lostN.Load()
	var line string
	switch {
	case phase == phaseConnect:
		line = fmt.Sprintf("connecting: %d set up, %d failed", r.setUp.Load(), r.failed.Load())
	case cfg.Mode == ModeIdle:
		line = fmt.Sprintf("holding %d connections, %d lost", open, r.lostN.Load())
	case cfg.Mode == ModeBroadcast || cfg.Mode == ModeChat:
		var says Histogram
		r.sayRec.takeInterval(&says)
		line = fmt.Sprintf("%.0f says/s, %.0f deliveries/s, fan-out p99 %s, errors %d, timeouts %d, lost %d",
			float64(says.Count())/secs, float64(h.Count())/secs, msText(h.Quantile(0.99)),
			r.sayRec.allErrors.Load(), r.sayRec.allTimeouts.Load(), r.lostN.Load())
	default:
		line = fmt.Sprintf("%.0f replies/s, p99 %s, errors %d, timeouts %d, lost %d",
			float64(h.Count())/secs, msText(h.Quantile(0.99)), r.rec.allErrors.Load(), r.rec.allTimeouts.Load(), r.lostN.Load())
	}
	if cfg.PID != 0 {
		if rss, err := ReadRSS(cfg.PID); err == nil {
			line += ", rss " + bytesText(float64(rss))
		}
	}
	tag := ""
	switch phase {
	case phaseWarmup:
		tag = " (warm-up)"
	case phaseDrain:
		tag = " (draining)"
	}
	fmt.Fprintf(cfg.Progress, "%5s%s %s\n", elapsed, tag, line)
}

func msText(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d)/1e6) }
