package loadgen

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	goruntime "runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqantgen/mqantgen/gate/packets"
)

// run is the state of one Run.
type run struct {
	cfg  Config
	tgt  target
	tag  string // random, makes client ids, user names and rooms unique
	base time.Time

	// The measurement window on the run clock: results of requests sent
	// in [winStart, winEnd) go into the summary.
	winStart atomic.Int64
	winEnd   atomic.Int64

	rec    *recorder // request latency, or broadcast fan-out latency
	sayRec *recorder // broadcast: the sender's say round trips

	setUp, failed, lostN atomic.Int64
	firstConnErr         atomic.Pointer[string]
	firstLost            atomic.Pointer[string]
	late                 atomic.Int64
	deliveries           atomic.Int64 // broadcast, inside the window
	allDeliveries        atomic.Int64
	phase                atomic.Int32

	// The -pid process's CPU time at the start and end of the window,
	// when read; the run's own goroutine writes and reads them.
	cpu     [2]time.Duration
	cpuRead [2]bool
	cpuErr  error // the first read that failed

	liveMu sync.Mutex
	live   []*conn // connections set up so far, for the pinger
}

// Phases, for the progress line.
const (
	phaseConnect = iota
	phaseWarmup
	phaseMeasure
	phaseDrain
)

// now is the run clock: monotonic nanoseconds since the run began.
func (r *run) now() int64 { return int64(time.Since(r.base)) }

func (r *run) inWindow(t int64) bool { return t >= r.winStart.Load() && t < r.winEnd.Load() }

// lost records a connection that closed under load.
func (r *run) lost(c *conn, err error) {
	if c.closing.Swap(true) {
		return
	}
	r.lostN.Add(1)
	why := fmt.Sprintf("connection %d lost: %v", c.id, err)
	r.firstLost.CompareAndSwap(nil, &why)
	if c.req != nil {
		c.req.kill(why)
	}
	_ = c.nc.Close()
}

// sayMarker precedes the send time in a broadcast say: `"say":"t123"`.
var sayMarker = []byte(`"say":"t`)

// delivery times one Chat/OnSay a broadcast member received.
func (r *run) delivery(c *conn, payload []byte) {
	now := r.now()
	i := bytes.Index(payload, sayMarker)
	if i < 0 {
		return // someone else's say
	}
	rest := payload[i+len(sayMarker):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return
	}
	sent, err := strconv.ParseInt(string(rest[:j]), 10, 64)
	if err != nil {
		return
	}
	measured := r.inWindow(sent)
	r.allDeliveries.Add(1)
	if measured {
		r.deliveries.Add(1)
	}
	r.rec.record(c.id, time.Duration(now-sent), measured)
}

// Run connects, loads the target as cfg says, disconnects and returns the
// summary. Cancelling ctx ends the measurement early; the summary covers
// the time measured until then.
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	var tag [3]byte
	_, _ = rand.Read(tag[:])
	r := &run{cfg: cfg, tag: hex.EncodeToString(tag[:]), base: time.Now()}
	if err := r.cfg.normalise(r.tag); err != nil {
		return nil, err
	}
	cfg = r.cfg
	tgt, err := parseTarget(cfg.URL)
	if err != nil {
		return nil, err
	}
	r.tgt = tgt
	total := cfg.Conns
	if cfg.Mode == ModeBroadcast {
		total++ // the sender
	}
	sources, err := sourceAddrs(tgt, total, cfg.Sources)
	if err != nil {
		return nil, err
	}
	sum := &Summary{Mode: cfg.Mode, URL: cfg.URL, Conns: cfg.Conns, Sources: max(len(sources), 1), PID: cfg.PID}
	if cfg.Mode != ModeIdle {
		sum.Inflight, sum.Rate = cfg.Inflight, cfg.Rate
	}
	if cfg.PID != 0 {
		if sum.RSSBefore, err = ReadRSS(cfg.PID); err != nil {
			return nil, err
		}
	}
	// Enough shards that readers on different cores seldom share a lock.
	r.rec, r.sayRec = newRecorder(min(total, 4*goruntime.GOMAXPROCS(0))), newRecorder(1)
	r.winStart.Store(1<<63 - 1) // nothing counts until the load starts
	r.winEnd.Store(1<<63 - 1)

	stopProgress := r.startProgress()
	defer stopProgress()
	stopPinger := r.startPinger()
	defer stopPinger()

	conns := r.connectAll(ctx, total, sources)
	defer r.closeAll(conns)
	sum.Connected = len(conns)
	sum.ConnectFailed = int(r.failed.Load())
	if p := r.firstConnErr.Load(); p != nil {
		sum.FirstConnectError = *p
	}
	if cfg.Mode == ModeBroadcast {
		if len(conns) == 0 || conns[len(conns)-1].id != cfg.Conns {
			return sum, fmt.Errorf("the broadcast sender could not be set up: %s", sum.FirstConnectError)
		}
		sum.Connected-- // the sender is not a member
	}
	if len(conns) == 0 {
		return sum, fmt.Errorf("no connection could be set up: %s", sum.FirstConnectError)
	}
	if err := ctx.Err(); err != nil {
		return sum, err
	}
	if cfg.PID != 0 {
		sum.RSSOpen, _ = ReadRSS(cfg.PID)
	}

	// Load.
	start := r.now()
	winStart := start + int64(cfg.Warmup)
	r.winEnd.Store(winStart + int64(cfg.Duration))
	r.winStart.Store(winStart)
	r.phase.Store(phaseWarmup)
	if cfg.OnLoad != nil {
		cfg.OnLoad()
	}
	stop := make(chan struct{})
	var senders sync.WaitGroup
	for _, c := range conns {
		if c.req == nil {
			continue
		}
		if c.req.interval > 0 {
			// Spread the connections' schedules over one interval.
			c.req.next = start + c.req.interval*int64(c.id%total)/int64(total)
		}
		senders.Add(1)
		go func() {
			defer senders.Done()
			c.req.loop(stop)
		}()
	}
	r.waitWindow(ctx)
	r.phase.Store(phaseDrain)
	close(stop)
	senders.Wait()
	end := r.winEnd.Load()
	sum.Seconds = float64(end-winStart) / 1e9
	if sum.Seconds < 0 {
		sum.Seconds = 0
	}

	r.summarise(sum, conns)
	if r.cpuErr != nil {
		sum.ServerCPUError = r.cpuErr.Error()
	}
	if r.cpuRead[0] && r.cpuRead[1] {
		sum.ServerCPU = (r.cpu[1] - r.cpu[0]).Seconds()
		if sum.Replies > 0 {
			sum.ServerCPUPerReply = sum.ServerCPU * 1e6 / float64(sum.Replies)
		}
	}
	if cfg.Mode == ModeBroadcast || cfg.Mode == ModeChat {
		// Pushes may reach members after the say's reply reached the
		// sender: wait for the ones still on their way.
		deadline := time.Now().Add(cfg.Timeout)
		for r.deliveries.Load() < sum.ExpectedDeliveries && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		r.summariseBroadcast(sum)
	}
	if cfg.PID != 0 {
		sum.RSSAfter, _ = ReadRSS(cfg.PID)
		if sum.Connected > 0 {
			sum.RSSPerConn = float64(sum.RSSAfter-sum.RSSBefore) / float64(sum.Connected)
		}
	}
	return sum, nil
}

// waitWindow waits for the end of the measurement window, or for ctx, which
// moves the end to now.
func (r *run) waitWindow(ctx context.Context) {
	begun := false
	mark := func(start bool) {
		if r.cfg.PID != 0 {
			cpu, err := ReadCPU(r.cfg.PID)
			if err != nil && r.cpuErr == nil {
				r.cpuErr = err
			}
			i := 0
			if !start {
				i = 1
			}
			r.cpu[i], r.cpuRead[i] = cpu, err == nil
		}
		if r.cfg.OnWindow != nil {
			r.cfg.OnWindow(start)
		}
	}
	for {
		now, start, end := r.now(), r.winStart.Load(), r.winEnd.Load()
		if now >= start && !begun {
			begun = true
			r.phase.Store(phaseMeasure)
			mark(true)
			now = r.now()
		}
		if now >= end {
			mark(false)
			return
		}
		wait := time.Duration(end - now)
		if now < start {
			wait = time.Duration(start - now)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			r.winEnd.Store(max(r.now(), start))
			if begun {
				mark(false)
			}
			return
		}
	}
}

// connectAll sets up total connections, Dialers at a time, and returns the
// ones that succeeded in id order.
func (r *run) connectAll(ctx context.Context, total int, sources []net.IP) []*conn {
	cfg := &r.cfg
	out := make([]*conn, total)
	ids := make(chan int)
	var wg sync.WaitGroup
	for range min(cfg.Dialers, total) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				c, err := r.connect(ctx, id, sources)
				if err != nil {
					r.failed.Add(1)
					msg := fmt.Sprintf("connection %d: %v", id, err)
					r.firstConnErr.CompareAndSwap(nil, &msg)
					continue
				}
				r.added(c)
				out[id] = c
			}
		}()
	}
	// The broadcast sender goes last, once every member is in the room.
	members := total
	if cfg.Mode == ModeBroadcast {
		members--
	}
feed:
	for id := range members {
		select {
		case ids <- id:
		case <-ctx.Done():
			break feed
		}
	}
	close(ids)
	wg.Wait()
	if cfg.Mode == ModeBroadcast && ctx.Err() == nil {
		if c, err := r.connect(ctx, members, sources); err != nil {
			r.failed.Add(1)
			msg := fmt.Sprintf("sender: %v", err)
			r.firstConnErr.CompareAndSwap(nil, &msg)
		} else {
			r.added(c)
			out[members] = c
		}
	}
	conns := out[:0]
	for _, c := range out {
		if c != nil {
			conns = append(conns, c)
		}
	}
	return conns
}

// connect dials and sets up connection id.
func (r *run) connect(ctx context.Context, id int, sources []net.IP) (*conn, error) {
	cfg := &r.cfg
	ctx, cancel := context.WithTimeoutCause(ctx, cfg.ConnectTimeout, fmt.Errorf("set-up took longer than %v", cfg.ConnectTimeout))
	defer cancel()
	var src net.IP
	if len(sources) > 0 {
		src = sources[id%len(sources)]
	}
	nc, err := dial(ctx, r.tgt, src)
	if err != nil {
		return nil, err
	}
	c := newConn(r, id, nc)
	c.user = expand(cfg.User, id, "", "")
	c.room = expand(cfg.Room, id, c.user, "")
	if cfg.Mode == ModeChat {
		c.room = fmt.Sprintf("%s-%d", cfg.Room, id/cfg.RoomSize)
	}
	payload := []byte(expand(cfg.Payload, id, c.user, c.room))
	var interval int64
	if cfg.Rate > 0 {
		interval = int64(float64(time.Second) * float64(cfg.Conns) / cfg.Rate)
		interval = max(interval, 1)
	}
	switch cfg.Mode {
	case ModeRR:
		c.req = newRequester(c, r.rec, cfg.Topic+"/", payload, cfg.Inflight, interval, 0)
	case ModeRT:
		c.req = newRequester(c, r.rec, cfg.Topic+"/"+strconv.Itoa(id)+"/", payload, cfg.Inflight, interval, 0)
	case ModeBroadcast:
		if id == cfg.Conns {
			if cfg.Rate > 0 {
				interval = max(int64(float64(time.Second)/cfg.Rate), 1)
			}
			c.req = newRequester(c, r.sayRec, sayTopic+"/", nil, cfg.Inflight, interval, 0)
			c.req.say = fmt.Appendf(nil, `{"roomName":%q,"say":"t`, c.room)
		} else {
			c.member = true
		}
	case ModeChat:
		// Each member says at its share of the rate; its says' round
		// trips go to sayRec, every receipt in its room to rec.
		c.member = true
		c.req = newRequester(c, r.sayRec, sayTopic+"/", nil, cfg.Inflight, interval, 0)
		c.req.say = fmt.Appendf(nil, `{"roomName":%q,"say":"t`, c.room)
	}
	if err := c.setup(ctx); err != nil {
		c.closing.Store(true)
		_ = nc.Close()
		<-c.done
		return nil, err
	}
	return c, nil
}

// closeAll disconnects every connection, Dialers at a time.
func (r *run) closeAll(conns []*conn) {
	ch := make(chan *conn)
	var wg sync.WaitGroup
	for range min(r.cfg.Dialers, len(conns)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range ch {
				c.close()
			}
		}()
	}
	for _, c := range conns {
		ch <- c
	}
	close(ch)
	wg.Wait()
}

// added records a connection that is set up.
func (r *run) added(c *conn) {
	r.setUp.Add(1)
	r.liveMu.Lock()
	r.live = append(r.live, c)
	r.liveMu.Unlock()
}

// startPinger sends PINGREQ on every connection silent for half its
// keep-alive, until the returned function is called.
func (r *run) startPinger() (stop func()) {
	if r.cfg.KeepAlive <= 0 {
		return func() {}
	}
	ping := (&packets.Pingreq{}).AppendTo(nil)
	half := int64(r.cfg.KeepAlive / 2)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(min(time.Second, r.cfg.KeepAlive/4))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			r.liveMu.Lock()
			conns := r.live
			r.liveMu.Unlock()
			now := r.now()
			for _, c := range conns {
				if now-c.lastWrite.Load() >= half && !c.closing.Load() {
					if err := c.write(ping); err != nil {
						r.lost(c, err)
					}
				}
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}
