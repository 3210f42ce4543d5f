package chaos

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// ExecLine is the message a server built for chaos tests logs each time a
// handler starts on a call that carries a chaosId (demo/server's chaoshook
// build tag).
const ExecLine = "chaos: handler executing"

// SlowError is the latency from which an error reply counts as a timeout:
// the call waited for a deadline instead of failing at once.
const SlowError = 5 * time.Second

// pushGrace is how long after a say's reply its broadcast may still arrive.
const pushGrace = 2 * time.Second

// Phase is a span of a run with at most one fault in it. Calls belong to
// the phase in which they ended (reply, timeout or connection lost), so a
// call in flight when a fault strikes counts for that fault; connection
// losses belong to the phase in which they happened.
type Phase struct {
	Name       string
	Start, End time.Time
	Fault      time.Time // when the fault was injected; zero for a quiet phase
	Ready      time.Time // when what was stopped was ready again (log line, port)
	// RestartedGate names the gate restarted in this phase: its clients
	// lose their connections by design.
	RestartedGate string
	// Recovers selects the calls whose success shows recovery (all when
	// nil): calls to the restarted module, or through the restarted gate.
	Recovers func(*Call) bool
}

// Figures are what a phase measured.
type Figures struct {
	Phase        string
	Calls, OK    int
	Errors       int            // error replies within SlowError
	ErrorTexts   map[string]int // error text -> count, fast and slow
	MaxErrorWait time.Duration  // slowest error reply
	SlowErrors   int            // error replies after SlowError or more
	NoReply      int            // no reply within the client's call timeout
	LostWithConn int            // the connection closed before the reply

	ConnsLost          int // connections lost, not on the restarted gate
	ConnsLostRestarted int // connections lost on the restarted gate

	// Without a ready time (a quiet phase) these are 0.
	Outage  time.Duration // fault to ready
	FirstOK time.Duration // ready to the first good reply; -1: none
	AllOK   time.Duration // ready to every client that calls it having had one; -1: some never

	Execs      bool // executions were counted (a chaoshook build)
	RanTwice   int  // calls whose handler started more than once
	RanNotOK   int  // calls whose handler ran but the caller got no success
	OKUnseen   int  // successful calls whose execution was not logged: the count is broken
	DupReplies int  // calls answered more than once
	Hung       int  // calls never answered while their connection stayed open

	PushesExpected, PushesLost, PushesDup int
	SaysWithLoss                          int // good says of which some member missed the broadcast
}

// Timeouts counts the calls that timed out one way or the other.
func (f *Figures) Timeouts() int { return f.SlowErrors + f.NoReply }

// Run is everything a run recorded, for Analyse.
type Run struct {
	Rec   *Recorder
	Execs map[string]int // chaosId -> handler starts; nil when not counted
}

// Analyse computes the figures of a phase. Call it once the clients have
// stopped.
func (r *Run) Analyse(p Phase) Figures {
	f := Figures{Phase: p.Name, ErrorTexts: map[string]int{}, Execs: r.Execs != nil}
	in := func(t time.Time) bool { return !t.Before(p.Start) && t.Before(p.End) }
	var says []*Call
	for _, c := range r.Rec.Calls() {
		if !in(c.end()) {
			continue
		}
		f.Calls++
		switch {
		case c.OK():
			f.OK++
			if c.Route == SayRoute {
				says = append(says, c)
			}
		case c.GaveUp:
			f.NoReply++
		case c.ConnLost:
			f.LostWithConn++
		case c.Replied.IsZero():
			// Neither answered nor given up: the run ended first.
		default:
			f.ErrorTexts[shorten(c.Err)]++
			f.MaxErrorWait = max(f.MaxErrorWait, c.Latency())
			if c.Latency() >= SlowError {
				f.SlowErrors++
			} else {
				f.Errors++
			}
		}
		if c.Replied.IsZero() && !c.ConnLost {
			f.Hung++
		}
		if c.Replies > 1 {
			f.DupReplies++
		}
		if r.Execs != nil {
			n := r.Execs[c.ID]
			if n > 1 {
				f.RanTwice++
			}
			if n > 0 && !c.OK() {
				f.RanNotOK++
			}
			if n == 0 && c.OK() && (c.Route == LoginRoute || c.Route == SayRoute) {
				f.OKUnseen++
			}
		}
	}
	for _, c := range r.Rec.Conns() {
		if !c.Lost() || !in(c.Down) {
			continue
		}
		if c.Gate == p.RestartedGate {
			f.ConnsLostRestarted++
		} else {
			f.ConnsLost++
		}
	}
	if !p.Ready.IsZero() {
		if !p.Fault.IsZero() {
			f.Outage = p.Ready.Sub(p.Fault)
		}
		f.FirstOK, f.AllOK = r.recovery(p)
	}
	r.pushes(says, &f)
	return f
}

// recovery returns the time from p.Ready to the first good reply of a
// recovering call and to every client making such calls having had one.
func (r *Run) recovery(p Phase) (first, all time.Duration) {
	first = -1
	firstOK := map[string]time.Time{} // client -> first good reply after Ready
	clients := map[string]bool{}
	for _, c := range r.Rec.Calls() {
		if end := c.end(); end.Before(p.Start) || !end.Before(p.End) || (p.Recovers != nil && !p.Recovers(c)) {
			continue
		}
		clients[c.Client] = true
		if !c.OK() || c.Replied.Before(p.Ready) {
			continue
		}
		if d := c.Replied.Sub(p.Ready); first < 0 || d < first {
			first = d
		}
		if t, ok := firstOK[c.Client]; !ok || c.Replied.Before(t) {
			firstOK[c.Client] = c.Replied
		}
	}
	all = 0
	for cl := range clients {
		t, ok := firstOK[cl]
		if !ok {
			return first, -1
		}
		all = max(all, t.Sub(p.Ready))
	}
	return first, all
}

// pushes counts, for each good say, the members that should have had its
// broadcast (in the room over one connection from before the say until
// well after its reply) and did not, or had it twice.
func (r *Run) pushes(says []*Call, f *Figures) {
	joins := r.Rec.Joins()
	for _, s := range says {
		got := map[string]bool{}
		lost := false
		for _, j := range joins {
			if got[j.Member] {
				continue
			}
			rc := r.Rec.Receipts(j.Member, s.ID)
			if rc.N > 1 {
				f.PushesDup++
				got[j.Member] = true
				continue
			}
			if j.From.After(s.Sent) || (!j.To.IsZero() && j.To.Before(s.Replied.Add(pushGrace))) {
				continue
			}
			got[j.Member] = true
			f.PushesExpected++
			if rc.N == 0 {
				f.PushesLost++
				lost = true
			}
		}
		if lost {
			f.SaysWithLoss++
		}
	}
}

func (c *Call) end() time.Time {
	if c.Ended.IsZero() {
		return c.Sent
	}
	return c.Ended
}

func shorten(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

// CountExecutions reads server logs for ExecLine and counts the lines per
// chaosId.
func CountExecutions(paths ...string) (map[string]int, error) {
	n := map[string]int{}
	for _, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if !strings.Contains(line, ExecLine) {
				continue
			}
			_, v, ok := strings.Cut(line, " chaosId=")
			if !ok {
				continue
			}
			v, _, _ = strings.Cut(v, " ")
			n[strings.Trim(v, `"`)]++
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return n, nil
}

// Table renders figures as a markdown table, then the error texts seen.
func Table(fs []Figures) string {
	var b strings.Builder
	b.WriteString("| phase | calls | ok | errors | timed out (no reply / slow error) | max error wait | lost with their conn | conns lost: others / restarted gate | outage | ready → first ok | ready → all ok | ran twice | ran, not ok | dup replies | hung | pushes lost / expected | dup pushes |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, f := range fs {
		twice, notOK := "n/a", "n/a"
		if f.Execs {
			twice, notOK = fmt.Sprint(f.RanTwice), fmt.Sprint(f.RanNotOK)
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d (%d / %d) | %s | %d | %d / %d | %s | %s | %s | %s | %s | %d | %d | %d / %d | %d |\n",
			f.Phase, f.Calls, f.OK, f.Errors, f.Timeouts(), f.NoReply, f.SlowErrors, dur(f.MaxErrorWait), f.LostWithConn,
			f.ConnsLost, f.ConnsLostRestarted, dur(f.Outage), dur(f.FirstOK), dur(f.AllOK),
			twice, notOK, f.DupReplies, f.Hung, f.PushesLost, f.PushesExpected, f.PushesDup)
	}
	b.WriteString("\nCalls count for the phase in which they ended. errors: error replies within " + dur(SlowError) +
		"; timed out: no reply within the client's call timeout, or an error reply after " + dur(SlowError) +
		" or more; outage: fault to ready (log line or port); ready → all ok: until every client concerned had a good reply;" +
		" ran twice / ran, not ok: handler executions logged per call id (a handler's own error counts as not ok);" +
		" hung: never answered while the connection stayed open; pushes expected: members in the room over one" +
		" connection from before a good say until " + dur(pushGrace) + " after its reply.\n")
	b.WriteString("\nError texts (count):\n\n")
	for _, f := range fs {
		if len(f.ErrorTexts) == 0 {
			continue
		}
		texts := make([]string, 0, len(f.ErrorTexts))
		for t := range f.ErrorTexts {
			texts = append(texts, t)
		}
		sort.Slice(texts, func(i, j int) bool { return f.ErrorTexts[texts[i]] > f.ErrorTexts[texts[j]] })
		fmt.Fprintf(&b, "- %s:", f.Phase)
		for i, t := range texts {
			if i == 5 {
				fmt.Fprintf(&b, " ... (%d more)", len(texts)-i)
				break
			}
			fmt.Fprintf(&b, " %q ×%d;", t, f.ErrorTexts[t])
		}
		b.WriteString("\n")
	}
	return b.String()
}

func dur(d time.Duration) string {
	switch {
	case d < 0:
		return "never"
	case d == 0:
		return "-"
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	default:
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
}
