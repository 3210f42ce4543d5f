package loadgen

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Summary is the result of a run. Counts cover the measurement window:
// requests sent after the warm-up and before the end, and what became of
// them.
type Summary struct {
	Mode     Mode    `json:"mode"`
	URL      string  `json:"url"`
	Conns    int     `json:"conns"` // asked for (broadcast: members)
	Sources  int     `json:"sources"`
	Inflight int     `json:"inflight,omitempty"`
	Rate     float64 `json:"rate,omitempty"` // asked for; 0 is as fast as inflight allows

	Connected         int    `json:"connected"` // set up (broadcast: members, without the sender)
	ConnectFailed     int    `json:"connect_failed"`
	ConnLost          int    `json:"conn_lost"` // closed by the server or the network during the run
	FirstConnectError string `json:"first_connect_error,omitempty"`
	FirstLostError    string `json:"first_lost_error,omitempty"`

	Seconds    float64 `json:"seconds"`    // length of the measurement window
	Requests   int64   `json:"requests"`   // sent in the window (broadcast: says)
	Replies    int64   `json:"replies"`    // successful replies to them
	Errors     int64   `json:"errors"`     // error replies, and requests lost with their connection
	Timeouts   int64   `json:"timeouts"`   // no reply within the timeout
	Late       int64   `json:"late"`       // replies that came after their timeout, or matched nothing
	Throughput float64 `json:"throughput"` // replies per second
	// Latency is the request round trip; in broadcast mode the fan-out
	// latency from a say being sent to each member's receipt.
	Latency    Latency `json:"latency_ms"`
	FirstError string  `json:"first_error,omitempty"`

	// Broadcast mode.
	Deliveries         int64    `json:"deliveries,omitempty"`          // says received by members
	ExpectedDeliveries int64    `json:"expected_deliveries,omitempty"` // successful says x members
	DeliveriesPerSec   float64  `json:"deliveries_per_sec,omitempty"`
	SayLatency         *Latency `json:"say_latency_ms,omitempty"` // the sender's say round trip

	// Resident memory of the process given with -pid (bytes): before
	// connecting, once every connection is set up, and at the end of the
	// run before disconnecting; per connection is (after - before) /
	// connected.
	PID        int     `json:"pid,omitempty"`
	RSSBefore  int64   `json:"rss_before,omitempty"`
	RSSOpen    int64   `json:"rss_open,omitempty"`
	RSSAfter   int64   `json:"rss_after,omitempty"`
	RSSPerConn float64 `json:"rss_per_conn,omitempty"`
	// CPU time (user and system) the -pid process used over the measured
	// time, in seconds, and per reply in microseconds: steadier than
	// replies/s on a machine whose speed moves from one period to the
	// next, and comparable between servers that do not fill their core.
	ServerCPU         float64 `json:"server_cpu_seconds,omitempty"`
	ServerCPUPerReply float64 `json:"server_cpu_us_per_reply,omitempty"`
	// ServerCPUError says why the CPU time was not read (the process
	// ended during the run, say); the two figures above are then absent.
	ServerCPUError string `json:"server_cpu_error,omitempty"`
}

// Latency holds percentiles in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p99_9"`
	Max   float64 `json:"max"`
	Mean  float64 `json:"mean"`
}

func latencyOf(h *Histogram) Latency {
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	return Latency{Count: h.Count(), P50: ms(h.Quantile(0.5)), P90: ms(h.Quantile(0.9)), P99: ms(h.Quantile(0.99)),
		P999: ms(h.Quantile(0.999)), Max: ms(h.Max()), Mean: ms(h.Mean())}
}

// summarise fills in the request counts and latencies.
func (r *run) summarise(s *Summary, conns []*conn) {
	rec := r.rec
	if r.cfg.Mode == ModeBroadcast || r.cfg.Mode == ModeChat {
		rec = r.sayRec
	}
	for _, c := range conns {
		if c.req != nil {
			_, w := c.req.counts()
			s.Requests += w
		}
	}
	var h Histogram
	rec.totals(&h)
	s.Replies = h.Count()
	s.Errors = rec.errors.Load()
	s.Timeouts = rec.timeouts.Load()
	s.Late = r.late.Load()
	s.ConnLost = int(r.lostN.Load())
	s.FirstError = rec.firstError()
	if p := r.firstLost.Load(); p != nil {
		s.FirstLostError = *p
	}
	if s.Seconds > 0 {
		s.Throughput = float64(s.Replies) / s.Seconds
	}
	lat := latencyOf(&h)
	switch r.cfg.Mode {
	case ModeBroadcast:
		s.SayLatency = &lat
		s.ExpectedDeliveries = s.Replies * int64(s.Connected)
		return
	case ModeChat:
		// Every member of the sayer's room, the sayer included; exact
		// when Conns is a multiple of RoomSize and no set-up failed.
		s.SayLatency = &lat
		s.ExpectedDeliveries = s.Replies * int64(min(r.cfg.RoomSize, s.Connected))
		return
	}
	if r.cfg.Mode != ModeIdle {
		s.Latency = lat
	}
}

// summariseBroadcast fills in the deliveries and the fan-out latency.
func (r *run) summariseBroadcast(s *Summary) {
	var h Histogram
	r.rec.totals(&h)
	s.Deliveries = r.deliveries.Load()
	if s.Seconds > 0 {
		s.DeliveriesPerSec = float64(s.Deliveries) / s.Seconds
	}
	s.Latency = latencyOf(&h)
}

// WriteText writes the summary for people.
func (s *Summary) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "mode %s  url %s  sources %d", s.Mode, s.URL, s.Sources)
	if s.Mode != ModeIdle {
		if s.Rate > 0 {
			fmt.Fprintf(&b, "  rate %g/s", s.Rate)
		}
		fmt.Fprintf(&b, "  inflight %d", s.Inflight)
	}
	b.WriteString("\n")
	what := "connections"
	if s.Mode == ModeBroadcast {
		what = "members"
	}
	fmt.Fprintf(&b, "%s  %d asked, %d set up, %d failed, %d lost during the run\n", what, s.Conns, s.Connected, s.ConnectFailed, s.ConnLost)
	if s.FirstConnectError != "" {
		fmt.Fprintf(&b, "first set-up error: %s\n", s.FirstConnectError)
	}
	if s.FirstLostError != "" {
		fmt.Fprintf(&b, "first lost: %s\n", s.FirstLostError)
	}
	if s.Mode != ModeIdle {
		noun := "requests"
		chatty := s.Mode == ModeBroadcast || s.Mode == ModeChat
		if chatty {
			noun = "says"
		}
		fmt.Fprintf(&b, "measured %.2fs  %s %d  replies %d  errors %d  timeouts %d  late %d\n",
			s.Seconds, noun, s.Requests, s.Replies, s.Errors, s.Timeouts, s.Late)
		if chatty {
			fmt.Fprintf(&b, "throughput %.0f says/s\n", s.Throughput)
		} else {
			fmt.Fprintf(&b, "throughput %.0f replies/s\n", s.Throughput)
		}
		if chatty {
			fmt.Fprintf(&b, "deliveries %d of %d expected  %.0f deliveries/s\n", s.Deliveries, s.ExpectedDeliveries, s.DeliveriesPerSec)
			writeLatency(&b, "fan-out latency", s.Latency)
			writeLatency(&b, "say latency", *s.SayLatency)
		} else {
			writeLatency(&b, "latency", s.Latency)
		}
		if s.FirstError != "" {
			fmt.Fprintf(&b, "first error: %s\n", s.FirstError)
		}
	} else {
		fmt.Fprintf(&b, "held %.2fs\n", s.Seconds)
	}
	if s.PID != 0 {
		fmt.Fprintf(&b, "rss of pid %d  before %s  all set up %s  end %s  per connection %s\n",
			s.PID, bytesText(float64(s.RSSBefore)), bytesText(float64(s.RSSOpen)), bytesText(float64(s.RSSAfter)), bytesText(s.RSSPerConn))
		if s.ServerCPUError != "" {
			fmt.Fprintf(&b, "cpu of pid %d not read: %s\n", s.PID, s.ServerCPUError)
		} else if s.ServerCPU > 0 {
			fmt.Fprintf(&b, "cpu of pid %d  %.2fs over the measured time", s.PID, s.ServerCPU)
			if s.ServerCPUPerReply > 0 {
				fmt.Fprintf(&b, "  %.2f us per reply", s.ServerCPUPerReply)
			}
			b.WriteString("\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeLatency(b *strings.Builder, name string, l Latency) {
	fmt.Fprintf(b, "%s ms  p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  mean %.3f  (%d samples)\n",
		name, l.P50, l.P90, l.P99, l.P999, l.Max, l.Mean, l.Count)
}

// bytesText renders a byte count with a binary unit.
func bytesText(n float64) string {
	sign := ""
	if n < 0 {
		sign, n = "-", -n
	}
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%s%.2f GiB", sign, n/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%s%.1f MiB", sign, n/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%s%.1f KiB", sign, n/(1<<10))
	}
	return fmt.Sprintf("%s%.0f B", sign, n)
}
